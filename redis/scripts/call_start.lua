-- call_start: the caller rings the callee.
--
-- KEYS[1]  ws:user:{callee_id}
-- KEYS[2]  call:user:{caller_id}
-- KEYS[3]  call:user:{callee_id}
-- KEYS[4]  call:session:{session_id}
-- ARGV[1]  caller_id
-- ARGV[2]  callee_id
-- ARGV[3]  session_id
-- ARGV[4]  created_at, Unix seconds
-- ARGV[5]  session TTL in milliseconds
-- ARGV[6]  caller_info, JSON object
-- ARGV[7]  key prefix of call sessions ("call:session:")
-- ARGV[8]  key prefix of instances' heartbeats ("ws:server:")
-- Returns  'ok' | 'offline' | 'caller_busy' | 'callee_busy' | 'exists'
--
-- Race prevented: two callers calling one callee at the same moment (or
-- A calling B while B calls A): the check that both are free and the
-- writes that make them busy happen in one step, so exactly one wins.
-- A call:user key whose session is gone is stale and is cleared here. A
-- callee whose ws:user key names a connection of a crashed instance (no
-- heartbeat for that run) is offline, not left to ring into nothing until
-- the key expires.
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

local owner = redis.call('GET', KEYS[1])
if not owner then
  return 'offline'
end
local instance = string.match(owner, '^(.*)/[^/]*$')
local server = instance and string.match(instance, '^(.*)/[^/]*$')
if not server or redis.call('HGET', ARGV[8] .. server, 'instance') ~= instance then
  return 'offline'
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
redis.call('PEXPIRE', KEYS[4], ARGV[5])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5])
return 'ok'
