-- call_restore: after a failover, a call actor writes its call back where
-- the new master lacks it, from what the actor knows of the call.
--
-- Slot     one Redis, Sentinel: the session and both users' call keys.
--          Cluster: S(sid), the slot of the session's partition P(sid), KEYS[1] alone: the
--          caller (redis/cluster_calls.cpp) reads both users' call keys in
--          their slots first (a live other call there means 'taken') and
--          sets them after, where absent (user_reserve).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  call:user:<caller_id>; KEYS[2] and KEYS[3] are left out in
-- KEYS[3]  call:user:<callee_id>   Cluster mode, where they live in other
--          slots
-- ARGV[1]  caller_id
-- ARGV[2]  callee_id
-- ARGV[3]  session_id
-- ARGV[4]  state as the actor knows it: 'ringing' or 'accepted'
-- ARGV[5]  created_at, Unix seconds
-- ARGV[6]  caller_info, JSON object
-- ARGV[7]  callee_info, JSON object ('' when unknown)
-- ARGV[8]  accepted_at, Unix seconds ('' unless accepted)
-- ARGV[9]  session TTL in milliseconds
-- Returns  'restored' when the session was written back; 'kept' when the
--          new master had it (a live one gets back a missing call:user
--          key); 'taken' when a participant's call:user key names another
--          session, and nothing was written.
--
-- Race prevented: replication is asynchronous, so the new master may lack
-- writes the old one acknowledged; call_check would read the vanished
-- session as over and end a call both participants are still in. Every
-- instance holding the call restores it at the same moment; writing only
-- what is absent, in one step, never overwrites what another instance or a
-- transition on the new master wrote, and never brings back a call that
-- ended there (its record is kept for a while) or that a newer call of one
-- participant replaced. In Cluster mode a newer call that takes a user
-- between the caller's read and its write makes the caller end the
-- restored session again and answer 'taken'.
local function names_another(user_call_key)
  if not user_call_key then
    return false
  end
  local sid = redis.call('GET', user_call_key)
  return sid and sid ~= ARGV[3]
end

if redis.call('EXISTS', KEYS[1]) == 1 then
  local state = redis.call('HGET', KEYS[1], 'state')
  if KEYS[2] and (state == 'ringing' or state == 'accepted') then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[9], 'NX')
    redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[9], 'NX')
  end
  return 'kept'
end
if names_another(KEYS[2]) or names_another(KEYS[3]) then
  return 'taken'
end
redis.call('HSET', KEYS[1],
  'caller_id', ARGV[1],
  'callee_id', ARGV[2],
  'state', ARGV[4],
  'created_at', ARGV[5],
  'caller_info', ARGV[6],
  'restored', '1')
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'callee_info', ARGV[7])
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'accepted_at', ARGV[8])
end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
if KEYS[2] then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[9])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[9])
end
return 'restored'
