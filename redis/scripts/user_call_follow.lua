-- user_call_follow: Cluster mode (redis/cluster_calls.cpp): a user's call
-- key follows a transition decided in the session's slot.
--
-- Slot     S(u), the user's tag: its only key.
-- KEYS[1]  call:user:{T(u)}
-- ARGV[1]  session_id
-- ARGV[2]  'clear' (the call is over, or a start gives the user back), or
--          a TTL in milliseconds to extend the key to (the call goes on)
-- Returns  1 when the key named the session and was changed, else 0
--
-- Race prevented: compare-and-delete / compare-and-extend. The user may be
-- in a newer call already (the key names another session): that key is
-- left alone. Safe to repeat or to skip: a key naming a session that is
-- over is stale, and the next start or claim treats it so.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'clear' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
