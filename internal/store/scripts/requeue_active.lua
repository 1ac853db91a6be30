-- requeue_active.lua: put active jobs back in their lanes at their old score, ahead of
-- later arrivals. Used for a worker's hand-back on shutdown (no attempt spent) and for
-- leases that expired (an attempt spent, error recorded).
-- KEYS[1] active  KEYS[2] owners  KEYS[3] lane index  KEYS[4] wake-up list
-- KEYS[5] attempts  KEYS[6] errors  KEYS[7..] lane keys
-- ARGV[1] now ms  ARGV[2] worker id ('' = any)  ARGV[3] 'handback' or 'expired'
-- ARGV[4] error for expired leases  ARGV[5] number of lanes  ARGV[6..] lane members
-- then, for 'handback', the job ids. 'expired' takes up to 200 leases older than now.
-- Returns {"ok", moved, next lease deadline or ""} or {"stale", member}.
local nl = tonumber(ARGV[5])
local lanes = lane_map(7, 6, nl)
local ids = {}
if ARGV[3] == 'expired' then
  ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 200)
else
  for i = 6 + nl, #ARGV do ids[#ids + 1] = ARGV[i] end
end
if #ids == 0 then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'ok', 0, head[2] or ''}
end
local owners = redis.call('HMGET', KEYS[2], unpack(ids))
local plan = {}
for i, id in ipairs(ids) do
  local o = owners[i]
  if o then
    local wid, start, score, member = string.match(o, '^(.-)|(%d+)|([^|]+)|(.*)$')
    if ARGV[2] == '' or wid == ARGV[2] then
      if not lanes[member] then return {'stale', member} end
      plan[#plan + 1] = {id, tonumber(score), member, wid}
    end
  elseif ARGV[3] == 'expired' then
    redis.call('ZREM', KEYS[1], id) -- no owner: a half-finished state change; drop the lease
  end
end
for _, p in ipairs(plan) do
  local id, score, member = p[1], p[2], p[3]
  redis.call('ZADD', lanes[member], score, id)
  index_lane_after_add(KEYS[3], member, score)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  -- an expired lease spends an attempt, unless the job was handed to an idle worker
  -- that never claimed it (owner "*"): it never ran
  if ARGV[3] == 'expired' and p[4] ~= '*' then
    redis.call('HINCRBY', KEYS[5], id, 1)
    redis.call('HSET', KEYS[6], id, ARGV[4])
  end
end
if #plan > 0 then wake(KEYS[4]) end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {'ok', #plan, head[2] or ''}
