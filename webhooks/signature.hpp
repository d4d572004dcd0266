/// The Goring-Signature header of a webhook: an HMAC-SHA256 of the send
/// time and the raw body under WEBHOOK_SECRET, as receivers check it
/// (docs/webhooks.md). Pure: no sockets.
#pragma once

#include <string>
#include <string_view>

namespace goring::webhooks {

/// Lowercase hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// `t=<unix_seconds>,v1=<hmac_sha256_hex(secret, "<unix_seconds>.<body>")>`.
std::string signature_header(std::string_view secret, long long unix_seconds,
                             std::string_view body);

} // namespace goring::webhooks
