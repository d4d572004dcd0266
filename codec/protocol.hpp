/// The wire protocol: JSON frames in and out, and the one vocabulary of
/// signaling errors. Pure code: no sockets, no actors, no Redis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace goring::protocol {

/// Ids longer than this are refused: no real user or session id is.
inline constexpr std::size_t max_id_length = 256;

/// Every way a client request can fail. `wire_code` gives the `error.code`
/// string clients see; the numbering is also the CAF error code.
enum class signal_error : uint8_t {
  none = 0,
  invalid_message,
  unauthorized,
  user_busy,
  user_offline,
  session_not_found,
  invalid_state,
  internal_error,
  /// More frames than MESSAGE_RATE/MESSAGE_BURST allow; the frame was dropped.
  rate_limited, // keep last: signal_error_count follows it
};

/// Codes including `none`: the size of tables indexed by signal_error.
inline constexpr std::size_t signal_error_count =
  static_cast<std::size_t>(signal_error::rate_limited) + 1;

std::string_view wire_code(signal_error code);

/// What a client may send.
enum class client_type : uint8_t {
  call_start,
  call_accept,
  call_reject,
  call_end,
  webrtc_offer,
  webrtc_answer,
  webrtc_ice,
  /// A new token for the same user before the current one expires.
  auth_refresh, // keep last: client_type_count follows it
};

/// The size of tables indexed by client_type.
inline constexpr std::size_t client_type_count =
  static_cast<std::size_t>(client_type::auth_refresh) + 1;

std::string_view type_name(client_type type);

inline bool is_relay(client_type type) {
  return type == client_type::webrtc_offer || type == client_type::webrtc_answer
         || type == client_type::webrtc_ice;
}

/// A checked client frame. The frame's text is kept for relays, which go to
/// the peer unchanged.
struct client_message {
  client_type type;
  std::string session_id; // every type but call.start
  std::string callee_id;  // call.start
  std::string token;      // auth.refresh; never logged
};

/// What parse_client_frame read: a message, or the error to answer with.
struct frame_parse {
  std::optional<client_message> message;
  signal_error error = signal_error::none;
  std::string error_message;
};

/// Sizes of relayed fields the server accepts (MAX_SDP_BYTES,
/// MAX_CANDIDATE_BYTES); the whole frame is bounded by MAX_MESSAGE_BYTES
/// before it gets here.
struct frame_limits {
  std::size_t max_sdp_bytes = 32'768;
  std::size_t max_candidate_bytes = 1024;
};

/// Parses and validates one text frame from a client.
frame_parse parse_client_frame(std::string_view text, const frame_limits& limits = {});

/// Who a user is, from their token's claims. Empty name/username are left
/// out of the JSON.
struct user_info {
  std::string user_id;
  std::string name;
  std::string username;
};

/// `{"user_id":...,"name":...,"username":...}`
std::string to_json(const user_info& info);
/// Reads what `to_json` wrote; a malformed text yields only `fallback_id`.
user_info user_info_from_json(std::string_view json, std::string_view fallback_id);

/// Server frames.
/// `callee_offline`: the callee has no connection and rings while their
/// phone is woken (OFFLINE_RING_TIMEOUT); the payload then says
/// "callee_offline": true, and leaves the field out otherwise.
std::string encode_ringing(std::string_view session_id, std::string_view callee_id,
                           bool callee_offline = false);
std::string encode_ring(std::string_view session_id, const user_info& caller);
std::string encode_accepted(std::string_view session_id, const user_info& callee);
std::string encode_rejected(std::string_view session_id, const user_info& callee);
std::string encode_ended(std::string_view session_id, std::string_view reason,
                         const user_info& peer);
std::string encode_error(signal_error code, std::string_view message);
/// To a participant who reconnected while their call went on; `role` is
/// "caller" or "callee", `state` "ringing" or "accepted".
std::string encode_resumed(std::string_view session_id, std::string_view peer_id,
                           std::string_view state, std::string_view role);

/// The answer to a valid auth.refresh: the new token's `exp` (unix
/// seconds), or null when it has none.
std::string encode_refreshed(std::optional<long long> expires_at);

/// The server events that change a call's state, as read back from a frame
/// that came over pub/sub from another instance.
enum class event_type : uint8_t { ring, accepted, rejected, ended };

struct server_event {
  event_type type;
  std::string session_id;
  std::string caller_id; // ring
  std::string reason;    // ended
  user_info peer;        // caller_info / callee_info / peer_info
};

std::optional<server_event> parse_server_event(std::string_view frame);

/// What instances publish on ws:signal:{user_id}: a one-byte tag, then a
/// body. Relays are forwarded without parsing; events are parsed to keep
/// the local call actor in step; control messages never reach a client.
namespace signal_tag {
inline constexpr char relay = 'R';    // body: a webrtc.* frame
inline constexpr char event = 'E';    // body: a call.* frame
inline constexpr char replaced = 'X'; // body: owner token of the new connection
} // namespace signal_tag

/// A pub/sub payload: `tag` (a signal_tag) followed by `body`.
std::string tagged(char tag, std::string_view body);

} // namespace goring::protocol
