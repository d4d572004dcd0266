-- user_reserve: Cluster mode (redis/cluster_calls.cpp): a user is taken
-- for a call, in the user's own slot.
--
-- Slot     S(u), the user's tag, which both keys carry.
-- KEYS[1]  call:user:{T(u)}
-- KEYS[2]  optional: ws:user:{T(u)}, which must still hold ARGV[4] (the
--          callee's connection that call_start found online)
-- ARGV[1]  session_id
-- ARGV[2]  TTL in milliseconds
-- ARGV[3]  a session id the caller judged over (session_abandon), which
--          may be replaced, or ''
-- ARGV[4]  the expected owner token of KEYS[2]
-- Returns  {'ok'} | {'taken', session_id} (the user's key names another
--          session, not judged over) | {'offline'} (KEYS[2] changed)
--
-- Race prevented: simultaneous callers of one callee, and crossing calls (A
-- calls B while B calls A): the check that the user is free and the write
-- that makes them busy are one step, so exactly one session gets the user;
-- the others hear 'taken' and give back what they reserved. A key replaced
-- only when it still names the session judged over never drops a newer
-- call that took the user in between.
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return {'offline'}
end
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] and current ~= ARGV[3] then
  return {'taken', current}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'ok'}
