/// bare-relay: the baseline of goring's relay. It is built from the same
/// Beast code as goring's sessions (HTTP request, WebSocket upgrade, one
/// strand per connection, one write in flight, a bounded queue) but has no
/// JSON, no actors and no Redis: it pairs connections in the order their
/// upgrade requests arrive (1st with 2nd, 3rd with 4th, ...) and forwards
/// every frame to the partner. A connection is paired before its 101 goes
/// out, so a client that opens the next connection only once the last one
/// is upgraded knows who is paired with whom; connections that never ask
/// for an upgrade (a port probe, a health check) are not paired. What goring-bench measures here is
/// about what a WebSocket relay can do on the machine at all.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// goring's defaults: MAX_MESSAGE_BYTES, MAX_QUEUED_FRAMES,
/// MAX_QUEUED_BYTES, IDLE_TIMEOUT; and its HTTP request limits.
constexpr std::size_t max_message_bytes = 65536;
constexpr std::size_t max_queued_frames = 1024;
constexpr std::size_t max_queued_bytes = 1048576;
constexpr auto idle_timeout = std::chrono::seconds(60);
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::size_t header_limit = 8 * 1024;
/// How long a shutdown waits for close handshakes.
constexpr auto drain_grace = std::chrono::seconds(2);

struct relay_options {
  std::string bind = "127.0.0.1";
  uint16_t port = 8090;
  unsigned threads = 1;
  bool tcp_nodelay = false;
};

/// Counted for the line printed at exit.
struct relay_counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> forwarded{0};
  /// Frames from a connection whose partner had not come or had gone.
  std::atomic<uint64_t> unpaired{0};
};

relay_counters counters;

bool is_normal_end(beast::error_code ec) {
  return ec == websocket::error::closed || ec == asio::error::operation_aborted
         || ec == asio::error::eof || ec == asio::error::connection_reset
         || ec == beast::error::timeout || ec == asio::error::broken_pipe
         || ec == http::error::end_of_stream;
}

void fail(beast::error_code ec, const char* what) {
  if (!is_normal_end(ec))
    std::cerr << "bare-relay: " << what << ": " << ec.message() << "\n";
}

class relay_session;

/// Every live session, so a shutdown can close them.
class session_registry {
public:
  void add(relay_session* raw, std::weak_ptr<relay_session> session) {
    std::lock_guard<std::mutex> guard{mutex_};
    sessions_.emplace(raw, std::move(session));
  }
  void remove(relay_session* raw) {
    std::lock_guard<std::mutex> guard{mutex_};
    sessions_.erase(raw);
  }
  std::vector<std::shared_ptr<relay_session>> all() {
    std::lock_guard<std::mutex> guard{mutex_};
    std::vector<std::shared_ptr<relay_session>> out;
    for (auto& [raw, weak] : sessions_)
      if (auto s = weak.lock())
        out.push_back(std::move(s));
    return out;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mutex_};
    return sessions_.size();
  }

private:
  std::mutex mutex_;
  std::unordered_map<relay_session*, std::weak_ptr<relay_session>> sessions_;
};

session_registry registry;

/// Two connections paired by the order their upgrade requests arrived.
struct pair_link {
  std::mutex mutex;
  std::weak_ptr<relay_session> sides[2];

  void set(int side, const std::shared_ptr<relay_session>& session) {
    std::lock_guard<std::mutex> guard{mutex};
    sides[side] = session;
  }
  std::shared_ptr<relay_session> partner_of(int side) {
    std::lock_guard<std::mutex> guard{mutex};
    return sides[1 - side].lock();
  }
};

/// Hands out pair_links in the order upgrade requests arrive: the 1st
/// request gets side 0 of a new link, the 2nd side 1 of the same link, ...
class pairing {
public:
  std::pair<std::shared_ptr<pair_link>, int> next();

private:
  std::mutex mutex_;
  std::shared_ptr<pair_link> waiting_;
};

std::pair<std::shared_ptr<pair_link>, int> pairing::next() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!waiting_) {
    waiting_ = std::make_shared<pair_link>();
    return {waiting_, 0};
  }
  auto link = std::move(waiting_);
  waiting_.reset();
  return {link, 1};
}

pairing pairs;

/// One WebSocket: forwards what it reads to its partner, writes what its
/// partner forwards.
class relay_session : public std::enable_shared_from_this<relay_session> {
public:
  relay_session(tcp::socket socket, bool tcp_nodelay) : ws_(std::move(socket)) {
    beast::error_code ignored;
    if (tcp_nodelay)
      beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
  }

  ~relay_session() {
    registry.remove(this);
  }

  void run() {
    asio::dispatch(ws_.get_executor(), [self = shared_from_this()] { self->do_read_request(); });
  }

  /// A frame from the partner; any thread.
  void forward(std::string frame, bool text) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame),
                                    text]() mutable { self->enqueue(std::move(frame), text); });
  }

  /// Closes with `code` once queued frames are written; any thread.
  void close(websocket::close_code code) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), code] { self->start_close(code); });
  }

private:
  struct outgoing {
    std::string frame;
    bool text;
  };

  void do_read_request() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(4096);
    beast::get_lowest_layer(ws_).expires_after(request_timeout);
    http::async_read(
      ws_.next_layer(), buffer_, *parser_,
      beast::bind_front_handler(&relay_session::on_read_request, shared_from_this()));
  }

  void on_read_request(beast::error_code ec, std::size_t) {
    if (ec)
      return fail(ec, "read request");
    auto req = parser_->release();
    if (!websocket::is_upgrade(req)) {
      // Not a WebSocket: nothing to relay.
      beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    std::tie(link_, side_) = pairs.next();
    link_->set(side_, shared_from_this());
    beast::get_lowest_layer(ws_).expires_never();
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "bare-relay"); }));
    ws_.read_message_max(max_message_bytes);
    ws_.async_accept(req, beast::bind_front_handler(&relay_session::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec) {
    if (ec)
      return fail(ec, "accept");
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&relay_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t bytes) {
    if (ec) {
      fail(ec, "read");
      // The partner's "call" is over too.
      if (auto peer = partner())
        peer->close(websocket::close_code::normal);
      return;
    }
    bool text = ws_.got_text();
    auto frame = beast::buffers_to_string(buffer_.data());
    buffer_.consume(bytes);
    if (auto peer = partner()) {
      counters.forwarded.fetch_add(1, std::memory_order_relaxed);
      peer->forward(std::move(frame), text);
    } else {
      counters.unpaired.fetch_add(1, std::memory_order_relaxed);
    }
    do_read();
  }

  /// The partner, looked up once it has come and cached (weakly) after.
  std::shared_ptr<relay_session> partner() {
    if (!link_)
      return nullptr;
    if (auto p = partner_.lock())
      return p;
    auto p = link_->partner_of(side_);
    partner_ = p;
    return p;
  }

  void enqueue(std::string frame, bool text) {
    if (closing_)
      return;
    if (queue_.size() >= max_queued_frames || queued_bytes_ + frame.size() > max_queued_bytes) {
      // As goring does: a client this far behind is cut off.
      start_close(websocket::close_code::try_again_later);
      return;
    }
    queued_bytes_ += frame.size();
    queue_.push_back({std::move(frame), text});
    if (!writing_)
      do_write();
  }

  void do_write() {
    writing_ = true;
    ws_.text(queue_.front().text);
    ws_.async_write(asio::buffer(queue_.front().frame),
                    beast::bind_front_handler(&relay_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      fail(ec, "write");
      queue_.clear();
      queued_bytes_ = 0;
      return;
    }
    queued_bytes_ -= queue_.front().frame.size();
    queue_.pop_front();
    if (!queue_.empty())
      do_write();
    else if (closing_)
      do_close();
  }

  void start_close(websocket::close_code code) {
    if (closing_)
      return;
    closing_ = true;
    close_code_ = code;
    if (!writing_)
      do_close();
  }

  void do_close() {
    if (close_sent_ || !ws_.is_open())
      return;
    close_sent_ = true;
    ws_.async_close(close_code_,
                    [self = shared_from_this()](beast::error_code ec) { fail(ec, "close"); });
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<pair_link> link_;
  int side_ = 0;
  std::weak_ptr<relay_session> partner_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
};

/// Accepts connections, each onto its own strand.
class relay_listener : public std::enable_shared_from_this<relay_listener> {
public:
  relay_listener(asio::io_context& io, tcp::endpoint where, bool tcp_nodelay)
    : io_(io), acceptor_(asio::make_strand(io)), tcp_nodelay_(tcp_nodelay) {
    acceptor_.open(where.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(where);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  void run() {
    do_accept();
  }

  void stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

private:
  void do_accept() {
    acceptor_.async_accept(
      asio::make_strand(io_),
      beast::bind_front_handler(&relay_listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    if (ec) {
      // Out of file descriptors and the like: pause rather than spin.
      fail(ec, "accept");
      auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor());
      timer->expires_after(std::chrono::milliseconds(100));
      timer->async_wait(
        [self = shared_from_this(), timer](beast::error_code) { self->do_accept(); });
      return;
    }
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    auto session = std::make_shared<relay_session>(std::move(socket), tcp_nodelay_);
    registry.add(session.get(), session);
    session->run();
    do_accept();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  bool tcp_nodelay_;
};

const char* usage_text =
  R"(bare-relay [--port P] [--bind ADDR] [--threads N] [--tcp-nodelay]

A WebSocket relay with nothing else: it pairs connections in the order their
upgrade requests arrive (1st with 2nd, 3rd with 4th, ...), before it answers
101, and forwards every frame to the partner; when one side closes, the other
is closed. Same Beast code and limits as goring's sessions (64 KiB frames,
1024 frames / 1 MiB queued, 60 s idle timeout with pings), no JSON, no
actors, no Redis. The baseline of `goring-bench relay --bare`.

  --port P        listening port; 0 picks one (printed)              [8090]
  --bind ADDR     listening address                             [127.0.0.1]
  --threads N     threads running the one io_context                    [1]
  --tcp-nodelay   set TCP_NODELAY on accepted sockets (goring does not)
SIGINT/SIGTERM closes every connection (1001) and exits within 2 s.
)";

relay_options parse(int argc, char** argv) {
  relay_options opt;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "bare-relay: " << flag << " wants a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::cout << usage_text;
      std::exit(0);
    } else if (flag == "--port") {
      auto v = std::atoi(value().c_str());
      if (v < 0 || v > 65535) {
        std::cerr << "bare-relay: --port must be 0 to 65535\n";
        std::exit(2);
      }
      opt.port = static_cast<uint16_t>(v);
    } else if (flag == "--bind") {
      opt.bind = value();
    } else if (flag == "--threads") {
      auto v = std::atoi(value().c_str());
      if (v < 1 || v > 64) {
        std::cerr << "bare-relay: --threads must be 1 to 64\n";
        std::exit(2);
      }
      opt.threads = static_cast<unsigned>(v);
    } else if (flag == "--tcp-nodelay") {
      opt.tcp_nodelay = true;
    } else {
      std::cerr << "bare-relay: unknown option " << flag << "; see --help\n";
      std::exit(2);
    }
  }
  return opt;
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  asio::io_context io{static_cast<int>(opt.threads)};
  std::shared_ptr<relay_listener> listener;
  try {
    listener = std::make_shared<relay_listener>(
      io, tcp::endpoint{asio::ip::make_address(opt.bind), opt.port}, opt.tcp_nodelay);
  } catch (const std::exception& e) {
    std::cerr << "bare-relay: cannot listen on " << opt.bind << ":" << opt.port << ": " << e.what()
              << "\n";
    return 1;
  }
  std::cerr << "bare-relay: listening on " << opt.bind << ":" << listener->port() << " with "
            << opt.threads << " thread(s)" << std::endl;
  listener->run();

  // Drain on a signal: stop accepting, close every connection, give the
  // close handshakes a moment, then stop.
  asio::signal_set signals{io, SIGINT, SIGTERM};
  asio::steady_timer drain_timer{io};
  std::chrono::steady_clock::time_point drain_deadline;
  std::function<void()> check_drained = [&] {
    if (registry.size() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      io.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](beast::error_code) { check_drained(); });
  };
  signals.async_wait([&](beast::error_code ec, int) {
    if (ec)
      return;
    listener->stop();
    for (auto& session : registry.all())
      session->close(websocket::close_code::going_away);
    drain_deadline = std::chrono::steady_clock::now() + drain_grace;
    check_drained();
  });

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < opt.threads; ++i)
    threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  std::cerr << "bare-relay: " << counters.accepted.load() << " connections, "
            << counters.forwarded.load() << " frames forwarded, " << counters.unpaired.load()
            << " without a partner" << std::endl;
  return 0;
}
