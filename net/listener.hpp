/// Accepts TCP connections on the public port and hands each to an
/// http_session.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/connection_stream.hpp"
#include "net/server_context.hpp"

namespace goring {

class listener : public std::enable_shared_from_this<listener> {
public:
  /// Binds and listens; throws boost::system::system_error on failure.
  listener(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint where,
           std::shared_ptr<const server_context> ctx);

  void run();
  /// Stops accepting; open sessions go on.
  void stop();
  uint16_t port() const;

private:
  void do_accept();
  void on_accept(boost::system::error_code ec, connection_socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<const server_context> ctx_;
};

} // namespace goring
