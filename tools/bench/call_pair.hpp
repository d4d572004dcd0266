/// A caller and a callee on one client thread, going through calls the way
/// two apps do (call.start, call.ringing + call.ring, call.accept,
/// call.accepted, call.end, call.ended) and ping-ponging webrtc.ice, timing
/// every step.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>

#include "tools/bench/thread_stats.hpp"
#include "tools/bench/ws_client.hpp"

namespace goring::bench {

class call_pair {
public:
  using clock = std::chrono::steady_clock;
  /// A call attempt is over: `completed` when it went as asked, false when
  /// it failed (the error is counted in the thread's stats).
  using over_handler = std::function<void(call_pair&, bool completed)>;
  using event_handler = std::function<void(call_pair&)>;

  /// Both clients run on the same io_context; `stats` is that thread's.
  /// `timeout` bounds each call attempt and each hang-up.
  call_pair(std::shared_ptr<ws_client> caller, std::shared_ptr<ws_client> callee,
            std::string callee_id, thread_stats& stats, std::chrono::milliseconds timeout);

  call_pair(const call_pair&) = delete;
  call_pair& operator=(const call_pair&) = delete;

  /// Called when an attempt ends (start_call, end_call).
  void on_over(over_handler handler) {
    on_over_ = std::move(handler);
  }
  /// Called when a call started with `full_cycle` false is accepted.
  void on_live(event_handler handler) {
    on_live_ = std::move(handler);
  }

  /// Places a call. With `full_cycle` the caller hangs up as soon as it is
  /// accepted and the attempt is over when the callee hears call.ended;
  /// otherwise the call stays live (on_live) until end_call().
  /// call.start is sent again, after a short pause, while the server
  /// answers user_offline, user_busy or invalid_state (a user not yet
  /// registered, a previous call not yet released).
  void start_call(bool full_cycle);
  /// Hangs up a live call; on_over once the callee hears call.ended.
  void end_call();

  /// Ping-pongs a webrtc.ice frame from caller to callee and back,
  /// `window` frames in flight, counting what arrives until `stop_at`;
  /// calls `done` once the frames in flight have come back after it. Works
  /// on a live call, or on two plain connections (the bare relay), where
  /// the frame carries a placeholder session id.
  /// With `interval` > 0 each ping leaves `interval` after the previous
  /// one (or at its pong, when that comes later): a set rate of round trips.
  void start_relay(std::size_t window, clock::time_point stop_at, event_handler done,
                   clock::duration interval = {});
  /// The size of the frames start_relay sends.
  std::size_t relay_frame_bytes() const;

  /// Both connections are open and nothing has ended them.
  bool usable() const {
    return !dead_ && caller_->is_open() && callee_->is_open();
  }
  /// A connection of the pair has ended; the pair can do nothing more.
  bool dead() const {
    return dead_;
  }
  bool live() const {
    return state_ == state::live;
  }

private:
  enum class state { idle, starting, accepting, live, ending, cooling };

  void on_caller_frame(std::string_view text);
  void on_callee_frame(std::string_view text);
  void on_pong();
  void send_ping();
  void send_start();
  void go_live();
  void finish(bool completed);
  void fail(const std::string& why);
  void arm_step_timer();
  void on_dropped();
  void relay_over();
  const char* waiting_for() const;

  std::shared_ptr<ws_client> caller_;
  std::shared_ptr<ws_client> callee_;
  std::string callee_id_;
  thread_stats& stats_;
  std::chrono::milliseconds timeout_;
  boost::asio::steady_timer step_timer_;
  boost::asio::steady_timer pause_timer_;
  over_handler on_over_;
  event_handler on_live_;

  state state_ = state::idle;
  bool full_cycle_ = true;
  bool got_ringing_ = false;
  bool dead_ = false;
  std::string session_id_;
  clock::time_point started_;
  clock::time_point accept_sent_;
  clock::time_point end_sent_;

  bool relaying_ = false;
  std::string relay_frame_;
  clock::time_point relay_stop_;
  std::deque<clock::time_point> in_flight_;
  clock::duration relay_interval_{};
  clock::time_point next_ping_;
  event_handler relay_done_;
};

} // namespace goring::bench
