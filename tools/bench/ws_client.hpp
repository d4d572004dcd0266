/// One client WebSocket of the bench. It lives on one single-threaded
/// io_context: connects with a token, hands every frame it reads to a
/// handler, writes through a queue with one write in flight.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "tools/bench/target.hpp"
#include "tools/bench/thread_stats.hpp"

namespace goring::bench {

/// Counters of all clients of a run, read by the main thread while the
/// client threads work.
struct connection_counters {
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> failed{0};
  /// Opened, then closed by either side.
  std::atomic<std::size_t> closed{0};
  /// Closed by the server or lost, not asked for by the bench.
  std::atomic<std::size_t> dropped{0};
};

class ws_client : public std::enable_shared_from_this<ws_client> {
public:
  using clock = std::chrono::steady_clock;
  using frame_handler = std::function<void(std::string_view frame)>;
  using event_handler = std::function<void()>;
  using open_handler = std::function<void(bool ok)>;

  /// `where`, `stats` and `counters` outlive the client; `stats` belongs
  /// to the thread running `io`. `timeout` bounds the connection and the
  /// close handshake.
  ws_client(boost::asio::io_context& io, const target& where, std::string token,
            thread_stats& stats, connection_counters& counters, std::chrono::milliseconds timeout);

  /// Called for every frame read, on the client's thread.
  void on_frame(frame_handler handler) {
    on_frame_ = std::move(handler);
  }
  /// Called once when the connection ends without close() being asked for.
  void on_dropped(event_handler handler) {
    on_dropped_ = std::move(handler);
  }

  /// Connects TCP, upgrades to WebSocket, records the upgrade latency (or
  /// the error) and calls `done`; then reads until the connection ends.
  /// Call on the client's thread.
  void connect(open_handler done);

  /// Queues a text frame. Call on the client's thread.
  void send(std::string frame);

  /// Closes with 1000 once queued frames are written. Call on the client's
  /// thread.
  void close();

  bool is_open() const {
    return open_ && !ended_;
  }
  boost::asio::io_context& context() {
    return io_;
  }

private:
  void on_connect(boost::beast::error_code ec);
  void on_handshake(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void do_close();
  void fail_connect(const std::string& why);

  boost::asio::io_context& io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  const target& where_;
  std::string token_;
  thread_stats& stats_;
  connection_counters& counters_;
  std::chrono::milliseconds timeout_;
  boost::beast::websocket::response_type response_;
  boost::beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  frame_handler on_frame_;
  event_handler on_dropped_;
  open_handler open_done_;
  clock::time_point connect_started_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool ended_ = false;
};

} // namespace goring::bench
