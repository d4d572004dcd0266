/// The two narrow interfaces between a WebSocket session and its connection
/// actor, so neither side's headers (Beast, CAF) leak into the other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace goring {

/// Why a WebSocket ended, as its session saw it.
enum class close_kind : uint8_t {
  /// The client sent a close frame: it hung up on purpose.
  client_closed,
  /// No close frame: the network dropped, the idle timeout passed with no
  /// pong, or a read failed. The client may come back.
  connection_lost,
  /// The server cut it off: a frame over MAX_MESSAGE_BYTES, or a client
  /// that did not read its frames (slow consumer).
  policy,
};

/// What a connection actor may do to its WebSocket. Thread-safe: calls are
/// posted to the session's strand.
class client_link {
public:
  virtual ~client_link() = default;
  /// Queues a text frame. A client whose queue overflows is closed (1013).
  virtual void send(std::string frame) = 0;
  /// Sends a close frame with `code` and `reason`, then drops the socket.
  virtual void close(uint16_t code, std::string reason) = 0;
};

/// What a WebSocket session reports to its connection actor.
class connection_port {
public:
  virtual ~connection_port() = default;
  virtual void text_frame(std::string frame) = 0;
  virtual void binary_frame() = 0;
  /// The socket is gone (closed by either side or failed). Called once.
  virtual void closed(close_kind why) = 0;
};

/// WebSocket close codes goring uses.
namespace close_code {
inline constexpr uint16_t going_away = 1001;
inline constexpr uint16_t policy_violation = 1008;
inline constexpr uint16_t too_big = 1009;
inline constexpr uint16_t internal_error = 1011;
inline constexpr uint16_t service_restart = 1012;
inline constexpr uint16_t try_again_later = 1013;
inline constexpr uint16_t replaced = 4000;
/// The token's exp (plus JWT_LEEWAY) passed with no auth.refresh.
inline constexpr uint16_t token_expired = 4001;
inline constexpr uint16_t kicked = 4002;
} // namespace close_code

} // namespace goring
