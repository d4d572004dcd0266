/// goring's wire protocol as goring-bench speaks it: the client frames it
/// sends and the few fields it reads back. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

namespace goring::bench::wire {

std::string call_start(std::string_view callee_id);
std::string call_accept(std::string_view session_id);
std::string call_end(std::string_view session_id);
/// A `webrtc.ice` frame with a realistic server-reflexive candidate.
std::string ice(std::string_view session_id);

/// A session id of the length goring uses (a UUID), for frames sent to a
/// server that has no calls (the bare relay).
inline constexpr std::string_view placeholder_session_id = "00000000-0000-4000-8000-000000000000";

/// The fields of a server frame that drive the bench.
struct server_frame {
  /// Empty when the text is not a JSON object with a string `type`.
  std::string type;
  /// `payload.session_id`, when there is one.
  std::string session_id;
  /// `payload.code` of an `error` frame.
  std::string code;
};

/// Reads `text`; on anything malformed the result's `type` is empty.
server_frame parse(std::string_view text);

/// Whether `text` is a `webrtc.ice` frame. Frames relayed unchanged (as
/// goring relays them) are recognised by their prefix, without parsing.
bool is_ice(std::string_view text);

} // namespace goring::bench::wire
