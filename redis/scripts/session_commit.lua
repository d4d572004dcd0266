-- session_commit: Cluster mode, the last step of call_start
-- (redis/cluster_calls.cpp): both users are reserved, the call rings.
--
-- Slot     S(sid), the session's own slot: its only key.
-- KEYS[1]  call:session:<session_id>
-- Returns  'ok' (now ringing) | 'abandoned' (no longer pending: another
--          start found it older than the pending timeout and removed it)
--
-- Race prevented: the commit point. A start whose steps took longer than
-- the pending timeout may have been judged dead by another start
-- (session_abandon), which then took one of its users; turning 'pending'
-- into 'ringing' only here, by compare-and-set, means such a start can
-- never ring afterwards.
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  return 'abandoned'
end
redis.call('HSET', KEYS[1], 'state', 'ringing')
redis.call('HDEL', KEYS[1], 'opened_ms')
return 'ok'
