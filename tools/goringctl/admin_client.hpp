/// A blocking client of one goring instance's admin API (JSON over HTTP),
/// every request bounded by a timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <rapidjson/document.h>

namespace goringctl {

/// How long one request to an admin API may take, connect to last byte.
inline constexpr std::chrono::seconds request_timeout{5};

/// The status and body of one answer.
struct http_answer {
  unsigned status = 0;
  std::string body;
};

/// One admin listener, addressed as "http://HOST:PORT", "HOST:PORT" or
/// "[V6]:PORT". Every method throws goringctl::error with a one-line message
/// naming the address when the instance cannot be reached or times out.
class admin_client {
public:
  /// Throws a usage error when `url` is not one of the forms above.
  admin_client(const std::string& url, std::string token);

  /// "HOST:PORT", for messages.
  const std::string& address() const {
    return address_;
  }

  /// Sends one request with an empty body; any status comes back.
  http_answer request(const std::string& method, const std::string& target) const;

  /// GET `target`, expecting 200 and a JSON body. A 404 throws
  /// `not_found_message` (or a generic message when it is empty); a 401
  /// says whether a token was missing or refused.
  rapidjson::Document get_json(const std::string& target,
                               const std::string& not_found_message = {}) const;

  /// get_json, but nothing when the answer is 404.
  std::optional<rapidjson::Document> find_json(const std::string& target) const;

  /// POST/PUT `target`, expecting a 2xx status; errors as get_json.
  http_answer send(const std::string& method, const std::string& target,
                   const std::string& not_found_message = {}) const;

private:
  /// Throws unless `answer` has a 2xx status.
  void check(const http_answer& answer, const std::string& target,
             const std::string& not_found_message) const;
  /// Parses a JSON body; throws when it is not JSON.
  rapidjson::Document parse(const http_answer& answer, const std::string& target) const;

  std::string host_;
  std::string port_;
  std::string address_;
  std::string token_;
};

/// Percent-encodes one path segment or query value.
std::string url_encode(const std::string& text);

} // namespace goringctl
