-- requeue_active.lua: put active jobs back in their lanes at their old score, ahead of
-- later arrivals. Used for a worker's hand-back on shutdown (no attempt spent) and for
-- leases that expired (an attempt spent, error recorded).
-- KEYS[1] active  KEYS[2] owners  KEYS[3] lane index  KEYS[4] wake-up list
-- KEYS[5] attempts  KEYS[6] errors  KEYS[7] job records  KEYS[8] stacks  KEYS[9] results
-- KEYS[10] timings  KEYS[11] schedule keys  KEYS[12] keys of keyed jobs
-- KEYS[13] stop requests  KEYS[14] canceled set  KEYS[15] ready list  KEYS[16] limits
-- KEYS[17] limits' state  KEYS[18..] lanes
-- ARGV[1] now ms ('': Redis' clock, which lease deadlines are set by)
-- ARGV[2] worker id ('' = any)  ARGV[3] 'handback' or 'expired'
-- ARGV[4] error for expired leases  ARGV[5] number of lanes  ARGV[6..] lane members
-- then ARGV[6+lanes] the done channel, then (handback) the ids
-- A keyed job superseded meanwhile (a newer job under its key) is dropped, not requeued;
-- a job asked to stop ends canceled, kept for inspection (the stop outlives its worker).
-- then, for 'handback', pairs of job id and lease start ms ('': any lease of the
-- worker): only those leases go back.
-- 'expired' takes up to 200 leases older than now; a hand-off nobody claimed also
-- leaves the ready list, so no worker starts it from a stale entry.
-- Returns {"ok", moved, next lease deadline or ""} or {"stale", member...}.
local nl = tonumber(ARGV[5])
local lanes = lane_map(18, 6, nl)
local channel = ARGV[6 + nl]
local now = clock_ms(ARGV[1])
local nows = string.format('%d', now)
local ids, starts = {}, {}
if ARGV[3] == 'expired' then
  ids = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, 200)
else
  for i = 7 + nl, #ARGV, 2 do
    ids[#ids + 1] = ARGV[i]
    starts[#ids] = ARGV[i + 1]
  end
end
if #ids == 0 then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'ok', 0, head[2] or ''}
end
local owners = redis.call('HMGET', KEYS[2], unpack(ids))
local plan = {}
local missing = {}
for i, o in ipairs(owners) do
  if o then note_missing(lanes, missing, string.match(owner_split(o), '^.-|%d+|[^|]+|(.*)$')) end
end
if #missing > 0 then return stale_answer(missing) end
for i, id in ipairs(ids) do
  local o = owners[i]
  if o then
    local wid, start, score, member = string.match(owner_split(o), '^(.-)|(%d+)|([^|]+)|(.*)$')
    if ARGV[2] == '' or (wid == ARGV[2] and (starts[i] == '' or start == starts[i])) then
      plan[#plan + 1] = {id, tonumber(score), member, wid, start, o}
    end
  elseif ARGV[3] == 'expired' then
    redis.call('ZREM', KEYS[1], id) -- no owner: a half-finished state change; drop the lease
    redis.call('HDEL', KEYS[13], id)
  end
end
local moved = 0
local ready = nil
local rel = {order = {}} -- slots its limits counted, freed once with the lease
local fair_back = {} -- fair-placed jobs going back: {place, id, due}
for _, p in ipairs(plan) do
  local id, score, member = p[1], p[2], p[3]
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  limits_note(rel, p[6])
  if p[4] == '*' then
    -- its entry may still wait in the ready list (the idle worker died): drop it
    if not ready then ready = redis.call('LRANGE', KEYS[15], 0, 99) end
    local prefix = id .. '|' .. p[5] .. '|'
    for _, e in ipairs(ready) do
      if string.sub(e, 1, #prefix) == prefix then redis.call('LREM', KEYS[15], 1, e) end
    end
  end
  if redis.call('HDEL', KEYS[13], id) == 1 then
    release_key(KEYS[11], KEYS[12], id)
    if ARGV[3] == 'expired' and p[4] ~= '*' then
      redis.call('HINCRBY', KEYS[5], id, 1)
      redis.call('HSET', KEYS[6], id, ARGV[4])
    end
    redis.call('ZADD', KEYS[14], nows, id)
    redis.call('PUBLISH', channel, 'c ' .. id)
  elseif superseded(KEYS[11], KEYS[12], id) then
    forget({id}, KEYS[7], KEYS[5], KEYS[6], KEYS[8], KEYS[9], KEYS[10])
    redis.call('HDEL', KEYS[12], id)
    redis.call('PUBLISH', channel, 'c ' .. id)
  else
    moved = moved + 1
    local f = fair_fields(member)
    if f then
      -- back under its key at its old in-key score; a hand-back refunds its charge
      fair_back[#fair_back + 1] = {f[1] .. SEP .. f[2] .. SEP .. f[3], id, score}
      if ARGV[3] == 'handback' and f[4] then
        local c, wt = finite(f[4]), finite(f[5])
        if c and wt and wt > 0 then fair_correct(lanes, string.sub(f[1], 1, 1), f[2], -c / wt) end
      end
    else
      redis.call('ZADD', lanes[member], score, id)
      index_lane_after_add(KEYS[3], member, score)
    end
  -- an expired lease spends an attempt, unless the job was handed to an idle worker
  -- that never claimed it (owner "*"): it never ran
    if ARGV[3] == 'expired' and p[4] ~= '*' then
      redis.call('HINCRBY', KEYS[5], id, 1)
      redis.call('HSET', KEYS[6], id, ARGV[4])
    end
  end
end
if #fair_back > 0 then fair_add(lanes, KEYS[3], fair_back, now) end
limits_release(KEYS[16], KEYS[17], KEYS[4], rel)
if moved > 0 then wake(KEYS[4]) end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {'ok', #plan, head[2] or ''}
