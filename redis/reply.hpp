/// A Redis reply as plain data, detached from hiredis' memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct redisReply;

namespace goring::redis {

/// One RESP value. Errors carry their text in `str`; a lost connection or a
/// command that could not be sent is an error reply too, so every callback
/// gets exactly one reply.
struct reply {
  enum class kind : uint8_t { nil, integer, string, status, error, array };

  kind type = kind::nil;
  long long integer = 0;
  std::string str;
  std::vector<reply> elements;

  bool is_error() const {
    return type == kind::error;
  }
  bool is_nil() const {
    return type == kind::nil;
  }

  static reply make_error(std::string text) {
    reply r;
    r.type = kind::error;
    r.str = std::move(text);
    return r;
  }
};

/// Copies a hiredis reply (nullptr: the connection is gone) into plain data.
reply to_reply(const redisReply* r);

} // namespace goring::redis
