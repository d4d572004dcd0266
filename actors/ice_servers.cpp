#include "actors/ice_servers.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "config/config.hpp"

namespace goring::ice {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void put_urls(writer& w, const std::vector<std::string>& urls) {
  w.Key("urls");
  w.StartArray();
  for (auto& url : urls)
    w.String(url.data(), static_cast<rapidjson::SizeType>(url.size()));
  w.EndArray();
}

} // namespace

std::string hmac_sha1_base64(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  // 4 output characters per 3 input bytes, plus the terminating NUL.
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  auto written =
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, static_cast<int>(length));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

turn_credentials make_turn_credentials(std::string_view secret, std::string_view user_id,
                                       long long expires_at) {
  turn_credentials out;
  out.username = std::to_string(expires_at) + ":" + std::string{user_id};
  out.credential = hmac_sha1_base64(secret, out.username);
  return out;
}

bool enabled(const settings& config) {
  return !config.stun_urls.empty() || !config.turn_urls.empty();
}

bool refreshes(const settings& config) {
  return !config.turn_urls.empty();
}

std::string encode_ice_servers(const settings& config, std::string_view user_id, long long now) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  put(w, "type", "ice.servers");
  w.Key("payload");
  w.StartObject();
  w.Key("ice_servers");
  w.StartArray();
  if (!config.stun_urls.empty()) {
    w.StartObject();
    put_urls(w, config.stun_urls);
    w.EndObject();
  }
  long long expires_at = now + config.turn_ttl.count();
  if (!config.turn_urls.empty()) {
    auto credentials = make_turn_credentials(config.turn_secret, user_id, expires_at);
    w.StartObject();
    put_urls(w, config.turn_urls);
    put(w, "username", credentials.username);
    put(w, "credential", credentials.credential);
    w.EndObject();
  }
  w.EndArray();
  if (!config.turn_urls.empty()) {
    w.Key("ttl");
    w.Int64(config.turn_ttl.count());
    w.Key("expires_at");
    w.Int64(expires_at);
  }
  w.EndObject();
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

std::chrono::milliseconds refresh_interval(const settings& config) {
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(config.turn_ttl);
  return std::max(std::chrono::milliseconds{1}, ttl * 8 / 10);
}

} // namespace goring::ice
