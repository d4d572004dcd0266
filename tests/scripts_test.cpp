/// The readers of Redis answers without a Redis: script replies and the
/// session lookup, built by hand, read into their enums once; and the
/// scripts' headers. (scripts_redis_test runs the scripts themselves.)
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "redis/keys.hpp"
#include "redis/scripts.hpp"

namespace {

using goring::redis::check_outcome;
using goring::redis::outcome_status;
using goring::redis::reply;
using goring::redis::session_record;
using goring::redis::session_state;
using goring::redis::start_result;

reply text(const std::string& s) {
  reply r;
  r.type = reply::kind::string;
  r.str = s;
  return r;
}

reply nil() {
  return reply{};
}

reply array(std::vector<reply> elements) {
  reply r;
  r.type = reply::kind::array;
  r.elements = std::move(elements);
  return r;
}

reply texts(const std::vector<std::string>& items) {
  std::vector<reply> elements;
  for (auto& item : items)
    elements.push_back(text(item));
  return array(std::move(elements));
}

/// The comment block a script starts with, one line each.
std::vector<std::string> header_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line) && line.rfind("--", 0) == 0;)
    lines.push_back(line);
  return lines;
}

bool any_line(const std::vector<std::string>& lines, const std::string& part, bool at_start) {
  for (auto& line : lines) {
    auto at = line.find(part);
    if (at != std::string::npos && (!at_start || at == 0))
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("every script's header names it, its slot in each mode and the race it prevents") {
  REQUIRE(goring::redis::lua_sources().size() == goring::redis::script_count);
  for (auto& source : goring::redis::lua_sources()) {
    CAPTURE(source.name);
    auto header = header_of(source.text);
    REQUIRE(!header.empty());
    CHECK(header[0].rfind("-- " + std::string{source.name} + ": ", 0) == 0);
    CHECK(any_line(header, "-- Slot ", true));
    CHECK(any_line(header, "-- KEYS[", true));
    CHECK(any_line(header, "-- Returns ", true));
    CHECK((any_line(header, "Race prevented: ", false)
           || any_line(header, "Races prevented: ", false)));
  }
}

TEST_CASE("every state a script writes reads back as itself, nothing is none, others unknown") {
  for (auto state : {session_state::ringing, session_state::accepted, session_state::rejected,
                     session_state::ended}) {
    auto name = std::string{goring::redis::state_name(state)};
    CHECK(goring::redis::parse_session_state(name) == state);
  }
  CHECK(goring::redis::parse_session_state("") == session_state::none);
  CHECK(goring::redis::parse_session_state("Ringing") == session_state::unknown);
  CHECK(goring::redis::parse_session_state("starting") == session_state::unknown);
  CHECK(goring::redis::state_name(session_state::none).empty());
  CHECK(goring::redis::is_live(session_state::ringing));
  CHECK(goring::redis::is_live(session_state::accepted));
  CHECK_FALSE(goring::redis::is_live(session_state::ended));
  CHECK_FALSE(goring::redis::is_live(session_state::rejected));
  CHECK_FALSE(goring::redis::is_live(session_state::none));
  CHECK_FALSE(goring::redis::is_live(session_state::unknown));
}

TEST_CASE("call_start's answers read as their results, an error reply as failed") {
  CHECK(goring::redis::parse_start_result(text("ok")) == start_result::ok);
  CHECK(goring::redis::parse_start_result(text("offline")) == start_result::offline);
  CHECK(goring::redis::parse_start_result(text("caller_busy")) == start_result::caller_busy);
  CHECK(goring::redis::parse_start_result(text("callee_busy")) == start_result::callee_busy);
  CHECK(goring::redis::parse_start_result(text("exists")) == start_result::exists);
  CHECK(goring::redis::parse_start_result(text("OK")) == start_result::unexpected);
  CHECK(goring::redis::parse_start_result(reply::make_error("timed out")) == start_result::failed);
  CHECK(goring::redis::parse_start_result(nil()) == start_result::failed);
  CHECK(goring::redis::parse_start_result(texts({"ok"})) == start_result::failed);
}

TEST_CASE("a call outcome reads its status, ids, detail and the detail as a state") {
  auto ok = goring::redis::parse_call_outcome(texts({"ok", "alice", "bob", "accepted"}));
  CHECK(ok.status == outcome_status::ok);
  CHECK(ok.caller_id == "alice");
  CHECK(ok.callee_id == "bob");
  CHECK(ok.detail == "accepted");
  CHECK(ok.state == session_state::accepted);

  auto refused =
    goring::redis::parse_call_outcome(texts({"invalid_state", "alice", "bob", "ended"}));
  CHECK(refused.status == outcome_status::invalid_state);
  CHECK(refused.state == session_state::ended);

  auto ended = goring::redis::parse_call_outcome(texts({"ok", "alice", "bob", "cancelled"}));
  CHECK(ended.detail == "cancelled");
  CHECK(ended.state == session_state::unknown);

  auto missing = goring::redis::parse_call_outcome(texts({"not_found"}));
  CHECK(missing.status == outcome_status::not_found);
  CHECK(missing.caller_id.empty());
  CHECK(missing.state == session_state::none);

  CHECK(goring::redis::parse_call_outcome(texts({"unauthorized", "a", "b", "ringing"})).status
        == outcome_status::unauthorized);
  CHECK(goring::redis::parse_call_outcome(texts({"maybe"})).status == outcome_status::unexpected);

  auto error = goring::redis::parse_call_outcome(reply::make_error("NOSCRIPT"));
  CHECK(error.status == outcome_status::error);
  CHECK(error.detail == "NOSCRIPT");
  auto odd = goring::redis::parse_call_outcome(text("ok"));
  CHECK(odd.status == outcome_status::error);
  CHECK(odd.detail == "unexpected script reply");
  CHECK(goring::redis::parse_call_outcome(array({})).status == outcome_status::error);
  CHECK(goring::redis::status_name(outcome_status::invalid_state) == "invalid_state");
  CHECK(goring::redis::status_name(outcome_status::ok) == "ok");
}

TEST_CASE("call_check's answers: gone with state and reason, live with state, ended with who") {
  auto gone = goring::redis::parse_check_outcome(texts({"gone", "ended", "no_answer"}));
  CHECK(gone.status == check_outcome::kind::gone);
  CHECK(gone.state == session_state::ended);
  CHECK(gone.ended_reason == "no_answer");

  auto vanished = goring::redis::parse_check_outcome(texts({"gone", "", ""}));
  CHECK(vanished.status == check_outcome::kind::gone);
  CHECK(vanished.state == session_state::none);

  auto live = goring::redis::parse_check_outcome(texts({"live", "accepted"}));
  CHECK(live.status == check_outcome::kind::live);
  CHECK(live.state == session_state::accepted);

  auto ended = goring::redis::parse_check_outcome(texts({"ended", "alice", "bob", "bob"}));
  CHECK(ended.status == check_outcome::kind::ended);
  CHECK(ended.gone_user == "bob");

  CHECK(goring::redis::parse_check_outcome(reply::make_error("LOADING")).status
        == check_outcome::kind::unavailable);
  CHECK(goring::redis::parse_check_outcome(array({})).status == check_outcome::kind::unavailable);
  CHECK(goring::redis::parse_check_outcome(texts({"what"})).status
        == check_outcome::kind::unavailable);
}

TEST_CASE("the session lookup is one session_read of the session's key, its answer reads back") {
  auto call = goring::redis::session_lookup("s-1");
  CHECK(call.id == goring::redis::script::session_read);
  CHECK(call.keys == std::vector<std::string>{goring::redis::keys::session("s-1")});
  CHECK(
    call.args
    == std::vector<std::string>{"caller_id", "callee_id", "state", "caller_info", "callee_info"});

  auto found = goring::redis::parse_session_lookup(
    texts({"alice", "bob", "ringing", R"({"user_id":"alice"})", ""}));
  CHECK(found.status == session_record::kind::found);
  CHECK(found.caller_id == "alice");
  CHECK(found.callee_id == "bob");
  CHECK(found.state == session_state::ringing);
  CHECK(found.caller_info == R"({"user_id":"alice"})");
  CHECK(found.callee_info.empty());

  auto missing = goring::redis::parse_session_lookup(array({nil(), nil(), nil(), nil(), nil()}));
  CHECK(missing.status == session_record::kind::missing);

  CHECK(goring::redis::parse_session_lookup(reply::make_error("connection lost")).status
        == session_record::kind::error);
  CHECK(goring::redis::parse_session_lookup(texts({"alice", "bob"})).status
        == session_record::kind::error);
}
