#include "tools/bench/ws_client.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/bind_handler.hpp>

namespace goring::bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

ws_client::ws_client(boost::asio::io_context& io, const target& where, std::string token,
                     thread_stats& stats, connection_counters& counters,
                     std::chrono::milliseconds timeout)
  : io_(io), ws_(io), where_(where), token_(std::move(token)), stats_(stats), counters_(counters),
    timeout_(timeout) {
  // nop
}

void ws_client::connect(open_handler done) {
  open_done_ = std::move(done);
  connect_started_ = clock::now();
  auto& stream = beast::get_lowest_layer(ws_);
  stream.expires_after(timeout_);
  stream.async_connect(where_.endpoint,
                       beast::bind_front_handler(&ws_client::on_connect, shared_from_this()));
}

void ws_client::on_connect(beast::error_code ec) {
  if (ec) {
    fail_connect(ec.message());
    return;
  }
  auto& stream = beast::get_lowest_layer(ws_);
  // A browser sends its small frames at once; so does the bench.
  stream.socket().set_option(boost::asio::ip::tcp::no_delay(true), ec);
  // From here the WebSocket's own timeouts apply, not the TCP stream's.
  stream.expires_never();
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
  timeouts.handshake_timeout = timeout_;
  ws_.set_option(timeouts);
  ws_.async_handshake(response_, where_.host, where_.request_target(token_),
                      beast::bind_front_handler(&ws_client::on_handshake, shared_from_this()));
}

void ws_client::on_handshake(beast::error_code ec) {
  if (ec) {
    if (ec == websocket::error::upgrade_declined)
      fail_connect("HTTP " + std::to_string(response_.result_int()));
    else
      fail_connect(ec.message());
    return;
  }
  stats_.upgrade.record(clock::now() - connect_started_);
  response_ = {};
  open_ = true;
  counters_.open.fetch_add(1, std::memory_order_relaxed);
  do_read();
  if (open_done_) {
    auto done = std::move(open_done_);
    done(true);
  }
}

void ws_client::fail_connect(const std::string& why) {
  ++stats_.errors["connect: " + why];
  ended_ = true;
  counters_.failed.fetch_add(1, std::memory_order_relaxed);
  if (open_done_) {
    auto done = std::move(open_done_);
    done(false);
  }
}

void ws_client::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_client::on_read, shared_from_this()));
}

void ws_client::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (ended_)
      return;
    ended_ = true;
    queue_.clear();
    if (!closing_) {
      if (ec == websocket::error::closed) {
        const auto& why = ws_.reason();
        ++stats_.errors["closed by server: " + std::to_string(why.code) + " "
                        + std::string(why.reason.data(), why.reason.size())];
      } else {
        ++stats_.errors["connection lost: " + ec.message()];
      }
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    counters_.closed.fetch_add(1, std::memory_order_relaxed);
    if (!closing_ && on_dropped_)
      on_dropped_();
    return;
  }
  auto data = buffer_.data();
  if (on_frame_)
    on_frame_(std::string_view{static_cast<const char*>(data.data()), data.size()});
  buffer_.consume(buffer_.size());
  do_read();
}

void ws_client::send(std::string frame) {
  if (!is_open() || closing_)
    return;
  queue_.push_back(std::move(frame));
  if (!writing_)
    do_write();
}

void ws_client::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(boost::asio::buffer(queue_.front()),
                  beast::bind_front_handler(&ws_client::on_write, shared_from_this()));
}

void ws_client::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    // The read side sees the end of the connection and reports it.
    queue_.clear();
    return;
  }
  queue_.pop_front();
  if (!queue_.empty())
    do_write();
  else if (closing_)
    do_close();
}

void ws_client::close() {
  if (!is_open() || closing_)
    return;
  closing_ = true;
  if (!writing_)
    do_close();
}

void ws_client::do_close() {
  if (close_sent_ || ended_)
    return;
  close_sent_ = true;
  ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
    // The pending read ends with `closed` (or the handshake timeout) and
    // counts the connection as closed.
  });
}

} // namespace goring::bench
