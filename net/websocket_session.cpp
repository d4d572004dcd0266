#include "net/websocket_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "metrics/instance_metrics.hpp"
#include "codec/protocol.hpp"
#include "config/log.hpp"

namespace goring {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

/// Errors that are just the end of a connection, not worth a log line.
bool is_normal_end(beast::error_code ec) {
  return ec == websocket::error::closed || ec == boost::asio::error::operation_aborted
         || ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset
         || ec == beast::error::timeout || ec == boost::asio::error::broken_pipe;
}

/// How long a close may take before the socket is simply dropped.
constexpr auto close_grace = std::chrono::seconds(3);

/// The first read of a message asks for this much buffer at most.
constexpr std::size_t first_read_bytes = 512;

/// A read buffer grown past this by a large message is freed after it.
constexpr std::size_t kept_buffer_bytes = 2048;

} // namespace

websocket_session::websocket_session(connection_socket socket,
                                     std::shared_ptr<const server_context> ctx, auth::claims who,
                                     admission::ticket ticket)
  : ws_(std::move(socket)), ctx_(std::move(ctx)), who_(std::move(who)), timer_(ws_.get_executor()),
    ticket_(std::move(ticket)),
    frames_(token_bucket::full(ctx_->config.message_burst, steady_ns())) {
  ctx_->runtime->session_opened();
}

websocket_session::~websocket_session() {
  finish(close_kind::connection_lost);
  ctx_->runtime->session_closed();
}

void websocket_session::run(beast::http::request<beast::http::string_body> req) {
  // Beast's timeouts for the opening and closing handshakes only; the
  // keep-alive is ours (arm_keepalive).
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.handshake_timeout = ctx_->config.handshake_timeout;
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  // Pongs (and pings) count as signs of life, as data frames do.
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard_ = true; });
  ws_.set_option(
    websocket::stream_base::decorator([protocol = subprotocol_](websocket::response_type& res) {
      res.set(beast::http::field::server, "goring");
      // Only ever the marker a client offered, never its token subprotocol.
      if (!protocol.empty())
        res.set(beast::http::field::sec_websocket_protocol, protocol);
    }));
  ws_.read_message_max(ctx_->config.max_message_bytes);
  ws_.async_accept(req,
                   beast::bind_front_handler(&websocket_session::on_accept, shared_from_this()));
}

void websocket_session::on_accept(beast::error_code ec) {
  if (ec) {
    GORING_LOG(debug, "websocket", "handshake failed: " << ec.message());
    return;
  }
  beast::error_code ignored;
  auto remote = ws_.next_layer().remote_endpoint(ignored);
  port_ = ctx_->runtime->open_connection(std::weak_ptr<client_link>{shared_from_this()}, who_,
                                         remote.address().to_string() + ":"
                                           + std::to_string(remote.port()));
  do_read();
  arm_keepalive();
}

void websocket_session::do_read() {
  // A message is read in pieces. The first asks for at most
  // first_read_bytes, so the buffer a waiting read holds on every idle
  // connection stays small (Beast's whole-message read asks for 1,536);
  // ICE candidates fit in it, a longer SDP takes a few more reads.
  auto limit = buffer_.size() == 0 ? first_read_bytes : 0;
  ws_.async_read_some(buffer_, limit,
                      beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec) {
    // The socket is done: nothing left for the keep-alive (or the close's
    // grace) to do, and its wait would hold the session until it fires.
    timer_.cancel();
    auto why = close_kind::connection_lost;
    if (timed_out_) {
      GORING_LOG(info, "websocket", "user " << who_.user_id << " timed out: no pong");
    } else if (ec == websocket::error::message_too_big) {
      GORING_LOG(info, "websocket",
                 "user " << who_.user_id << " sent a frame over " << ctx_->config.max_message_bytes
                         << " bytes; closed with 1009");
      why = close_kind::policy;
    } else if (policy_close_) {
      why = close_kind::policy;
    } else if (ec == websocket::error::closed) {
      why = close_kind::client_closed;
    } else if (ec == beast::error::timeout) {
      GORING_LOG(info, "websocket", "user " << who_.user_id << " timed out: no pong");
    } else if (!is_normal_end(ec)) {
      GORING_LOG(debug, "websocket", "read failed: " << ec.message());
    }
    finish(why);
    return;
  }
  heard_ = true;
  if (!ws_.is_message_done()) {
    do_read();
    return;
  }
  // After a policy close the actor is gone (port_ reset): what the client
  // still sends until the close handshake ends is dropped.
  if (port_ && !closing_ && within_rate()) {
    if (ws_.got_text())
      port_->text_frame(beast::buffers_to_string(buffer_.data()));
    else
      port_->binary_frame();
  }
  buffer_.clear();
  // A large message (an SDP) grew the buffer: give it back rather than
  // hold it for the rest of the connection.
  if (buffer_.capacity() > kept_buffer_bytes)
    buffer_.shrink_to_fit();
  do_read();
}

bool websocket_session::within_rate() {
  auto& config = ctx_->config;
  if (config.message_rate == 0)
    return true;
  auto now = steady_ns();
  if (frames_.take(config.message_rate, config.message_burst, now))
    return true;
  auto& metrics = goring_metrics();
  metrics.rate_limited_frames->inc();
  if (now - refusals_since_ > 1'000'000'000) {
    refusals_since_ = now;
    refusals_ = 0;
  }
  // A client that heeds the errors slows down; one that refuses a
  // second's worth of frames within a second goes on regardless.
  if (++refusals_ > std::max(1u, config.message_rate)) {
    GORING_LOG(info, "websocket",
               "user " << who_.user_id << " kept sending over MESSAGE_RATE (" << config.message_rate
                       << "/s); closed with 1008");
    metrics.rate_limit_disconnects->inc();
    policy_close_ = true;
    start_close(close_code::policy_violation, "rate limit exceeded");
    finish(close_kind::policy);
    return false;
  }
  if (refusals_ == 1)
    GORING_LOG(info, "websocket",
               "user " << who_.user_id << " is over MESSAGE_RATE (" << config.message_rate
                       << "/s, burst " << config.message_burst << "); frames dropped");
  metrics.count_error(protocol::signal_error::rate_limited);
  metrics.sent_of("error").inc();
  enqueue(protocol::encode_error(protocol::signal_error::rate_limited,
                                 "too many messages: at most " + std::to_string(config.message_rate)
                                   + " a second (bursts of " + std::to_string(config.message_burst)
                                   + "); this one was dropped"));
  return false;
}

void websocket_session::send(std::string frame) {
  boost::asio::post(ws_.get_executor(),
                    [self = shared_from_this(), frame = std::move(frame)]() mutable {
                      self->enqueue(std::move(frame));
                    });
}

void websocket_session::close(uint16_t code, std::string reason) {
  boost::asio::post(ws_.get_executor(),
                    [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
                      self->start_close(code, std::move(reason));
                    });
}

void websocket_session::enqueue(std::string frame) {
  if (closing_)
    return;
  if (queue_.size() >= ctx_->config.max_queued_frames
      || queued_bytes_ + frame.size() > ctx_->config.max_queued_bytes) {
    GORING_LOG(warn, "websocket",
               "user " << who_.user_id << " is not reading: " << queue_.size() << " frames, "
                       << queued_bytes_ << " bytes queued; closing with 1013");
    policy_close_ = true;
    ctx_->runtime->count_slow_consumer();
    // A client this far behind is cut off now, not after its backlog.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back().size();
      queue_.pop_back();
    }
    start_close(close_code::try_again_later, "slow consumer");
    // The actor hears of it now, not when the socket finally goes: the
    // peer's call ends at once.
    finish(close_kind::policy);
    return;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!writing_)
    do_write();
}

void websocket_session::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(boost::asio::buffer(queue_.front()),
                  beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    if (!is_normal_end(ec))
      GORING_LOG(debug, "websocket", "write failed: " << ec.message());
    queue_.clear();
    queued_bytes_ = 0;
    return;
  }
  queued_bytes_ -= queue_.front().size();
  queue_.pop_front();
  if (!queue_.empty())
    do_write();
  else if (closing_)
    do_close();
}

void websocket_session::start_close(uint16_t code, std::string reason) {
  if (closing_)
    return;
  closing_ = true;
  close_reason_.code = code;
  close_reason_.reason = reason;
  // Frames already queued (the last events of a call) go out first. A
  // client that reads nothing cannot take them, nor the close frame: the
  // socket goes after a short grace whatever happens.
  timer_.expires_after(close_grace); // the keep-alive ends here
  timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec)
      self->ws_.next_layer().close(ec);
  });
  if (!writing_)
    do_close();
}

void websocket_session::do_close() {
  if (close_sent_ || !ws_.is_open())
    return;
  close_sent_ = true;
  ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
    if (ec && !is_normal_end(ec))
      GORING_LOG(debug, "websocket", "close failed: " << ec.message());
  });
}

void websocket_session::arm_keepalive() {
  // Deadlines on a grid: the connections due within one slot share one
  // expiry, so a single wake-up of an I/O thread pings them all. Each timer
  // of its own (Beast's keep-alive) woke a thread per ping and again per
  // pong: two context switches per ping, most of the CPU of idle
  // connections (bench/RESULTS.md).
  using namespace std::chrono;
  auto period = duration_cast<nanoseconds>(ctx_->config.idle_timeout) / 2;
  auto slot = std::min<nanoseconds>(seconds{1}, period / 4);
  auto due = steady_clock::now().time_since_epoch() + period;
  auto on_grid = (due + slot - nanoseconds{1}) / slot * slot;
  timer_.expires_at(steady_clock::time_point{duration_cast<steady_clock::duration>(on_grid)});
  timer_.async_wait(
    beast::bind_front_handler(&websocket_session::on_keepalive, shared_from_this()));
}

void websocket_session::on_keepalive(beast::error_code ec) {
  // Cancelled, or the timer is the close's grace now.
  if (ec || closing_ || !ws_.is_open())
    return;
  // As Beast did: a ping every tick; closed at a tick when nothing, not
  // even a pong, came since the last one.
  if (pinged_ && !heard_) {
    // The pending read ends with an error and on_read reports the loss.
    timed_out_ = true;
    ws_.next_layer().close(ec);
    return;
  }
  heard_ = false;
  pinged_ = true;
  if (!ping_in_flight_) {
    ping_in_flight_ = true;
    ws_.async_ping(
      {}, [self = shared_from_this()](beast::error_code) { self->ping_in_flight_ = false; });
  }
  arm_keepalive();
}

void websocket_session::finish(close_kind why) {
  if (port_) {
    port_->closed(why);
    port_.reset();
  }
}

} // namespace goring
