/// One WebSocket: reads frames and hands them to its connection actor,
/// writes what the actor gives it through a bounded queue. Decides nothing
/// about calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "admission/admission.hpp"
#include "net/connection_stream.hpp"
#include "net/link.hpp"
#include "net/server_context.hpp"
#include "admission/token_bucket.hpp"

namespace goring {

/// The frames waiting for one client, oldest first. A vector and the index
/// of its head: unlike std::deque (about 600 bytes at construction) it
/// costs nothing while empty, and idle connections are the many.
class frame_queue {
public:
  bool empty() const {
    return head_ == frames_.size();
  }
  std::size_t size() const {
    return frames_.size() - head_;
  }
  std::string& front() {
    return frames_[head_];
  }
  std::string& back() {
    return frames_.back();
  }
  void push_back(std::string frame) {
    frames_.push_back(std::move(frame));
  }
  void pop_front() {
    frames_[head_++].clear();
    if (empty())
      clear();
  }
  void pop_back() {
    frames_.pop_back();
    if (empty())
      clear();
  }
  /// Empties the queue; memory beyond a few frames goes back, so a burst
  /// once queued is not held for the life of the connection.
  void clear() {
    if (frames_.capacity() > 4)
      std::vector<std::string>{}.swap(frames_);
    else
      frames_.clear();
    head_ = 0;
  }

private:
  std::vector<std::string> frames_;
  std::size_t head_ = 0;
};

class websocket_session : public client_link,
                          public std::enable_shared_from_this<websocket_session> {
public:
  /// `ticket` holds the connection's place in the per-IP and instance
  /// counts until the session ends.
  websocket_session(connection_socket socket, std::shared_ptr<const server_context> ctx,
                    auth::claims who, admission::ticket ticket = {});
  ~websocket_session() override;

  /// The subprotocol the 101 answer selects (empty: none); before run().
  void select_subprotocol(std::string name) {
    subprotocol_ = std::move(name);
  }

  /// Completes the upgrade for `req`, then starts reading.
  void run(boost::beast::http::request<boost::beast::http::string_body> req);

  // client_link, callable from any thread.
  void send(std::string frame) override;
  void close(uint16_t code, std::string reason) override;

private:
  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  /// MESSAGE_RATE: whether the frame just read may go on. An refused frame
  /// gets error rate_limited; a client that goes on is closed with 1008.
  bool within_rate();
  void enqueue(std::string frame);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void start_close(uint16_t code, std::string reason);
  void do_close();
  /// Reports the end of the socket to the actor, once.
  void finish(close_kind why);
  /// Keep-alive: the next tick, IDLE_TIMEOUT/2 from now on a shared grid.
  void arm_keepalive();
  void on_keepalive(boost::beast::error_code ec);

  /// Straight on the socket: Beast's basic_stream (timeouts and rate
  /// limits per operation, which the keep-alive does here) cost ~700 bytes
  /// and a layer of every read and write per connection.
  boost::beast::websocket::stream<connection_socket> ws_;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<const server_context> ctx_;
  auth::claims who_;
  std::string subprotocol_;
  std::shared_ptr<connection_port> port_;
  frame_queue queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  /// The server is cutting this client off (too big, too slow).
  bool policy_close_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  boost::beast::websocket::close_reason close_reason_;
  /// The keep-alive ticks while open, then the close's grace.
  connection_timer timer_;
  /// A frame (data or control) came since the last keep-alive tick.
  bool heard_ = false;
  /// A keep-alive tick pinged.
  bool pinged_ = false;
  bool ping_in_flight_ = false;
  /// Closed for want of a pong.
  bool timed_out_ = false;
  admission::ticket ticket_;
  token_bucket frames_;
  /// Frames refused since `refusals_since_` (steady ns), a one-second window.
  unsigned refusals_ = 0;
  int64_t refusals_since_ = 0;
};

} // namespace goring
