#include "tools/goringctl/admin_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "tools/goringctl/error.hpp"

namespace goringctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// Admin answers are small lists; this only stops a runaway body.
constexpr std::uint64_t body_limit = 16 * 1024 * 1024;

/// One request and its answer: resolve, connect, write, read, each step an
/// `on_*` handler, all run by a private io_context within one deadline.
class exchange {
public:
  exchange(const std::string& host, const std::string& port, http::verb method,
           const std::string& target, const std::string& token)
    : resolver_(ioc_), stream_(ioc_), host_(host), port_(port), request_(method, target, 11) {
    request_.set(http::field::host, host + ":" + port);
    request_.set(http::field::user_agent, "goringctl/" GORING_VERSION);
    request_.set(http::field::accept, "application/json");
    request_.set(http::field::connection, "close");
    if (!token.empty())
      request_.set(http::field::authorization, "Bearer " + token);
    request_.prepare_payload();
    parser_.body_limit(body_limit);
  }

  /// Runs the exchange; `what` names the instance in messages.
  http_answer run(const std::string& what) {
    resolver_.async_resolve(
      host_, port_,
      [this](beast::error_code ec, tcp::resolver::results_type r) { on_resolve(ec, r); });
    ioc_.run_for(request_timeout);
    if (!done_)
      throw error{"admin API at " + what + " did not answer within "
                  + std::to_string(request_timeout.count()) + " s"};
    if (failure_)
      throw error{"cannot reach admin API at " + what + ": " + stage_
                  + " failed: " + failure_.message()};
    auto& res = parser_.get();
    return {res.result_int(), res.body()};
  }

private:
  void fail(beast::error_code ec, const char* stage) {
    failure_ = ec;
    stage_ = stage;
    done_ = true;
  }

  void on_resolve(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec)
      return fail(ec, "resolve");
    stream_.async_connect(results,
                          [this](beast::error_code ec, const tcp::endpoint&) { on_connect(ec); });
  }

  void on_connect(beast::error_code ec) {
    if (ec)
      return fail(ec, "connect");
    http::async_write(stream_, request_,
                      [this](beast::error_code ec, std::size_t) { on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (ec)
      return fail(ec, "request");
    http::async_read(stream_, buffer_, parser_,
                     [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec)
      return fail(ec, "reading the answer");
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    done_ = true;
  }

  // The io_context outlives the I/O objects, which may still have work
  // pending when the deadline passed.
  asio::io_context ioc_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::string host_;
  std::string port_;
  http::request<http::empty_body> request_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  bool done_ = false;
  beast::error_code failure_;
  const char* stage_ = "";
};

/// What an error answer says: its `error` member when it is goring's JSON
/// error object, else the first line of the body; shortened.
std::string reason_of(const std::string& body) {
  constexpr std::size_t max_length = 120;
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  auto line = body.substr(0, body.find('\n'));
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") && doc["error"].IsString())
    line = doc["error"].GetString();
  if (line.size() > max_length)
    line = line.substr(0, max_length) + "...";
  return line;
}

} // namespace

admin_client::admin_client(const std::string& url, std::string token) : token_(std::move(token)) {
  std::string rest = url;
  constexpr std::string_view scheme = "http://";
  if (rest.compare(0, scheme.size(), scheme) == 0)
    rest.erase(0, scheme.size());
  else if (rest.find("://") != std::string::npos)
    throw usage_error("admin URL '" + url + "' must use http:// (the admin listener has no TLS)");
  // A trailing slash is harmless; any other path is not what goring serves.
  if (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  if (rest.find('/') != std::string::npos)
    throw usage_error("admin URL '" + url + "' must be http://HOST:PORT, without a path");
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    throw usage_error("admin URL '" + url + "' must name a host and a port (HOST:PORT)");
  host_ = rest.substr(0, colon);
  port_ = rest.substr(colon + 1);
  if (port_.find_first_not_of("0123456789") != std::string::npos || port_.size() > 5
      || std::stoul(port_) == 0 || std::stoul(port_) > 65535)
    throw usage_error("admin URL '" + url + "' has an invalid port '" + port_ + "'");
  if (host_.size() > 2 && host_.front() == '[' && host_.back() == ']')
    host_ = host_.substr(1, host_.size() - 2);
  address_ = rest;
}

http_answer admin_client::request(const std::string& method, const std::string& target) const {
  exchange ex{host_, port_, http::string_to_verb(method), target, token_};
  return ex.run(address_);
}

void admin_client::check(const http_answer& answer, const std::string& target,
                         const std::string& not_found_message) const {
  if (answer.status >= 200 && answer.status < 300)
    return;
  if (answer.status == 401) {
    if (token_.empty())
      throw error{"admin API at " + address_
                  + " requires a token (401): pass --token or set GORING_ADMIN_TOKEN"};
    throw error{"admin API at " + address_ + " refused the token (401)"};
  }
  if (answer.status == 404) {
    if (!not_found_message.empty())
      throw error{not_found_message};
    throw error{"admin API at " + address_ + " has no " + target + " (404)"};
  }
  throw error{"admin API at " + address_ + " answered " + std::to_string(answer.status) + " to "
              + target + ": " + reason_of(answer.body)};
}

rapidjson::Document admin_client::parse(const http_answer& answer,
                                        const std::string& target) const {
  rapidjson::Document doc;
  doc.Parse(answer.body.data(), answer.body.size());
  if (doc.HasParseError())
    throw error{"admin API at " + address_ + " answered " + target + " with invalid JSON"};
  return doc;
}

rapidjson::Document admin_client::get_json(const std::string& target,
                                           const std::string& not_found_message) const {
  auto answer = request("GET", target);
  check(answer, target, not_found_message);
  return parse(answer, target);
}

std::optional<rapidjson::Document> admin_client::find_json(const std::string& target) const {
  auto answer = request("GET", target);
  if (answer.status == 404)
    return std::nullopt;
  check(answer, target, {});
  return parse(answer, target);
}

http_answer admin_client::send(const std::string& method, const std::string& target,
                               const std::string& not_found_message) const {
  auto answer = request(method, target);
  check(answer, target, not_found_message);
  return answer;
}

std::string url_encode(const std::string& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                      || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

} // namespace goringctl
