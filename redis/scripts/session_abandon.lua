-- session_abandon: Cluster mode (redis/cluster_calls.cpp): what a user's
-- call key names is judged, and a dead start removed.
--
-- Slot     S(sid), the slot of the session's partition P(sid): its only key.
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- ARGV[1]  'judge': remove a pending session only if older than ARGV[2];
--          'drop': remove it if pending, whatever its age (the compensation
--          of the start that opened it)
-- ARGV[2]  the pending timeout in milliseconds
-- Returns  'live' (ringing, accepted, or a start younger than the pending
--          timeout) | 'over' (absent, ended or rejected, or a pending
--          session this call removed)
--
-- Race prevented: a start that died between two steps leaves a pending
-- session and reservations naming it; they must not make both users busy
-- until their TTL. Removing the session here, in its own slot, before
-- anybody deletes a reservation naming it, means the dead start can no
-- longer commit (session_commit finds it gone), so taking its users is
-- safe. A start in progress is never removed by 'judge': the timeout (10 s)
-- is far longer than a start's steps.
local f = redis.call('HMGET', KEYS[1], 'state', 'opened_ms')
local state = f[1]
if state == 'ringing' or state == 'accepted' then
  return 'live'
end
if state ~= 'pending' then
  return 'over'
end
if ARGV[1] == 'judge' then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  if now_ms - (tonumber(f[2]) or 0) < tonumber(ARGV[2]) then
    return 'live'
  end
end
redis.call('DEL', KEYS[1])
return 'over'
