-- claim_user: a new WebSocket takes the user's presence key, and learns the
-- call it should resume, if any.
--
-- Slot     one Redis, Sentinel: the user's two keys and the session ARGV[3]
--          names. Cluster: S(u), the user's tag, which both keys carry; the
--          session lives in a slot of its own and is read after, by the
--          caller (redis/cluster_calls.cpp).
-- KEYS[1]  ws:user:<user_id> (Cluster: ws:user:{T(user_id)})
-- KEYS[2]  call:user:<user_id> (Cluster: call:user:{T(user_id)})
-- ARGV[1]  owner token of the new connection ("server_id/run-nonce/conn")
-- ARGV[2]  TTL in milliseconds
-- ARGV[3]  key prefix of call sessions ("call:session:"), or '' in Cluster
--          mode: the script then answers {previous_owner} or
--          {previous_owner, session_id} (whatever KEYS[2] names), and the
--          caller reads the session and completes the answer below
-- ARGV[4]  user_id
-- Returns  {previous_owner, session_id, caller_id, callee_id, state,
--          caller_info, callee_info, offline_ring, ring_expires_at}:
--          previous_owner is '' when the key was free; the session fields
--          are present only when the user takes part in a live (ringing or
--          accepted) call; offline_ring is '1' for a call that rang the
--          callee while they had no connection (the callee's client then
--          gets call.ring, not call.resumed; a caller taking it up again
--          ends it at ring_expires_at, Unix ms), else ''.
--
-- Races prevented: two connections of one user racing on different
-- instances, and a takeover against the old connection's release
-- (release_user). Reading and writing in one step means the later
-- connection always learns whom it replaced, so the earlier one can be
-- told to close (code 4000), and no connection can believe it still owns
-- the key. The call key is read in the same step, so a reconnecting user
-- resumes exactly the call that was live when it took over (in Cluster
-- mode: the call its key named then, if still live when its session is
-- read a moment later).
local previous = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local sid = redis.call('GET', KEYS[2])
if not sid then
  return {previous}
end
if ARGV[3] == '' then
  return {previous, sid}
end
local f = redis.call('HMGET', ARGV[3] .. sid, 'caller_id', 'callee_id', 'state',
  'caller_info', 'callee_info', 'offline_ring', 'ring_expires_at')
local live = f[3] == 'ringing' or f[3] == 'accepted'
if not live or (f[1] ~= ARGV[4] and f[2] ~= ARGV[4]) then
  return {previous}
end
return {previous, sid, f[1], f[2], f[3], f[4] or '', f[5] or '', f[6] or '', f[7] or ''}
