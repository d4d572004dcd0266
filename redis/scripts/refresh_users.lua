-- refresh_users: one instance extends the presence keys of all its users.
--
-- KEYS[i]    ws:user:{user_id} of the i-th local user
-- ARGV[1]    TTL in milliseconds
-- ARGV[1+i]  owner token of the i-th local user's connection
-- Returns    the 1-based indexes of the users whose key now belongs to
--            another connection (they were taken over and must be closed).
--
-- Batched so that idle users cost one command per refresh period per
-- instance, not one per user. A key that vanished (Redis restarted without
-- persistence) is written back, so a connected user stays reachable.
-- Race prevented: a replaced connection can never extend its successor's
-- key, because each key is extended only when its token matches.
local lost = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[i + 1]
  local current = redis.call('GET', key)
  if current == token then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif not current then
    redis.call('SET', key, token, 'PX', ARGV[1])
  else
    lost[#lost + 1] = i
  end
end
return lost
