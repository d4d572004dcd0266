-- refresh_users: one instance extends the presence keys of all its users.
--
-- Slot       one Redis, Sentinel: every key given (a batch of local users).
--            Cluster: S(u) shared by all its users: the caller
--            (redis/cluster_calls.cpp) runs one script per group of users
--            whose tags share a slot, and turns each group's indexes back
--            into the batch's.
-- KEYS[i]    ws:user:<user_id> of the i-th local user (Cluster:
--            ws:user:{T(user_id)})
-- ARGV[1]    TTL in milliseconds
-- ARGV[1+i]  owner token of the i-th local user's connection
-- Returns    the 1-based indexes of the users whose key now belongs to
--            another connection (they were taken over and must be closed).
--
-- Batched so that idle users cost one command per refresh period per
-- instance, not one per user; and one key operation per user in the usual
-- case (SET XX GET extends the key and tells whose it was; Redis >= 6.2).
-- A key that vanished (Redis restarted without persistence) is written
-- back, so a connected user stays reachable.
-- Race prevented: a replaced connection never keeps its successor's key:
-- the successor's token is put back in the same script, before anyone can
-- read the key.
local lost = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[i + 1]
  local previous = redis.call('SET', key, token, 'XX', 'GET', 'PX', ARGV[1])
  if not previous then
    redis.call('SET', key, token, 'PX', ARGV[1])
  elseif previous ~= token then
    redis.call('SET', key, previous, 'PX', ARGV[1])
    lost[#lost + 1] = i
  end
end
return lost
