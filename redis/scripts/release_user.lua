-- release_user: a closing WebSocket gives its presence key back.
--
-- Slot     one Redis, Sentinel: its only key. Cluster: S(u), the user's tag.
-- KEYS[1]  ws:user:<user_id> (Cluster: ws:user:{T(user_id)})
-- ARGV[1]  owner token of the closing connection
-- Returns  1 when the key was deleted, 0 when someone else owns it (or
--          nobody does).
--
-- Race prevented: the reference deletes the key of a replaced connection
-- after its successor took it, leaving the user "offline" while connected.
-- Only the owner's token deletes.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
