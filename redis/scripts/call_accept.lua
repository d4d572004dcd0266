-- call_accept: the callee answers a ringing call.
--
-- Slot     one Redis, Sentinel: the session and both users' call keys
--          (ARGV[3]). Cluster: S(sid), the slot of the session's partition P(sid), KEYS[1]
--          and its partition's webhook stream (ARGV[3] is '');
--          both users' call keys follow in their own slots
--          (user_call_follow: extended).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  optional: the webhook event stream (Cluster: goring:webhooks:{P(sid)});
--          without it no event is written
-- ARGV[1]  user_id of the one accepting
-- ARGV[2]  session TTL in milliseconds
-- ARGV[3]  key prefix of users' calls ("call:user:"), or '' in Cluster mode: the
--          users' call keys live in other slots, so the caller
--          (redis/cluster_calls.cpp) updates them in steps of their own
-- ARGV[4]  session_id
-- ARGV[5]  callee_info, JSON object
-- ARGV[6]  accepted_at, Unix seconds
-- ARGV[7]  now, Unix milliseconds (call.accepted's created_at, and the
--          field accepted_ms that call.ended's duration_ms counts from)
-- Returns  {status, caller_id, callee_id, state} with status
--          'ok' | 'not_found' | 'unauthorized' | 'invalid_state'
--
-- Races prevented: a double accept (two taps, or two devices), and an
-- accept against the caller's cancel, the callee's reject or the ring
-- timeout: only a session still ringing turns accepted, exactly once. In
-- every mode that compare-and-set on 'state' is the one decision; a user's
-- call key is extended only while it still names this session.
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
redis.call('HSET', KEYS[1], 'state', 'accepted', 'accepted_at', ARGV[6],
  'callee_info', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then
  redis.call('HSET', KEYS[1], 'accepted_ms', ARGV[7])
  redis.call('XADD', KEYS[2], '*', 'type', 'call.accepted', 'session_id', ARGV[4],
    'caller_id', caller, 'callee_id', callee, 'created_at', ARGV[7],
    'callee_info', ARGV[5])
end
if ARGV[3] ~= '' then
  for _, user in ipairs({caller, callee}) do
    if redis.call('GET', ARGV[3] .. user) == ARGV[4] then
      redis.call('PEXPIRE', ARGV[3] .. user, ARGV[2])
    end
  end
end
return {'ok', caller, callee, 'accepted'}
