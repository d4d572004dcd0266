-- call_refresh: a live call extends its keys so it never expires while its
-- participants are connected (the reference loses calls after 120 s).
--
-- KEYS[1]  call:session:{session_id}
-- ARGV[1]  session TTL in milliseconds
-- ARGV[2]  key prefix of users' calls ("call:user:")
-- ARGV[3]  session_id
-- Returns  the session's state ('ringing' | 'accepted'), or false when the
--          session is gone or over (the caller then ends its local copy).
--
-- Race prevented: a refresh racing an end must not resurrect the ended
-- session's user keys: keys are only extended, never written, and only
-- while they still point at this session.
local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'state')
local caller, callee, state = f[1], f[2], f[3]
if state ~= 'ringing' and state ~= 'accepted' then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for _, user in ipairs({caller, callee}) do
  if redis.call('GET', ARGV[2] .. user) == ARGV[3] then
    redis.call('PEXPIRE', ARGV[2] .. user, ARGV[1])
  end
end
return state
