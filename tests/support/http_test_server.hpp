/// A small HTTP/1.1 server on 127.0.0.1 for tests of goring's outbound
/// calls (a JWKS endpoint, a webhook receiver): it answers each request as
/// the test says, or misbehaves on purpose (stalls, floods, hangs up), over
/// plain TCP or TLS with a certificate made at test time (test_ca.hpp). It
/// runs on its own thread; every wait is bounded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace goring::test {

/// A request as the server read it.
struct recorded_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// The first header of that name (any case), "" without one.
  std::string header(const std::string& name) const;
};

class http_test_server {
public:
  /// What the server does with a request.
  enum class behaviour {
    answer, ///< the status, headers and body set below
    stall,  ///< a 200 header, then one body byte every 200 ms, never done
    flood,  ///< a 200 chunked body that never ends, as fast as it goes
    hang_up ///< closes the connection without a word
  };

  /// Plain HTTP on a free port.
  http_test_server();
  /// HTTPS with this certificate chain and key (PEM files).
  http_test_server(const std::string& cert_chain_file, const std::string& key_file);
  ~http_test_server();

  http_test_server(const http_test_server&) = delete;
  http_test_server& operator=(const http_test_server&) = delete;

  uint16_t port() const;
  /// http(s)://127.0.0.1:PORT + `path`.
  std::string url(const std::string& path = "/jwks") const;

  /// From now on every request gets this answer.
  void answer(unsigned status, std::string body,
              std::vector<std::pair<std::string, std::string>> headers = {
                {"Content-Type", "application/json"}});
  void misbehave(behaviour how);

  /// Requests read so far (hung-up and stalled ones too).
  std::size_t requests() const;
  /// Waits until `requests()` reaches `count` or `timeout` passes.
  bool wait_requests(std::size_t count, std::chrono::milliseconds timeout);
  /// The last request read; empty before any.
  recorded_request last_request() const;
  /// Every request read so far, in the order read.
  std::vector<recorded_request> all_requests() const;

  /// Closes the listening socket: connections are refused until listen().
  void close();
  /// Listens again on the same port.
  void listen();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace goring::test
