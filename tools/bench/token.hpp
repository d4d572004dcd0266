/// HS256 JWTs that goring-bench mints for its own users.
#pragma once

#include <chrono>
#include <string>

namespace goring::bench {

/// A token whose `hash` claim is `user_id` (also its `username`, with
/// `name` "Bench <user_id>"), valid for `lifetime`, signed with `secret`.
/// `user_id` must need no JSON escaping (bench user ids never do).
std::string mint_token(const std::string& secret, const std::string& user_id,
                       std::chrono::seconds lifetime = std::chrono::hours(1));

/// base64url without padding, as JWTs use it.
std::string base64url(const std::string& bytes);

} // namespace goring::bench
