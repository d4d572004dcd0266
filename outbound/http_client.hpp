/// goring's HTTP/1.1 client for calls out to other services: the identity
/// provider's JWKS now, webhooks next. GET or POST over TCP or TLS (OpenSSL,
/// verifying the server's certificate against the system CAs or
/// OUTBOUND_CA_FILE, with SNI and host name checks), one connection per
/// request, every request bounded in time, in body size, and in how many
/// run at once. Asynchronous on an io_context; no Boost in this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outbound/url.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring::outbound {

/// One request.
struct http_request {
  std::string method = "GET"; ///< GET or POST
  url where;
  /// Added to Host, User-Agent, Connection: close and Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Everything (resolve, connect, TLS, write, read) within this.
  std::chrono::milliseconds timeout{5'000};
  /// A longer response body fails the request (too_large).
  std::size_t max_body_bytes = 1u << 20;
  /// Plain http:// to any host. Off: loopback only (the JWKS, whose keys a
  /// man in the middle could replace). On for WEBHOOK_URL, whose bodies are
  /// signed and whose receiver may sit beside goring in a private network.
  bool allow_plain_http = false;
};

/// A response: any status; redirects are not followed.
struct http_response {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header of that name (any case), nothing without one.
  std::optional<std::string> header(std::string_view name) const;
};

/// Why a request got no response.
enum class http_failure {
  none,
  refused_url, ///< plain http:// to an address that is not loopback
  busy,        ///< max_in_flight requests already running
  resolve,     ///< the host name did not resolve
  connect,     ///< no address took the connection
  tls,         ///< the TLS handshake failed: certificate, host name, protocol
  timeout,     ///< the request's timeout passed
  too_large,   ///< the body (or the header) passed its limit
  protocol,    ///< the answer was no HTTP/1.x response, or the connection broke
};

/// The outcome of one request: a response, or a failure and its reason.
struct http_result {
  std::optional<http_response> response;
  http_failure failure = http_failure::none;
  /// For the log; never holds the request's headers or body.
  std::string error;
};

/// The label value of a failure: "timeout", "tls", ...
const char* failure_name(http_failure failure);

/// How a client works.
struct http_client_options {
  /// PEM file of the CAs to trust instead of the system's; empty: the
  /// system's (OpenSSL's default paths, which honour SSL_CERT_FILE and
  /// SSL_CERT_DIR).
  std::string ca_file;
  /// Requests running at once; one more fails at once with `busy`.
  std::size_t max_in_flight = 64;
  /// The User-Agent header.
  std::string user_agent = "goring";
};

class http_client;

/// A client, or why there is none (a CA file that does not load).
struct http_client_setup {
  std::shared_ptr<http_client> client;
  std::string error;
};

class http_client {
public:
  /// Sends `request` and calls `done` exactly once, on one of `io`'s
  /// threads (never inside send()), with the response or the failure, at
  /// the latest when the request's timeout has passed. Plain http:// goes
  /// only to loopback addresses (see outbound_url_problem), checked again
  /// on the resolved addresses, unless the request sets allow_plain_http.
  /// Safe from any thread.
  void send(http_request request, std::function<void(http_result)> done);

  /// Requests sent and not answered yet.
  std::size_t in_flight() const;

  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  struct impl;

private:
  friend http_client_setup make_http_client(boost::asio::io_context& io,
                                            http_client_options options);
  explicit http_client(std::shared_ptr<impl> state);

  std::shared_ptr<impl> impl_;
};

/// A client whose requests run on `io`.
http_client_setup make_http_client(boost::asio::io_context& io, http_client_options options = {});

} // namespace goring::outbound
