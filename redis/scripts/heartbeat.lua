-- heartbeat: an instance says it is alive, and who it is.
--
-- Slot     its only key, in every mode (heartbeats keep their names in
--          Cluster mode).
-- KEYS[1]  ws:server:<server_id>
-- ARGV[1]  TTL in milliseconds
-- ARGV[2]  instance: "server_id/run-nonce", the prefix of its owner tokens
-- ARGV[3]  version
-- ARGV[4]  started_at, Unix seconds
-- ARGV[5]  admin address ("host:port", or "" without an admin listener)
-- Returns  the instance that held the key before when it was another run
--          of the same SERVER_ID, else ''.
--
-- The key outlives a crash by at most its TTL: call_check reads it to tell
-- a crashed instance's connections (gone at once) from live ones. A run
-- restarted under the same SERVER_ID takes the key over at once, which
-- also marks the previous run's connections as gone.
-- Race prevented: two runs of one SERVER_ID beating at once (a restart
-- before the old run's key expired, or two instances given one id): the
-- previous run is read and this one written in one step, so every
-- takeover is told to the run that made it (and logged), never lost
-- between a read and a write.
local previous = redis.call('HGET', KEYS[1], 'instance')
redis.call('HSET', KEYS[1], 'instance', ARGV[2], 'version', ARGV[3],
  'started_at', ARGV[4], 'admin', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if previous and previous ~= ARGV[2] then
  return previous
end
return ''
