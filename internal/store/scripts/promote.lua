-- promote.lua: move scheduled jobs that are due into their lanes, in due order.
-- Safe to run from any number of processes at once: each call moves what is due now.
-- KEYS[1] scheduled  KEYS[2] job records  KEYS[3] lane index  KEYS[4] wake-up list
-- KEYS[5..] lane keys
-- ARGV[1] now ms  ARGV[2] most jobs to move  ARGV[3] number of lanes  ARGV[4..] members
-- Returns {"ok", moved, next due ms or ""} or {"stale", member...} (the lanes missing).
local lanes = lane_map(5, 4, tonumber(ARGV[3]))
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]), 'WITHSCORES')
local moved = 0
if due[1] then
  local ids = {}
  for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
  local recs = redis.call('HMGET', KEYS[2], unpack(ids))
  local missing = {}
  for i = 1, #ids do
    if recs[i] then note_missing(lanes, missing, record_lane(recs[i])) end
  end
  if #missing > 0 then return stale_answer(missing) end
  local groups = {}
  local fair_due = {} -- fair-placed jobs: {place, id, due}
  for i, id in ipairs(ids) do
    local rec = recs[i]
    local member = rec and record_lane(rec)
    if member and fair_fields(member) then
      fair_due[#fair_due + 1] = {member, id, tonumber(due[i * 2])}
      moved = moved + 1
    elseif rec then
      local g = groups[member]
      if not g then g = {}; groups[member] = g end
      g[#g + 1] = job_score(tonumber(due[i * 2]))
      g[#g + 1] = id
    end
  end
  for member, g in pairs(groups) do
    redis.call('ZADD', lanes[member], unpack(g))
    local min = g[1]
    for j = 3, #g, 2 do if g[j] < min then min = g[j] end end
    index_lane_after_add(KEYS[3], member, min)
    moved = moved + #g / 2
  end
  if #fair_due > 0 then fair_add(lanes, KEYS[3], fair_due, tonumber(ARGV[1])) end
  redis.call('ZREM', KEYS[1], unpack(ids))
  if moved > 0 then wake(KEYS[4]) end
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {'ok', moved, head[2] or ''}
