/// One request of outbound/http_client from start to end: resolve,
/// connect, TLS handshake, write, read, all on one strand under one
/// deadline. Included by http_client.cpp only (it brings Beast and Asio).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "outbound/http_client.hpp"

namespace goring::outbound {

/// The longest response header goring reads.
inline constexpr std::uint32_t max_response_header_bytes = 16 * 1024;

class http_exchange : public std::enable_shared_from_this<http_exchange> {
public:
  /// `done` runs exactly once, on the exchange's strand.
  http_exchange(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
                http_request request, std::function<void(http_result)> done);

  /// Starts; call once, from any thread.
  void run();

private:
  using tcp = boost::asio::ip::tcp;

  void on_start();
  void on_resolve(boost::beast::error_code ec, tcp::resolver::results_type results);
  void on_connect(boost::beast::error_code ec, const tcp::endpoint& endpoint);
  void on_handshake(boost::beast::error_code ec);
  void write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void on_header(boost::beast::error_code ec, std::size_t bytes);
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void on_deadline(boost::beast::error_code ec);
  /// Ends the exchange with a failure, once; later calls do nothing.
  void fail(http_failure failure, std::string what);
  void finish(http_result result);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  tcp::resolver resolver_;
  boost::asio::steady_timer deadline_;
  /// For http:// only its next layer carries the bytes.
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::string_body> wire_request_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  http_request request_;
  std::function<void(http_result)> done_;
  bool finished_ = false;
};

} // namespace goring::outbound
