-- call_end: a participant hangs up, cancels, or its connection is gone.
--
-- Slot     one Redis, Sentinel: the session and both users' call keys
--          (ARGV[3]). Cluster: S(sid), the slot of the session's partition P(sid), KEYS[1]
--          and its partition's webhook stream (ARGV[3] is '');
--          both users' call keys follow in their own slots
--          (user_call_follow: cleared).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  optional: the webhook event stream (Cluster: goring:webhooks:{P(sid)});
--          without it no event is written
-- ARGV[1]  user_id of the participant ending the call
-- ARGV[2]  TTL in milliseconds of the ended session's record
-- ARGV[3]  key prefix of users' calls ("call:user:"), or '' in Cluster mode: the
--          users' call keys live in other slots, so the caller
--          (redis/cluster_calls.cpp) updates them in steps of their own
-- ARGV[4]  session_id
-- ARGV[5]  ended_at, Unix seconds
-- ARGV[6]  'user' (call.end) or 'disconnect' (the connection closed)
-- ARGV[7]  now, Unix milliseconds (call.ended's created_at and duration_ms)
-- Returns  {status, caller_id, callee_id, reason} with status
--          'ok' | 'not_found' | 'unauthorized' | 'invalid_state'
--          and reason 'cancelled' | 'ended_by_user' | 'peer_disconnected'
--
-- The reason is decided here, from the state at the moment of the change:
-- the caller ending a ringing call cancels it. Races prevented: a hang-up
-- racing an accept decides 'cancelled' or 'ended_by_user' on the state the
-- accept really left, and a second end (both hang up at once) finds the
-- call over and ends nothing twice.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'not_found'}
end
local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'state')
local caller, callee, state = f[1], f[2], f[3]
if ARGV[1] ~= caller and ARGV[1] ~= callee then
  return {'unauthorized', caller, callee, state}
end
if state ~= 'ringing' and state ~= 'accepted' then
  return {'invalid_state', caller, callee, state}
end
local reason = 'ended_by_user'
if ARGV[6] == 'disconnect' then
  reason = 'peer_disconnected'
elseif state == 'ringing' and ARGV[1] == caller then
  reason = 'cancelled'
end
redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_at', ARGV[5],
  'ended_reason', reason)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then
  local accepted = tonumber(redis.call('HGET', KEYS[1], 'accepted_ms'))
  local duration = 0
  if accepted and state == 'accepted' then
    duration = math.max(0, tonumber(ARGV[7]) - accepted)
  end
  redis.call('XADD', KEYS[2], '*', 'type', 'call.ended', 'session_id', ARGV[4],
    'caller_id', caller, 'callee_id', callee, 'created_at', ARGV[7],
    'reason', reason, 'duration_ms', duration)
end
if ARGV[3] ~= '' then
  for _, user in ipairs({caller, callee}) do
    if redis.call('GET', ARGV[3] .. user) == ARGV[4] then
      redis.call('DEL', ARGV[3] .. user)
    end
  end
end
return {'ok', caller, callee, reason}
