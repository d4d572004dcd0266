-- call_start: the caller rings the callee.
--
-- Slot     one Redis, Sentinel only: its keys, the sessions the users' call
--          keys name (ARGV[7]) and the callee's heartbeat (ARGV[8]), in one
--          step. Cluster: never run, since those span several slots; a
--          start there is session_open, user_reserve of each user and
--          session_commit (redis/cluster_calls.cpp), which prevent the same
--          races ("Calls in steps", docs/redis-cluster.md).
-- KEYS[1]  ws:user:<callee_id>
-- KEYS[2]  call:user:<caller_id>
-- KEYS[3]  call:user:<callee_id>
-- KEYS[4]  call:session:<session_id>
-- KEYS[5]  optional: the webhook event stream (goring:webhooks); without it
--          no event is written
-- ARGV[1]  caller_id
-- ARGV[2]  callee_id
-- ARGV[3]  session_id
-- ARGV[4]  created_at, Unix seconds
-- ARGV[5]  session TTL in milliseconds
-- ARGV[6]  caller_info, JSON object
-- ARGV[7]  key prefix of call sessions ("call:session:")
-- ARGV[8]  key prefix of instances' heartbeats ("ws:server:")
-- ARGV[9]  now, Unix milliseconds (the events' created_at)
-- ARGV[10] offline ring in milliseconds: above 0 (and with KEYS[5]), a
--          callee with no connection rings that long, session fields
--          offline_ring and ring_expires_at set, while callee.offline asks
--          the app's backend to wake their phone; '0': 'offline'
-- Returns  'ok' | 'offline_ring' | 'offline' | 'caller_busy' | 'callee_busy'
--          | 'exists'
--
-- Races prevented: simultaneous callers of one callee, and crossing calls
-- (A calls B while B calls A): the check that both are free and the
-- writes that make them busy happen in one step, so exactly one wins.
-- A call:user key whose session is gone is stale and is cleared here. A
-- callee whose ws:user key names a connection of a crashed instance (no
-- heartbeat for that run) is offline, not left to ring into nothing until
-- the key expires. The events (call.started, callee.offline) are written in
-- the same step as the session, so a crash right after loses neither, and
-- none is written for a call that was refused.
local function in_call(user_call_key)
  local sid = redis.call('GET', user_call_key)
  if not sid then
    return false
  end
  if redis.call('EXISTS', ARGV[7] .. sid) == 1 then
    local state = redis.call('HGET', ARGV[7] .. sid, 'state')
    if state == 'ringing' or state == 'accepted' then
      return true
    end
  end
  redis.call('DEL', user_call_key)
  return false
end

local function online()
  local owner = redis.call('GET', KEYS[1])
  if not owner then
    return false
  end
  local instance = string.match(owner, '^(.*)/[^/]*$')
  local server = instance and string.match(instance, '^(.*)/[^/]*$')
  return server ~= nil and redis.call('HGET', ARGV[8] .. server, 'instance') == instance
end

local offline_ring = false
if not online() then
  if not KEYS[5] or (tonumber(ARGV[10]) or 0) <= 0 then
    return 'offline'
  end
  offline_ring = true
end
if in_call(KEYS[2]) then
  return 'caller_busy'
end
if in_call(KEYS[3]) then
  return 'callee_busy'
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return 'exists'
end
redis.call('HSET', KEYS[4],
  'caller_id', ARGV[1],
  'callee_id', ARGV[2],
  'state', 'ringing',
  'created_at', ARGV[4],
  'caller_info', ARGV[6])
local ring_expires_at = tonumber(ARGV[9]) + (tonumber(ARGV[10]) or 0)
if offline_ring then
  redis.call('HSET', KEYS[4], 'offline_ring', '1', 'ring_expires_at', ring_expires_at)
end
redis.call('PEXPIRE', KEYS[4], ARGV[5])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5])
if KEYS[5] then
  redis.call('XADD', KEYS[5], '*', 'type', 'call.started', 'session_id', ARGV[3],
    'caller_id', ARGV[1], 'callee_id', ARGV[2], 'created_at', ARGV[9],
    'caller_info', ARGV[6])
  if offline_ring then
    redis.call('XADD', KEYS[5], '*', 'type', 'callee.offline', 'session_id', ARGV[3],
      'caller_id', ARGV[1], 'callee_id', ARGV[2], 'created_at', ARGV[9],
      'caller_info', ARGV[6], 'ring_expires_at', ring_expires_at)
  end
end
if offline_ring then
  return 'offline_ring'
end
return 'ok'
