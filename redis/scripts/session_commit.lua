-- session_commit: Cluster mode, the last step of call_start
-- (redis/cluster_calls.cpp): both users are reserved, the call rings.
--
-- Slot     S(sid), the slot of the session's partition P(sid), which the webhook
--          stream of KEYS[2] shares.
-- KEYS[1]  call:session:{P(sid)}:<session_id>
-- KEYS[2]  optional: the webhook stream goring:webhooks:{P(sid)}; without it
--          no event is written
-- ARGV[1]  session_id (the events' session_id)
-- ARGV[2]  now, Unix milliseconds (the events' created_at)
-- ARGV[3]  offline ring in milliseconds: above 0, the callee had no
--          connection and rings that long (session fields offline_ring and
--          ring_expires_at) while callee.offline asks the app's backend to
--          wake their phone; '0' or absent: the callee is online
-- Returns  'ok' | 'offline_ring' (now ringing) | 'abandoned' (no longer
--          pending: another start found it older than the pending timeout
--          and removed it)
--
-- Race prevented: the commit point. A start whose steps took longer than
-- the pending timeout may have been judged dead by another start
-- (session_abandon), which then took one of its users; turning 'pending'
-- into 'ringing' only here, by compare-and-set, means such a start can
-- never ring afterwards. The events (call.started, callee.offline) are
-- written in this same step, so a call that rings always has them and a
-- start that gave up has none.
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  return 'abandoned'
end
redis.call('HSET', KEYS[1], 'state', 'ringing')
redis.call('HDEL', KEYS[1], 'opened_ms')
local offline_ring = (tonumber(ARGV[3]) or 0) > 0
local ring_expires_at = (tonumber(ARGV[2]) or 0) + (tonumber(ARGV[3]) or 0)
if offline_ring then
  redis.call('HSET', KEYS[1], 'offline_ring', '1', 'ring_expires_at', ring_expires_at)
end
if KEYS[2] then
  local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'caller_info')
  redis.call('XADD', KEYS[2], '*', 'type', 'call.started', 'session_id', ARGV[1],
    'caller_id', f[1], 'callee_id', f[2], 'created_at', ARGV[2], 'caller_info', f[3])
  if offline_ring then
    redis.call('XADD', KEYS[2], '*', 'type', 'callee.offline', 'session_id', ARGV[1],
      'caller_id', f[1], 'callee_id', f[2], 'created_at', ARGV[2], 'caller_info', f[3],
      'ring_expires_at', ring_expires_at)
  end
end
if offline_ring then
  return 'offline_ring'
end
return 'ok'
