-- claim_user: a new WebSocket takes the user's presence key.
--
-- KEYS[1]  ws:user:{user_id}
-- ARGV[1]  owner token of the new connection ("server_id/instance/conn")
-- ARGV[2]  TTL in milliseconds
-- Returns  the previous owner token, or false when the key was free.
--
-- Race prevented: two connections of one user racing on different
-- instances. Reading and writing in one step means the later connection
-- always learns whom it replaced, so the earlier one can be told to close
-- (code 4000), and no connection can believe it still owns the key.
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return previous
