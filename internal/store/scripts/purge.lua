-- purge.lua: delete up to `limit` jobs of one state; the caller repeats until 0.
-- KEYS[1] lane index  KEYS[2] job records  KEYS[3] attempts  KEYS[4] errors
-- KEYS[5] stacks  KEYS[6] results  KEYS[7] timings  KEYS[8] the state's set
-- (scheduled, failed, succeeded or canceled; unused for pending)  KEYS[9] schedule keys
-- KEYS[10] keys of keyed jobs  KEYS[11..] lane keys
-- ARGV[1] 'pending' or 'set'  ARGV[2] limit  ARGV[3] number of lanes  ARGV[4..] members
-- then ARGV[4+lanes] the done channel, ARGV[5+lanes] '1' when the purged jobs had not
-- ended (pending, scheduled): their waiters are told they were canceled.
-- Returns the number of jobs deleted.
local nl = tonumber(ARGV[3])
local channel, notify = ARGV[4 + nl], ARGV[5 + nl] == '1'
local function told(ids)
  if #ids == 0 then return end
  local ks = redis.call('HMGET', KEYS[10], unpack(ids))
  for i, id in ipairs(ids) do
    if ks[i] then release_key(KEYS[9], KEYS[10], id) end
  end
  if notify then redis.call('PUBLISH', channel, 'c ' .. table.concat(ids, ' ')) end
end
local limit = tonumber(ARGV[2])
local removed = 0
if ARGV[1] == 'set' then
  local ids = redis.call('ZRANGE', KEYS[8], 0, limit - 1)
  if #ids == 0 then return 0 end
  redis.call('ZREM', KEYS[8], unpack(ids))
  forget(ids, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
  told(ids)
  return #ids
end
local lanes = lane_map(11, 4, nl)
for i = 0, nl - 1 do
  if removed >= limit then break end
  local lane, member = KEYS[11 + i], ARGV[4 + i]
  if string.sub(member, 2) == '|fair' then
    -- a band's fair set: its members name the jobs (lib.lua, fair_add)
    local p = string.sub(member, 1, 1)
    local ms = redis.call('ZRANGE', lane, 0, limit - removed - 1)
    if #ms > 0 then
      local ids, per, keys = {}, {}, {}
      for _, m in ipairs(ms) do
        local f = fair_fields(m)
        ids[#ids + 1] = f[3]
        if not per[f[1]] then
          per[f[1]] = 0
          keys[#keys + 1] = f[1]
        end
        per[f[1]] = per[f[1]] + 1
      end
      redis.call('ZREMRANGEBYRANK', lane, 0, #ms - 1)
      for _, key in ipairs(keys) do fair_count(lanes, key, -per[key]) end
      forget(ids, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
      told(ids)
      removed = removed + #ids
      fair_settle(lanes, KEYS[1], p, keys)
    else
      fair_settle(lanes, KEYS[1], p, {})
    end
  elseif string.find(member, '^%d:') then -- a lane (the fair sets' other keys hold no jobs)
    local ids = redis.call('ZRANGE', lane, 0, limit - removed - 1)
    if #ids > 0 then
      redis.call('ZREMRANGEBYRANK', lane, 0, #ids - 1)
      forget(ids, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
      told(ids)
      removed = removed + #ids
    end
    rescore_lane(KEYS[1], lane, member)
  end
end
return removed
