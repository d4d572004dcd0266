/// Redis Cluster's key hashing (CRC16 and the 16384 slots with the hash-tag
/// rule), the hash tag of a user id, and the key a command is routed by.
/// Key names themselves stay in redis/keys.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace goring::redis::cluster {

/// The number of hash slots of every Redis Cluster.
inline constexpr uint16_t slot_count = 16384;

/// CRC16-CCITT in its XMODEM form (polynomial 0x1021, initial value 0, no
/// reflection), the checksum Redis Cluster hashes keys with:
/// crc16("123456789") == 0x31C3.
uint16_t crc16(std::string_view data);

/// The part of `key` Redis hashes: the text between the first '{' and the
/// first '}' after it when that text is not empty, else the whole key.
std::string_view hashed_part(std::string_view key);

/// The slot Redis Cluster puts `key` in: crc16(hashed_part(key)) % 16384.
uint16_t key_slot(std::string_view key);

/// The hash tag of one user's keys, without its braces.
///
/// Rule: every '%' of the id becomes "%25", every '{' "%7B" and every '}'
/// "%7D"; everything else is kept as it is; the empty id becomes "%".
/// So "alice" stays "alice", "a}b{c" becomes "a%7Db%7Bc", "}" becomes "%7D".
///
/// Why no id can split its keys over two slots or hash like another user's:
/// - The tag holds no brace: each one is escaped.
/// - The tag is never empty: the empty id becomes "%".
/// - Distinct ids give distinct tags: the rule can be undone left to right,
///   because every '%' it writes either starts one of the three escapes
///   ("%25" for a '%' of the id among them) or is the whole tag of the
///   empty id; so tag(a) == tag(b) only when a == b.
/// - A user key is PREFIX "{" tag "}" [SUFFIX] with a PREFIX that holds no
///   brace (ours are constants such as "ws:user:"). Redis takes the first
///   '{', which is ours, then the first '}' after it, which is ours too
///   because the tag has none, and hashes what lies between: exactly the
///   tag, whatever the id holds and whatever SUFFIX follows.
/// Hence all keys of one user hash the same string, so share one slot, and
/// two users hash two different strings. Two users may still share a slot
/// by chance (16384 slots), as any two keys may: harmless, since the key
/// names differ. Choosing an id whose slot equals another user's is
/// possible (CRC16 is no secret), but it only puts two users' keys on the
/// same master, never into each other's keys.
std::string user_tag(std::string_view user_id);

/// PREFIX "{" user_tag(user_id) "}": a user's key in the cluster layout.
/// `prefix` must hold no brace.
std::string user_key(std::string_view prefix, std::string_view user_id);

/// The tag of partition `p` of `count` (p < count <= slot_count): the
/// first of "p-0", "p-1", ... whose slot falls into the p-th of `count`
/// equal slot ranges. So partitions spread evenly over the slots, hence
/// over masters that split the slots evenly, as `redis-cli --cluster
/// create` and `rebalance` do; naive tags do not ("{0}", "{1}", "{2}" hash
/// to slots 13907, 9842, 5649: none on the first of three masters).
std::string partition_tag(unsigned p, unsigned count);

/// The partition of `count` an id belongs to: CRC16 of the whole id
/// modulo `count`. Spread like keys over slots; an id chosen to land in
/// one partition puts load there, nothing else.
unsigned partition_of(std::string_view id, unsigned count);

/// How a command is routed in a cluster.
enum class route_kind : uint8_t {
  by_key,       ///< to the master of the slot of `key`
  any_master,   ///< no key: any master will do (PING, EVALSHA with no keys)
  every_master, ///< must reach every master (SCRIPT LOAD, SCRIPT FLUSH)
};

struct command_route {
  route_kind kind = route_kind::any_master;
  /// The first key (or channel) of a by_key command, a view into the argv
  /// it came from; empty otherwise.
  std::string_view key;
};

/// Where a command goes, from its argv: EVAL, EVALSHA, FCALL and their
/// _RO forms by their first key (argv[3] when numkeys > 0); SCRIPT LOAD and
/// SCRIPT FLUSH to every master; commands without keys (PING, INFO, CLIENT,
/// CLUSTER, ROLE, TIME, ECHO, SCRIPT EXISTS, ...) to any master; every other
/// command by argv[1], its first key (GET, SET, HSET, DEL, EXPIRE,
/// PUBLISH/SPUBLISH's channel, XADD, XACK, ...), but XGROUP and XINFO by
/// argv[2] and XREAD/XREADGROUP by the first key after STREAMS. A multi-key command whose keys span
/// slots goes by its first key, and Redis answers CROSSSLOT.
command_route route_of(const std::vector<std::string>& argv);
/// `key` points into argv: never route a temporary.
command_route route_of(std::vector<std::string>&& argv) = delete;

} // namespace goring::redis::cluster
