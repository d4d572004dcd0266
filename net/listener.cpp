#include "net/listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "metrics/instance_metrics.hpp"
#include "config/log.hpp"
#include "net/http_session.hpp"

namespace goring {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

listener::listener(asio::io_context& io, tcp::endpoint where,
                   std::shared_ptr<const server_context> ctx)
  : io_(io), acceptor_(asio::make_strand(io)), retry_timer_(acceptor_.get_executor()),
    ctx_(std::move(ctx)) {
  acceptor_.open(where.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(where);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void listener::run() {
  do_accept();
}

void listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

uint16_t listener::port() const {
  return acceptor_.local_endpoint().port();
}

void listener::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_), boost::beast::bind_front_handler(
                                                   &listener::on_accept, shared_from_this()));
}

void listener::on_accept(boost::system::error_code ec, connection_socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open())
    return;
  if (ec) {
    // Out of file descriptors and the like: log, pause, keep accepting;
    // retrying at once would spin while nothing can be accepted.
    GORING_LOG(warn, "listener", "accept failed: " << ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
      if (!wait_ec)
        self->do_accept();
    });
    return;
  }
  // Signaling frames are small and latency-bound: without this, Nagle's
  // algorithm holds a frame back until the client's delayed ACK (~40 ms).
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // Counted per client IP from the start, so requests that never finish
  // (slowloris) count against their address too.
  admission::ticket ticket;
  if (ctx_->admission_control) {
    auto remote = socket.remote_endpoint(ignored).address().to_string();
    ticket = ctx_->admission_control->connect(admission::client_key(remote), steady_ns());
  }
  std::make_shared<http_session>(std::move(socket), ctx_, std::move(ticket))->run();
  do_accept();
}

} // namespace goring
