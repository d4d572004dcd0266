/// The Lua scripts that make every call state change atomic, and the
/// builders that turn a state change into the script's KEYS and ARGV.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "redis/reply.hpp"

namespace goring::redis {

/// One embedded script file (generated from redis/scripts/*.lua).
struct lua_source {
  const char* name;
  const char* text;
};

/// Every script, sorted by name.
const std::vector<lua_source>& lua_sources();

enum class script : uint8_t {
  claim_user,
  release_user,
  refresh_users,
  call_start,
  call_accept,
  call_reject,
  call_end,
  call_timeout,
  call_check,
  call_restore,
  heartbeat,
  server_leave,
  // The single-slot steps of Cluster mode (redis/cluster_calls.hpp).
  session_open,
  session_commit,
  session_abandon,
  user_reserve,
  user_call_follow,
  session_read,
};

inline constexpr std::size_t script_count = 18;

std::string_view script_name(script id);

/// The Lua text of a script (throws std::logic_error if it was not embedded).
const std::string& script_text(script id);

/// A script invocation: which script, its KEYS and its ARGV.
struct script_call {
  script id;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

/// Builds `EVALSHA sha n keys... args...` (or `EVAL text ...` if `sha` is
/// empty).
std::vector<std::string> eval_argv(const script_call& call, const std::string& sha);

using millis = std::chrono::milliseconds;

/// Where a call script writes the webhook event of its transition
/// (docs/webhooks.md): `stream` is the event stream's key, empty for none
/// (webhooks off: no event is written); `now_ms` the events' created_at,
/// Unix milliseconds.
struct event_log {
  std::string stream;
  long long now_ms = 0;
};

script_call claim_user(std::string_view user_id, std::string_view token, millis ttl);
script_call release_user(std::string_view user_id, std::string_view token);
/// `users` and `tokens` are parallel.
script_call refresh_users(const std::vector<std::string>& users,
                          const std::vector<std::string>& tokens, millis ttl);
/// `offline_ring` above 0 (with events on): a callee with no connection
/// rings that long (start_result::offline_ring) instead of being offline.
script_call call_start(std::string_view caller_id, std::string_view callee_id,
                       std::string_view session_id, long long created_at, millis ttl,
                       std::string_view caller_info_json, const event_log& events = {},
                       millis offline_ring = millis{0});
script_call call_accept(std::string_view session_id, std::string_view user_id, millis ttl,
                        std::string_view callee_info_json, long long now,
                        const event_log& events = {});
script_call call_reject(std::string_view session_id, std::string_view user_id, millis ended_ttl,
                        long long now, const event_log& events = {});
/// `disconnect` is true when the user's connection closed (reason
/// peer_disconnected), false for call.end.
script_call call_end(std::string_view session_id, std::string_view user_id, millis ended_ttl,
                     long long now, bool disconnect, const event_log& events = {});
script_call call_timeout(std::string_view session_id, millis ended_ttl, long long now,
                         const event_log& events = {});
/// `now` in Unix milliseconds. `departed_user` (or empty) is a participant
/// whose connection, owner token `departed_token`, this instance saw go
/// without hanging up: a ws:user key still naming it counts as none.
script_call call_check(std::string_view session_id, millis ttl, long long now_ms,
                       millis reconnect_grace, millis ended_ttl,
                       std::string_view departed_user = {}, std::string_view departed_token = {},
                       std::string_view event_stream = {});
/// `state` "ringing" or "accepted"; `callee_info_json` may be empty, and
/// `accepted_at` is 0 unless accepted.
script_call call_restore(std::string_view session_id, std::string_view caller_id,
                         std::string_view callee_id, std::string_view state, long long created_at,
                         std::string_view caller_info_json, std::string_view callee_info_json,
                         long long accepted_at, millis ttl);
script_call heartbeat(std::string_view server_id, std::string_view instance_id, millis ttl,
                      std::string_view version, long long started_at, std::string_view admin_addr);
script_call server_leave(std::string_view server_id, std::string_view instance_id);

/// The `state` field of a call:session hash, as the scripts write it.
enum class session_state : uint8_t {
  none,    ///< no state: the session is gone (or never was)
  pending, ///< Cluster mode: a call_start between its steps (not live yet)
  ringing,
  accepted,
  rejected,
  ended,
  unknown, ///< a text no script writes
};

/// Reads a `state` field ("" is none).
session_state parse_session_state(std::string_view text);
/// The field's text; "" for none, "unknown" for unknown.
std::string_view state_name(session_state state);

/// Ringing or accepted: the call goes on.
inline bool is_live(session_state state) {
  return state == session_state::ringing || state == session_state::accepted;
}

/// What call_start answers.
enum class start_result : uint8_t {
  ok,
  offline_ring, ///< the callee has no live connection and rings offline
  offline,      ///< the callee has no live connection
  caller_busy,  ///< the caller is in a live call already
  callee_busy,  ///< the callee is
  exists,       ///< the session id is taken
  unexpected,   ///< another string
  failed,       ///< no string: an error reply (Redis away, a timeout)
};

start_result parse_start_result(const reply& r);

/// How a call script (accept, reject, end, timeout) decided.
enum class outcome_status : uint8_t {
  ok,
  not_found,
  unauthorized,
  invalid_state,
  unexpected, ///< another status text
  error,      ///< an error reply or an answer of another shape
};

std::string_view status_name(outcome_status status);

/// What the call scripts (accept, reject, end, timeout) answer:
/// {status, caller_id, callee_id, detail}. An error reply or an answer of
/// another shape yields status error and the reply text in `detail`.
struct call_outcome {
  outcome_status status = outcome_status::error;
  std::string caller_id;
  std::string callee_id;
  std::string detail; // state, or the end reason for call_end
  /// `detail` read as a state: the session's state for a refusal, the new
  /// one for ok (unknown for call_end's reason).
  session_state state = session_state::none;
};

call_outcome parse_call_outcome(const reply& r);

/// What call_check answers: {'gone', state, ended_reason}, {'live', state}
/// or {'ended', caller_id, callee_id, gone_user_id}.
struct check_outcome {
  enum class kind : uint8_t {
    unavailable, ///< no answer of that shape: Redis is away
    gone,        ///< over before this check (state none: it vanished)
    live,
    ended, ///< this check ended it: `gone_user` did not come back
  };
  kind status = kind::unavailable;
  session_state state = session_state::none; // gone, live
  std::string ended_reason;                  // gone
  std::string gone_user;                     // ended
};

check_outcome parse_check_outcome(const reply& r);

/// session_read of the fields a connection needs to join a call it holds
/// no actor for: caller_id, callee_id, state, caller_info, callee_info.
script_call session_lookup(std::string_view session_id);

/// What session_lookup read.
struct session_record {
  enum class kind : uint8_t {
    found,
    missing, ///< no such session
    error,   ///< an error reply or an answer of another shape
  };
  kind status = kind::error;
  std::string caller_id;
  std::string callee_id;
  session_state state = session_state::none;
  std::string caller_info; // JSON, may be empty
  std::string callee_info; // JSON, may be empty
};

session_record parse_session_lookup(const reply& r);

} // namespace goring::redis
