/// Where a client's token comes from on the WebSocket upgrade: the `token`
/// query parameter, `Authorization: Bearer`, or the Sec-WebSocket-Protocol
/// header (browsers). Pure: no sockets, no Beast.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace goring::auth {

/// The subprotocol a browser offers beside its token; goring selects it in
/// the 101 answer (a browser fails the connection without a selection).
inline constexpr std::string_view subprotocol_marker = "goring";
/// The prefix of the subprotocol that carries the token:
/// `goring.bearer.<jwt>` (JWT characters are all valid header tokens).
inline constexpr std::string_view subprotocol_bearer_prefix = "goring.bearer.";

/// What the upgrade request says about its token.
struct token_source {
  /// The token, when exactly one place holds one.
  std::optional<std::string> token;
  /// "query", "authorization" or "subprotocol"; for logs (never the token).
  std::string where;
  /// Why the request is refused (more than one token, a token subprotocol
  /// without the marker); empty otherwise. Never contains the token.
  std::string refusal;
  /// The subprotocol to select in the 101 answer ("goring" when the client
  /// offered it), empty for none.
  std::string subprotocol;
};

/// The credentials of an Authorization value `Bearer <token>` (scheme
/// case-insensitive, spaces and tabs around trimmed), or nothing for
/// another scheme.
std::optional<std::string_view> bearer_credentials(std::string_view value);

/// Reads the token of an upgrade. `query_token` is the `token` query
/// parameter (decoded), `authorization` the values of every Authorization
/// header, `protocols` those of every Sec-WebSocket-Protocol header
/// (comma-separated lists). Exactly one place may carry a token; two are
/// refused rather than guessed between. Empty values count as absent;
/// Authorization schemes other than Bearer are ignored.
token_source find_token(const std::optional<std::string>& query_token,
                        const std::vector<std::string_view>& authorization,
                        const std::vector<std::string_view>& protocols);

} // namespace goring::auth
