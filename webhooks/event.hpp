/// A webhook event as the call scripts write it to the event stream (one
/// entry of flat field/value pairs, see redis/scripts/call_*.lua), and the
/// JSON body it is POSTed as. Pure: no sockets.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "redis/reply.hpp"

namespace goring::webhooks {

/// One event, ready to send.
struct event {
  /// The stream entry's id ("1733531234567-0"): what XACK and XDEL name.
  std::string entry_id;
  /// "<session_id>:<type>": unique, since each type happens at most once
  /// per session; the body's `id` and the Goring-Event-Id header.
  std::string id;
  std::string type;
  std::string session_id;
  /// Unix ms of the transition.
  long long created_at = 0;
  /// The JSON body, exactly the bytes that are signed and sent.
  std::string body;
};

/// An entry read from the stream: an event, or only its id when the entry
/// is unusable (deleted meanwhile, or not what a script writes); such an
/// entry is acknowledged and dropped.
struct stream_entry {
  std::string entry_id;
  std::optional<event> value;
  /// Why `value` is empty.
  std::string problem;
};

/// The event of one stream entry (`[id, [field, value, ...]]`).
stream_entry read_entry(const redis::reply& entry);

/// The entries of an XREADGROUP reply (`[[stream, [entry...]]]`, or nil
/// when there is nothing new).
std::vector<stream_entry> read_group_reply(const redis::reply& r);

/// The entries of an XAUTOCLAIM reply (`[cursor, [entry...], [deleted...]]`)
/// and the cursor to continue from ("0-0" when the scan went round).
std::vector<stream_entry> read_autoclaim_reply(const redis::reply& r, std::string& cursor);

/// Stream order of two entry ids ("<ms>-<seq>", compared as numbers).
struct stream_order {
  bool operator()(const std::string& a, const std::string& b) const;
};

/// The Unix ms in a stream entry id ("1733531234567-0" gives 1733531234567),
/// 0 when it is none.
long long entry_time_ms(const std::string& entry_id);

} // namespace goring::webhooks
