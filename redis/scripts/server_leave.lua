-- server_leave: an instance that shuts down removes its heartbeat.
--
-- Slot     its only key, in every mode.
-- KEYS[1]  ws:server:<server_id>
-- ARGV[1]  instance: "server_id/run-nonce"
-- Returns  1 when deleted, 0 when the key belongs to another run.
--
-- Race prevented: a restarted instance with the same SERVER_ID may already
-- have written its own heartbeat; only the run that wrote it deletes it.
if redis.call('HGET', KEYS[1], 'instance') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
