#include "redis/cluster_keys.hpp"

#include <array>
#include <cstdlib>

#include <strings.h>

namespace goring::redis::cluster {

namespace {

constexpr std::array<uint16_t, 256> make_crc_table() {
  std::array<uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    table[byte] = crc;
  }
  return table;
}

constexpr auto crc_table = make_crc_table();

bool is(const std::string& word, const char* name) {
  return strcasecmp(word.c_str(), name) == 0;
}

} // namespace

uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data)
    crc = static_cast<uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

std::string_view hashed_part(std::string_view key) {
  auto open = key.find('{');
  if (open == std::string_view::npos)
    return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1)
    return key;
  return key.substr(open + 1, close - open - 1);
}

uint16_t key_slot(std::string_view key) {
  return static_cast<uint16_t>(crc16(hashed_part(key)) & (slot_count - 1));
}

std::string user_tag(std::string_view user_id) {
  if (user_id.empty())
    return "%";
  std::string tag;
  tag.reserve(user_id.size());
  for (char c : user_id) {
    switch (c) {
      case '%':
        tag += "%25";
        break;
      case '{':
        tag += "%7B";
        break;
      case '}':
        tag += "%7D";
        break;
      default:
        tag += c;
    }
  }
  return tag;
}

std::string user_key(std::string_view prefix, std::string_view user_id) {
  std::string key;
  key.reserve(prefix.size() + user_id.size() + 2);
  key.append(prefix).append("{").append(user_tag(user_id)).append("}");
  return key;
}

std::string partition_tag(unsigned p, unsigned count) {
  for (unsigned k = 0;; ++k) {
    auto tag = std::to_string(p) + "-" + std::to_string(k);
    if (unsigned{key_slot(tag)} * count / slot_count == p)
      return tag;
  }
}

unsigned partition_of(std::string_view id, unsigned count) {
  return crc16(id) % count;
}

command_route route_of(const std::vector<std::string>& argv) {
  command_route route;
  if (argv.empty())
    return route;
  const auto& name = argv[0];
  for (const char* script : {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}) {
    if (!is(name, script))
      continue;
    if (argv.size() > 3 && std::strtol(argv[2].c_str(), nullptr, 10) > 0) {
      route.kind = route_kind::by_key;
      route.key = argv[3];
    }
    return route;
  }
  if (is(name, "SCRIPT")) {
    if (argv.size() > 1 && (is(argv[1], "LOAD") || is(argv[1], "FLUSH")))
      route.kind = route_kind::every_master;
    return route;
  }
  for (const char* keyless : {"PING", "INFO", "CLIENT", "CLUSTER", "ROLE", "TIME", "ECHO",
                              "COMMAND", "CONFIG", "DBSIZE", "LATENCY", "SLOWLOG", "MEMORY",
                              "READONLY", "READWRITE", "HELLO", "AUTH", "SELECT", "LOLWUT"})
    if (is(name, keyless))
      return route;
  if (is(name, "XGROUP") || is(name, "XINFO")) {
    if (argv.size() > 2) {
      route.kind = route_kind::by_key;
      route.key = argv[2];
    }
    return route;
  }
  if (is(name, "XREAD") || is(name, "XREADGROUP")) {
    for (std::size_t i = 1; i + 1 < argv.size(); ++i)
      if (is(argv[i], "STREAMS")) {
        route.kind = route_kind::by_key;
        route.key = argv[i + 1];
        break;
      }
    return route;
  }
  if (argv.size() > 1) {
    route.kind = route_kind::by_key;
    route.key = argv[1];
  }
  return route;
}

} // namespace goring::redis::cluster
