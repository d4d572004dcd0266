-- session_open: Cluster mode, step 1 of call_start (redis/cluster_calls.cpp):
-- the new call's session is written 'pending', before either user is
-- reserved for it.
--
-- Slot     S(sid), the slot of the session's partition P(sid): its only key.
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- ARGV[1]  caller_id
-- ARGV[2]  callee_id
-- ARGV[3]  created_at, Unix seconds
-- ARGV[4]  session TTL in milliseconds
-- ARGV[5]  caller_info, JSON object
-- Returns  'ok' | 'exists'
--
-- Race prevented: a reservation (call:user:{T(u)} = session_id, step 2)
-- always names a session that exists, so nobody can mistake a reservation
-- in progress for a stale key and take the user from under it. The field
-- opened_ms (this server's clock) lets session_abandon tell a start still
-- in progress from one whose instance died between two steps.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'exists'
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1],
  'caller_id', ARGV[1],
  'callee_id', ARGV[2],
  'state', 'pending',
  'created_at', ARGV[3],
  'caller_info', ARGV[5],
  'opened_ms', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 'ok'
