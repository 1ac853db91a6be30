-- fetch.lua: take up to n jobs in dequeue order and lease them to a worker.
-- KEYS[1] lane index  KEYS[2] active set  KEYS[3] owners  KEYS[4] job records
-- KEYS[5] attempts    KEYS[6] paused flag KEYS[7] wake-up list  KEYS[8..] lane keys
-- ARGV[1] now ms  ARGV[2] n  ARGV[3] lease deadline ms  ARGV[4] worker id
-- ARGV[5] number of lanes  ARGV[6..] lane members (same order as KEYS[8..])
-- Returns {"ok", id, record, attempts, ...}, {"paused"}, or {"stale", member} when the
-- caller's lane list lacks a lane (it refreshes the list and calls again).
if redis.call('EXISTS', KEYS[6]) == 1 then return {'paused'} end
local now = ARGV[1]
local want = math.min(tonumber(ARGV[2]), 1000) -- unpack() below takes ~8000 values at most
local lanes = lane_map(8, 6, tonumber(ARGV[5]))
local ids, own = {}, {}
local act = {}
local got = 0
while got < want do
  local top = redis.call('ZRANGE', KEYS[1], 0, 1, 'WITHSCORES')
  if not top[1] then break end
  local member = top[1]
  local lane = lanes[member]
  if not lane then
    if got == 0 then return {'stale', member} end
    break -- keep what was taken; the caller learns of the lane on its next fetch
  end
  local popped
  if top[3] then
    -- take this lane's jobs only while they stay ahead of the next lane's head
    local bound = tonumber(top[4]) - lane_offset(member)
    popped = redis.call('ZRANGE', lane, '-inf', bound, 'BYSCORE', 'LIMIT', 0, want - got, 'WITHSCORES')
    if not popped[1] then
      popped = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES') -- ties: take the head anyway
    end
  else
    popped = redis.call('ZPOPMIN', lane, want - got)
  end
  local k = #popped / 2
  if k > 0 then
    if top[3] then redis.call('ZREMRANGEBYRANK', lane, 0, k - 1) end
    for i = 1, #popped, 2 do
      local id = popped[i]
      ids[#ids + 1] = id
      own[#own + 1] = id
      own[#own + 1] = ARGV[4] .. '|' .. now .. '|' .. popped[i + 1] .. '|' .. member
      act[#act + 1] = ARGV[3]
      act[#act + 1] = id
    end
    got = got + k
  end
  rescore_lane(KEYS[1], lane, member)
end
if got == 0 then return {'ok'} end
redis.call('ZADD', KEYS[2], unpack(act))
redis.call('HSET', KEYS[3], unpack(own))
local recs = redis.call('HMGET', KEYS[4], unpack(ids))
local atts = redis.call('HMGET', KEYS[5], unpack(ids))
-- a full batch may have left work: pass the token on so another idle worker wakes too
if got == want and redis.call('ZCARD', KEYS[1]) > 0 then wake(KEYS[7]) end
local out = {'ok'}
for i = 1, got do
  out[#out + 1] = ids[i]
  out[#out + 1] = recs[i] or ''
  out[#out + 1] = atts[i] or '0'
end
return out
