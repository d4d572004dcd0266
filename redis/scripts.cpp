#include "redis/scripts.hpp"

#include <array>
#include <stdexcept>

#include "redis/keys.hpp"

namespace goring::redis {

namespace {

constexpr std::array<std::string_view, script_count> names = {
  "claim_user",   "release_user",     "refresh_users", "call_start",     "call_accept",
  "call_reject",  "call_end",         "call_timeout",  "call_check",     "call_restore",
  "heartbeat",    "server_leave",     "session_open",  "session_commit", "session_abandon",
  "user_reserve", "user_call_follow", "session_read",
};

std::string str(std::string_view x) {
  return std::string{x};
}

std::string ms(millis x) {
  return std::to_string(x.count());
}

/// The event stream as the last key, when events are on.
script_call with_events(script_call call, const event_log& events) {
  if (!events.stream.empty())
    call.keys.push_back(events.stream);
  call.args.push_back(std::to_string(events.now_ms));
  return call;
}

} // namespace

std::string_view script_name(script id) {
  return names[static_cast<std::size_t>(id)];
}

const std::string& script_text(script id) {
  static const std::array<std::string, script_count> texts = [] {
    std::array<std::string, script_count> out;
    for (std::size_t i = 0; i < script_count; ++i) {
      for (auto& src : lua_sources())
        if (names[i] == src.name)
          out[i] = src.text;
      if (out[i].empty())
        throw std::logic_error("Lua script not embedded: " + str(names[i]));
    }
    return out;
  }();
  return texts[static_cast<std::size_t>(id)];
}

std::vector<std::string> eval_argv(const script_call& call, const std::string& sha) {
  std::vector<std::string> argv;
  argv.reserve(3 + call.keys.size() + call.args.size());
  if (sha.empty()) {
    argv.emplace_back("EVAL");
    argv.push_back(script_text(call.id));
  } else {
    argv.emplace_back("EVALSHA");
    argv.push_back(sha);
  }
  argv.push_back(std::to_string(call.keys.size()));
  argv.insert(argv.end(), call.keys.begin(), call.keys.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  return argv;
}

script_call claim_user(std::string_view user_id, std::string_view token, millis ttl) {
  return {script::claim_user,
          {keys::user(user_id), keys::user_call(user_id)},
          {str(token), ms(ttl), str(keys::session_prefix), str(user_id)}};
}

script_call release_user(std::string_view user_id, std::string_view token) {
  return {script::release_user, {keys::user(user_id)}, {str(token)}};
}

script_call refresh_users(const std::vector<std::string>& users,
                          const std::vector<std::string>& tokens, millis ttl) {
  script_call call{script::refresh_users, {}, {ms(ttl)}};
  call.keys.reserve(users.size());
  for (auto& u : users)
    call.keys.push_back(keys::user(u));
  call.args.insert(call.args.end(), tokens.begin(), tokens.end());
  return call;
}

script_call call_start(std::string_view caller_id, std::string_view callee_id,
                       std::string_view session_id, long long created_at, millis ttl,
                       std::string_view caller_info_json, const event_log& events,
                       millis offline_ring) {
  auto call = with_events(
    {script::call_start,
     {keys::user(callee_id), keys::user_call(caller_id), keys::user_call(callee_id),
      keys::session(session_id)},
     {str(caller_id), str(callee_id), str(session_id), std::to_string(created_at), ms(ttl),
      str(caller_info_json), str(keys::session_prefix), str(keys::server_prefix)}},
    events);
  call.args.push_back(ms(offline_ring));
  return call;
}

script_call call_accept(std::string_view session_id, std::string_view user_id, millis ttl,
                        std::string_view callee_info_json, long long now, const event_log& events) {
  return with_events({script::call_accept,
                      {keys::session(session_id)},
                      {str(user_id), ms(ttl), str(keys::user_call_prefix), str(session_id),
                       str(callee_info_json), std::to_string(now)}},
                     events);
}

script_call call_reject(std::string_view session_id, std::string_view user_id, millis ended_ttl,
                        long long now, const event_log& events) {
  return with_events({script::call_reject,
                      {keys::session(session_id)},
                      {str(user_id), ms(ended_ttl), str(keys::user_call_prefix), str(session_id),
                       std::to_string(now)}},
                     events);
}

script_call call_end(std::string_view session_id, std::string_view user_id, millis ended_ttl,
                     long long now, bool disconnect, const event_log& events) {
  return with_events({script::call_end,
                      {keys::session(session_id)},
                      {str(user_id), ms(ended_ttl), str(keys::user_call_prefix), str(session_id),
                       std::to_string(now), disconnect ? "disconnect" : "user"}},
                     events);
}

script_call call_timeout(std::string_view session_id, millis ended_ttl, long long now,
                         const event_log& events) {
  return with_events(
    {script::call_timeout,
     {keys::session(session_id)},
     {ms(ended_ttl), str(keys::user_call_prefix), str(session_id), std::to_string(now)}},
    events);
}

script_call call_check(std::string_view session_id, millis ttl, long long now_ms,
                       millis reconnect_grace, millis ended_ttl, std::string_view departed_user,
                       std::string_view departed_token, std::string_view event_stream) {
  script_call call{script::call_check,
                   {keys::session(session_id)},
                   {ms(ttl), str(keys::user_call_prefix), str(session_id), std::to_string(now_ms),
                    ms(reconnect_grace), ms(ended_ttl), str(keys::user_prefix),
                    str(keys::server_prefix), str(departed_user), str(departed_token)}};
  if (!event_stream.empty())
    call.keys.emplace_back(event_stream);
  return call;
}

script_call call_restore(std::string_view session_id, std::string_view caller_id,
                         std::string_view callee_id, std::string_view state, long long created_at,
                         std::string_view caller_info_json, std::string_view callee_info_json,
                         long long accepted_at, millis ttl) {
  return {script::call_restore,
          {keys::session(session_id), keys::user_call(caller_id), keys::user_call(callee_id)},
          {str(caller_id), str(callee_id), str(session_id), str(state), std::to_string(created_at),
           str(caller_info_json), str(callee_info_json),
           accepted_at != 0 ? std::to_string(accepted_at) : std::string{}, ms(ttl)}};
}

script_call heartbeat(std::string_view server_id, std::string_view instance_id, millis ttl,
                      std::string_view version, long long started_at, std::string_view admin_addr) {
  return {script::heartbeat,
          {keys::server(server_id)},
          {ms(ttl), str(instance_id), str(version), std::to_string(started_at), str(admin_addr)}};
}

script_call server_leave(std::string_view server_id, std::string_view instance_id) {
  return {script::server_leave, {keys::server(server_id)}, {str(instance_id)}};
}

session_state parse_session_state(std::string_view text) {
  if (text.empty())
    return session_state::none;
  if (text == "pending")
    return session_state::pending;
  if (text == "ringing")
    return session_state::ringing;
  if (text == "accepted")
    return session_state::accepted;
  if (text == "rejected")
    return session_state::rejected;
  if (text == "ended")
    return session_state::ended;
  return session_state::unknown;
}

std::string_view state_name(session_state state) {
  switch (state) {
    case session_state::none:
      return "";
    case session_state::pending:
      return "pending";
    case session_state::ringing:
      return "ringing";
    case session_state::accepted:
      return "accepted";
    case session_state::rejected:
      return "rejected";
    case session_state::ended:
      return "ended";
    case session_state::unknown:
      break;
  }
  return "unknown";
}

start_result parse_start_result(const reply& r) {
  if (r.type != reply::kind::string)
    return start_result::failed;
  if (r.str == "ok")
    return start_result::ok;
  if (r.str == "offline")
    return start_result::offline;
  if (r.str == "offline_ring")
    return start_result::offline_ring;
  if (r.str == "caller_busy")
    return start_result::caller_busy;
  if (r.str == "callee_busy")
    return start_result::callee_busy;
  if (r.str == "exists")
    return start_result::exists;
  return start_result::unexpected;
}

std::string_view status_name(outcome_status status) {
  switch (status) {
    case outcome_status::ok:
      return "ok";
    case outcome_status::not_found:
      return "not_found";
    case outcome_status::unauthorized:
      return "unauthorized";
    case outcome_status::invalid_state:
      return "invalid_state";
    case outcome_status::unexpected:
      return "unexpected";
    case outcome_status::error:
      break;
  }
  return "error";
}

call_outcome parse_call_outcome(const reply& r) {
  call_outcome out;
  if (r.type != reply::kind::array || r.elements.empty()
      || r.elements[0].type != reply::kind::string) {
    out.status = outcome_status::error;
    out.detail = r.is_error() ? r.str : "unexpected script reply";
    return out;
  }
  auto field = [&](std::size_t i) -> std::string {
    return i < r.elements.size() ? r.elements[i].str : std::string{};
  };
  auto status = field(0);
  out.status = status == "ok"              ? outcome_status::ok
               : status == "not_found"     ? outcome_status::not_found
               : status == "unauthorized"  ? outcome_status::unauthorized
               : status == "invalid_state" ? outcome_status::invalid_state
                                           : outcome_status::unexpected;
  out.caller_id = field(1);
  out.callee_id = field(2);
  out.detail = field(3);
  out.state = parse_session_state(out.detail);
  return out;
}

check_outcome parse_check_outcome(const reply& r) {
  check_outcome out;
  if (r.type != reply::kind::array || r.elements.empty())
    return out;
  auto field = [&](std::size_t i) {
    return i < r.elements.size() ? r.elements[i].str : std::string{};
  };
  auto status = field(0);
  if (status == "gone") {
    out.status = check_outcome::kind::gone;
    out.state = parse_session_state(field(1));
    out.ended_reason = field(2);
  } else if (status == "live") {
    out.status = check_outcome::kind::live;
    out.state = parse_session_state(field(1));
  } else if (status == "ended") {
    out.status = check_outcome::kind::ended;
    out.gone_user = field(3);
  }
  return out;
}

script_call session_lookup(std::string_view session_id) {
  return {script::session_read,
          {keys::session(session_id)},
          {"caller_id", "callee_id", "state", "caller_info", "callee_info"}};
}

session_record parse_session_lookup(const reply& r) {
  session_record out;
  if (r.type != reply::kind::array || r.elements.size() != 5)
    return out;
  if (r.elements[0].is_nil()) {
    out.status = session_record::kind::missing;
    return out;
  }
  out.status = session_record::kind::found;
  out.caller_id = r.elements[0].str;
  out.callee_id = r.elements[1].str;
  out.state = parse_session_state(r.elements[2].str);
  out.caller_info = r.elements[3].str;
  out.callee_info = r.elements[4].str;
  return out;
}

} // namespace goring::redis
