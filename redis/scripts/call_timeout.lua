-- call_timeout: a call rang for RING_TIMEOUT without an answer.
--
-- Slot     one Redis, Sentinel: the session and both users' call keys
--          (ARGV[2]). Cluster: S(sid), the slot of the session's partition P(sid), KEYS[1]
--          and its partition's webhook stream (ARGV[2] is '');
--          both users' call keys follow in their own slots
--          (user_call_follow: cleared).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  optional: the webhook event stream (Cluster: goring:webhooks:{P(sid)});
--          without it no event is written
-- ARGV[1]  TTL in milliseconds of the ended session's record
-- ARGV[2]  key prefix of users' calls ("call:user:"), or '' in Cluster mode: the
--          users' call keys live in other slots, so the caller
--          (redis/cluster_calls.cpp) updates them in steps of their own
-- ARGV[3]  session_id
-- ARGV[4]  ended_at, Unix seconds
-- ARGV[5]  now, Unix milliseconds (call.ended's created_at)
-- Returns  {status, caller_id, callee_id, state} with status
--          'ok' | 'not_found' | 'invalid_state'
--
-- Both participants' instances arm a ring timer; whichever fires first
-- ends the call, the other finds it no longer ringing. Race prevented: an
-- accept arriving as the timer fires either wins (the timeout finds
-- 'accepted') or loses (the accept finds 'ended'), never both.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'not_found'}
end
local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'state')
local caller, callee, state = f[1], f[2], f[3]
if state ~= 'ringing' then
  return {'invalid_state', caller, callee, state}
end
redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_at', ARGV[4],
  'ended_reason', 'no_answer')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if KEYS[2] then
  redis.call('XADD', KEYS[2], '*', 'type', 'call.ended', 'session_id', ARGV[3],
    'caller_id', caller, 'callee_id', callee, 'created_at', ARGV[5],
    'reason', 'no_answer', 'duration_ms', 0)
end
if ARGV[2] ~= '' then
  for _, user in ipairs({caller, callee}) do
    if redis.call('GET', ARGV[2] .. user) == ARGV[3] then
      redis.call('DEL', ARGV[2] .. user)
    end
  end
end
return {'ok', caller, callee, 'ended'}
