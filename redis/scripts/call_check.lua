-- call_check: a live call's periodic check, run by each instance that holds
-- one of its participants. It extends the call's keys (the reference loses
-- calls after 120 s) and ends the call for a participant who is gone.
--
-- Slot     one Redis, Sentinel: the session, both users' call keys
--          (ARGV[2]), their presence keys (ARGV[7]) and their instances'
--          heartbeats (ARGV[8]). Cluster: S(sid), the slot of the session's partition P(sid),
--          KEYS[1] and its partition's webhook stream (ARGV[2] and ARGV[7]
--          are ''): the caller (redis/cluster_calls.cpp) reads the
--          presence facts in their slots first (ARGV[11], ARGV[12]), and
--          both users' call keys follow (user_call_follow: extended while
--          live, cleared when this check ends the call).
-- KEYS[1]  call:session:<session_id> (Cluster: call:session:{P(sid)}:<session_id>)
-- KEYS[2]  optional: the webhook event stream (Cluster: goring:webhooks:{P(sid)});
--          without it no event is written
-- ARGV[1]  session TTL in milliseconds
-- ARGV[2]  key prefix of users' calls ("call:user:"), or '' in Cluster mode: the
--          users' call keys live in other slots, so the caller
--          (redis/cluster_calls.cpp) updates them in steps of their own
-- ARGV[3]  session_id
-- ARGV[4]  now, Unix milliseconds
-- ARGV[5]  reconnect grace in milliseconds
-- ARGV[6]  TTL in milliseconds of the ended session's record
-- ARGV[7]  key prefix of users' presence ("ws:user:")
-- ARGV[8]  key prefix of instances' heartbeats ("ws:server:")
-- ARGV[9]  a participant whose connection this instance saw go without
--          hanging up, or ''
-- ARGV[10] that connection's owner token: a ws:user key still naming it
--          is one its instance has yet to release, so it counts as none
-- ARGV[11] Cluster mode only (ARGV[7] is ''; the presence keys live in
-- ARGV[12] other slots): the caller's and the callee's presence as the
--          caller read it just before, 'present' | 'key' (a key naming a
--          run that has no heartbeat) | 'none'
-- Returns  {'gone', state, ended_reason} when the session is over, or
--          {'gone', '', ''} when it vanished;
--          {'live', state} while it goes on;
--          {'ended', caller_id, callee_id, gone_user_id} when this check
--          ended it (reason peer_disconnected).
--
-- A participant is present while their ws:user key names a connection of
-- an instance whose heartbeat (ws:server:<server_id>, field 'instance')
-- still names that same run. Absent without a key (the connection closed
-- without a close frame, or its instance drained), they have the reconnect
-- grace to come back, counted from the first check that missed them
-- (field 'away:caller' / 'away:callee'): the instance that saw them go
-- checks at once and again when the grace is up; with no grace, the first
-- check that misses them ends the call. A key left by a crashed instance
-- means gone at once: nobody will release it.
-- Races prevented: both instances check the same call; whichever ends it
-- first makes the other find it over ('gone'), so the end happens once.
-- The check at a drop runs before or after the instance releases the
-- dropped connection's key (ARGV[10]), and after a takeover's new key was
-- written: a successor's key is presence, the dropped one's is not. In
-- Cluster mode the facts may be a few milliseconds old when the decision
-- runs; the grace (two checks at least) absorbs that.
-- The callee of an offline ring (field offline_ring) is not looked for while
-- the call rings: their phone is being woken; the ring timeout ends it.
local f = redis.call('HMGET', KEYS[1], 'caller_id', 'callee_id', 'state', 'ended_reason',
  'offline_ring')
local caller, callee, state = f[1], f[2], f[3]
if state ~= 'ringing' and state ~= 'accepted' then
  return {'gone', state or '', f[4] or ''}
end

local function present(user)
  if ARGV[7] == '' then
    local fact = user == caller and ARGV[11] or ARGV[12]
    return fact == 'present', fact ~= 'none'
  end
  local owner = redis.call('GET', ARGV[7] .. user)
  if not owner or (user == ARGV[9] and owner == ARGV[10]) then
    return false, false
  end
  local instance = string.match(owner, '^(.*)/[^/]*$')
  local server = instance and string.match(instance, '^(.*)/[^/]*$')
  if server and redis.call('HGET', ARGV[8] .. server, 'instance') == instance then
    return true, true
  end
  return false, true
end

local gone = nil
for _, role in ipairs({'caller', 'callee'}) do
  local user = role == 'caller' and caller or callee
  local field = 'away:' .. role
  local alive, has_key = present(user)
  if not alive and role == 'callee' and state == 'ringing' and f[5] == '1' then
    alive = true
  end
  if alive then
    redis.call('HDEL', KEYS[1], field)
  elseif has_key then
    gone = gone or user
  else
    local since = tonumber(redis.call('HGET', KEYS[1], field))
    if not since then
      since = tonumber(ARGV[4])
      redis.call('HSET', KEYS[1], field, ARGV[4])
    end
    if tonumber(ARGV[4]) - since >= tonumber(ARGV[5]) then
      gone = gone or user
    end
  end
end

if gone then
  redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_at', math.floor(tonumber(ARGV[4]) / 1000),
    'ended_reason', 'peer_disconnected')
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  if ARGV[2] ~= '' then
    for _, user in ipairs({caller, callee}) do
      if redis.call('GET', ARGV[2] .. user) == ARGV[3] then
        redis.call('DEL', ARGV[2] .. user)
      end
    end
  end
  if KEYS[2] then
    local accepted = tonumber(redis.call('HGET', KEYS[1], 'accepted_ms'))
    local duration = 0
    if accepted and state == 'accepted' then
      duration = math.max(0, tonumber(ARGV[4]) - accepted)
    end
    redis.call('XADD', KEYS[2], '*', 'type', 'call.ended', 'session_id', ARGV[3],
      'caller_id', caller, 'callee_id', callee, 'created_at', ARGV[4],
      'reason', 'peer_disconnected', 'duration_ms', duration)
  end
  return {'ended', caller, callee, gone}
end

redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  for _, user in ipairs({caller, callee}) do
    if redis.call('GET', ARGV[2] .. user) == ARGV[3] then
      redis.call('PEXPIRE', ARGV[2] .. user, ARGV[1])
    end
  end
end
return {'live', state}
