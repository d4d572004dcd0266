/// Where goring-bench connects: a `ws://HOST:PORT/PATH` URL, resolved once.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace goring::bench {

struct target {
  std::string url;
  /// The Host header: HOST:PORT.
  std::string host;
  /// Path and query; a token is appended as the `token` query parameter.
  std::string path;
  boost::asio::ip::tcp::endpoint endpoint;

  /// The request target for a user holding `token`.
  std::string request_target(const std::string& token) const;
};

/// Parses `url` (only `ws://`; the path defaults to `/ws`) and resolves its
/// host, preferring IPv4. Throws std::runtime_error with a plain message.
target resolve_target(const std::string& url);

} // namespace goring::bench
