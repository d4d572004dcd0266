#include "tools/bench/call_pair.hpp"

#include "tools/bench/wire.hpp"

namespace goring::bench {

namespace {

/// How long a refused call.start waits before it is sent again, and how
/// long a failed attempt waits for stray frames to pass.
constexpr auto retry_pause = std::chrono::milliseconds(10);
constexpr auto cool_down = std::chrono::milliseconds(100);

bool worth_retrying(const std::string& code) {
  return code == "user_offline" || code == "user_busy" || code == "invalid_state";
}

} // namespace

call_pair::call_pair(std::shared_ptr<ws_client> caller, std::shared_ptr<ws_client> callee,
                     std::string callee_id, thread_stats& stats, std::chrono::milliseconds timeout)
  : caller_(std::move(caller)), callee_(std::move(callee)), callee_id_(std::move(callee_id)),
    stats_(stats), timeout_(timeout), step_timer_(caller_->context()),
    pause_timer_(caller_->context()) {
  // The pair outlives its clients' handlers: the bench stops every client
  // thread before it destroys pairs.
  caller_->on_frame([this](std::string_view text) { on_caller_frame(text); });
  callee_->on_frame([this](std::string_view text) { on_callee_frame(text); });
  caller_->on_dropped([this] { on_dropped(); });
  callee_->on_dropped([this] { on_dropped(); });
}

void call_pair::start_call(bool full_cycle) {
  full_cycle_ = full_cycle;
  session_id_.clear();
  got_ringing_ = false;
  state_ = state::starting;
  arm_step_timer();
  send_start();
}

void call_pair::send_start() {
  started_ = clock::now();
  caller_->send(wire::call_start(callee_id_));
}

void call_pair::end_call() {
  if (state_ != state::live)
    return;
  state_ = state::ending;
  arm_step_timer();
  end_sent_ = clock::now();
  caller_->send(wire::call_end(session_id_));
}

void call_pair::arm_step_timer() {
  step_timer_.expires_after(timeout_);
  step_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec)
      return;
    ++stats_.timeouts;
    fail(std::string{"timeout waiting for "} + waiting_for());
  });
}

const char* call_pair::waiting_for() const {
  switch (state_) {
    case state::starting:
      return "call.ring";
    case state::accepting:
      return "call.accepted";
    case state::ending:
      return "call.ended";
    default:
      return "nothing";
  }
}

void call_pair::on_caller_frame(std::string_view text) {
  if (wire::is_ice(text)) {
    on_pong();
    return;
  }
  auto f = wire::parse(text);
  bool same_call = session_id_.empty() || f.session_id == session_id_;
  if (f.type == "call.ringing" && (state_ == state::starting || state_ == state::accepting)
      && same_call && !got_ringing_) {
    session_id_ = f.session_id;
    got_ringing_ = true;
    stats_.start_to_ringing.record(clock::now() - started_);
  } else if (f.type == "call.accepted" && state_ == state::accepting
             && f.session_id == session_id_) {
    stats_.accept_to_accepted.record(clock::now() - accept_sent_);
    go_live();
  } else if (f.type == "error" && state_ == state::starting && worth_retrying(f.code)) {
    // Refused before anything rang: not the server's fault, just early.
    ++stats_.retries;
    pause_timer_.expires_after(retry_pause);
    pause_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && state_ == state::starting)
        send_start();
    });
  } else if (f.type == "error" && state_ != state::idle && state_ != state::cooling) {
    fail("error to the caller: " + f.code);
  } else if (f.type == "call.ended" && state_ != state::idle && state_ != state::cooling
             && f.session_id == session_id_) {
    fail("call.ended to the caller");
  } else {
    ++stats_.stray_frames;
  }
}

void call_pair::on_callee_frame(std::string_view text) {
  if (wire::is_ice(text)) {
    if (relaying_ && clock::now() <= relay_stop_)
      ++stats_.messages;
    // The echo goes back exactly as it came, so the caller can match it.
    callee_->send(std::string{text});
    return;
  }
  auto f = wire::parse(text);
  bool same_call = session_id_.empty() || f.session_id == session_id_;
  if (f.type == "call.ring" && state_ == state::starting && same_call) {
    auto now = clock::now();
    session_id_ = f.session_id;
    stats_.start_to_ring.record(now - started_);
    state_ = state::accepting;
    accept_sent_ = now;
    callee_->send(wire::call_accept(session_id_));
  } else if (f.type == "call.ended" && state_ == state::ending && f.session_id == session_id_) {
    auto now = clock::now();
    stats_.end_to_ended.record(now - end_sent_);
    if (full_cycle_)
      stats_.cycle.record(now - started_);
    finish(true);
  } else if (f.type == "call.ended" && state_ != state::idle && state_ != state::cooling
             && f.session_id == session_id_) {
    fail("call.ended to the callee too early");
  } else if (f.type == "error" && state_ != state::idle && state_ != state::cooling) {
    fail("error to the callee: " + f.code);
  } else {
    ++stats_.stray_frames;
  }
}

void call_pair::go_live() {
  state_ = state::live;
  if (full_cycle_) {
    state_ = state::ending;
    end_sent_ = clock::now();
    caller_->send(wire::call_end(session_id_));
    return;
  }
  step_timer_.cancel();
  if (on_live_)
    on_live_(*this);
}

void call_pair::finish(bool completed) {
  step_timer_.cancel();
  pause_timer_.cancel();
  state_ = state::idle;
  if (on_over_)
    on_over_(*this, completed);
}

void call_pair::fail(const std::string& why) {
  if (state_ == state::idle || state_ == state::cooling)
    return;
  ++stats_.errors[why];
  step_timer_.cancel();
  pause_timer_.cancel();
  if (relaying_)
    relay_over();
  // Whatever the server still holds of this call is hung up, and whatever
  // it still sends about it passes before the next attempt.
  if (!session_id_.empty())
    caller_->send(wire::call_end(session_id_));
  state_ = state::cooling;
  pause_timer_.expires_after(cool_down);
  pause_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && state_ == state::cooling)
      finish(false);
  });
}

void call_pair::on_dropped() {
  if (dead_)
    return;
  dead_ = true;
  if (relaying_)
    relay_over();
  if (state_ != state::idle && state_ != state::cooling) {
    ++stats_.errors["connection ended during a call"];
    step_timer_.cancel();
    pause_timer_.cancel();
    finish(false);
  }
}

std::size_t call_pair::relay_frame_bytes() const {
  return wire::ice(session_id_.empty() ? wire::placeholder_session_id : session_id_).size();
}

void call_pair::start_relay(std::size_t window, clock::time_point stop_at, event_handler done,
                            clock::duration interval) {
  relay_frame_ = wire::ice(session_id_.empty() ? wire::placeholder_session_id : session_id_);
  relay_stop_ = stop_at;
  relay_done_ = std::move(done);
  relaying_ = true;
  relay_interval_ = interval;
  next_ping_ = clock::now() + interval;
  for (std::size_t i = 0; i < window; ++i)
    send_ping();
}

void call_pair::send_ping() {
  in_flight_.push_back(clock::now());
  caller_->send(relay_frame_);
}

void call_pair::on_pong() {
  if (!relaying_ || in_flight_.empty()) {
    ++stats_.stray_frames;
    return;
  }
  auto now = clock::now();
  if (now <= relay_stop_) {
    ++stats_.messages;
    stats_.round_trip.record(now - in_flight_.front());
  }
  in_flight_.pop_front();
  if (now >= relay_stop_) {
    if (in_flight_.empty())
      relay_over();
    return;
  }
  if (relay_interval_ == clock::duration{} || next_ping_ <= now) {
    next_ping_ = std::max(next_ping_, now) + relay_interval_;
    send_ping();
    return;
  }
  // Paced: the next ping waits for its slot.
  auto at = next_ping_;
  next_ping_ += relay_interval_;
  pause_timer_.expires_at(at);
  pause_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && relaying_ && clock::now() < relay_stop_)
      send_ping();
    else if (!ec && relaying_ && in_flight_.empty())
      relay_over();
  });
}

void call_pair::relay_over() {
  relaying_ = false;
  in_flight_.clear();
  if (relay_done_) {
    auto done = std::move(relay_done_);
    relay_done_ = nullptr;
    done(*this);
  }
}

} // namespace goring::bench
