-- call_reject: the callee declines a ringing call.
--
-- Slot     one Redis, Sentinel: the session and both users' call keys
--          (ARGV[3]). Cluster: S(sid), the slot of the session's partition P(sid), KEYS[1]
--          and its partition's webhook stream (ARGV[3] is '');
--          both users' call keys follow in their own slots
--          (user_call_follow: cleared).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  optional: the webhook event stream (Cluster: goring:webhooks:{P(sid)});
--          without it no event is written
-- ARGV[1]  user_id of the one rejecting
-- ARGV[2]  TTL in milliseconds of the ended session's record
-- ARGV[3]  key prefix of users' calls ("call:user:"), or '' in Cluster mode: the
--          users' call keys live in other slots, so the caller
--          (redis/cluster_calls.cpp) updates them in steps of their own
-- ARGV[4]  session_id
-- ARGV[5]  ended_at, Unix seconds
-- ARGV[6]  now, Unix milliseconds (call.rejected's created_at)
-- Returns  {status, caller_id, callee_id, state} with status
--          'ok' | 'not_found' | 'unauthorized' | 'invalid_state'
--
-- The session stays a short while with state 'rejected', so a late accept
-- is told the call is over (invalid_state) rather than that it never was.
-- Race prevented: reject against accept, cancel or timeout: only a ringing
-- session is rejected, and a user's call key is deleted only while it still
-- points at this session (the user may already be in a new call).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'not_found'}
end
local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'state')
local caller, callee, state = f[1], f[2], f[3]
if ARGV[1] ~= callee then
  return {'unauthorized', caller, callee, state}
end
if state ~= 'ringing' then
  return {'invalid_state', caller, callee, state}
end
redis.call('HSET', KEYS[1], 'state', 'rejected', 'ended_at', ARGV[5],
  'ended_reason', 'rejected')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then
  redis.call('XADD', KEYS[2], '*', 'type', 'call.rejected', 'session_id', ARGV[4],
    'caller_id', caller, 'callee_id', callee, 'created_at', ARGV[6])
end
if ARGV[3] ~= '' then
  for _, user in ipairs({caller, callee}) do
    if redis.call('GET', ARGV[3] .. user) == ARGV[4] then
      redis.call('DEL', ARGV[3] .. user)
    end
  end
end
return {'ok', caller, callee, 'rejected'}
