-- requeue_failed.lua: move failed jobs back to pending with a fresh set of retries.
-- KEYS[1] failed  KEYS[2] job records  KEYS[3] lane index  KEYS[4] wake-up list
-- KEYS[5] attempts  KEYS[6] timings  KEYS[7] schedule keys  KEYS[8] keys of keyed jobs
-- KEYS[9..] lane keys
-- ARGV[1] now ms  ARGV[2] number of lanes  ARGV[3..] lane members, then the latest
-- failure time ms to take when no ids are given, the cursor (failure score and id of
-- the last job the previous call examined; '' and '' to start), then the ids.
-- With ids, those ids. Without, one page: the next REQUEUE_PAGE jobs of the failed set after
-- the cursor (by score, then id, the set's own order) that failed by that time, so
-- that a job a live worker fails again meanwhile is not taken twice; the caller calls
-- again from the cursor returned until it is ''. Paging by cursor, not from the
-- oldest, gets past jobs that stay failed: a keyed job stays failed when a newer job
-- waits under its key; else it takes its key back.
-- Returns {"ok", moved} with ids, {"ok", moved, cursor score, cursor id} without
-- ('' and '' when nothing is left), or {"stale", member...}.
local nl = tonumber(ARGV[2])
local lanes = lane_map(9, 3, nl)
local ids = {}
for i = 6 + nl, #ARGV do ids[#ids + 1] = ARGV[i] end
local paged = #ids == 0
local cur_score, cur_id = '', ''

-- Whether string a sorts after b byte by byte, as a sorted set orders the members of
-- one score (Lua's own comparison follows the server's locale).
local function sorts_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

-- The rank of the first member of set after (score, id): found directly while id is
-- still in the set at that score, else by bisecting the members of that score.
local function rank_after(set, score, id)
  local s = redis.call('ZSCORE', set, id)
  if s and tonumber(s) == score then return redis.call('ZRANK', set, id) + 1 end
  local f = string.format('%.17g', score)
  local lo = redis.call('ZCOUNT', set, '-inf', '(' .. f)
  local hi = lo + redis.call('ZCOUNT', set, f, f)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if sorts_after(redis.call('ZRANGE', set, mid, mid)[1], id) then hi = mid else lo = mid + 1 end
  end
  return lo
end

if paged then
  local by = tonumber(ARGV[3 + nl])
  local start = 0
  if ARGV[4 + nl] ~= '' then start = rank_after(KEYS[1], tonumber(ARGV[4 + nl]), ARGV[5 + nl]) end
  local page = redis.call('ZRANGE', KEYS[1], start, start + REQUEUE_PAGE - 1, 'WITHSCORES')
  local last = 0
  for i = 1, #page, 2 do
    local score = tonumber(page[i + 1])
    if score > by then break end
    ids[#ids + 1] = page[i]
    last = score
  end
  -- a full page may have more after it
  if #ids == REQUEUE_PAGE then cur_score, cur_id = string.format('%.17g', last), ids[#ids] end
  if #ids == 0 then return {'ok', 0, '', ''} end
end
local recs = redis.call('HMGET', KEYS[2], unpack(ids))
local plan = {}
local missing = {}
for i = 1, #ids do -- the lanes first: nothing changes before a stale answer
  if recs[i] then note_missing(lanes, missing, record_lane(recs[i])) end
end
if #missing > 0 then return stale_answer(missing) end
for i, id in ipairs(ids) do
  if recs[i] and redis.call('ZSCORE', KEYS[1], id) then
    local member = record_lane(recs[i])
    if not superseded(KEYS[7], KEYS[8], id) then plan[#plan + 1] = {id, member} end
  end
end
local score = job_score(tonumber(ARGV[1]))
local fair_back = {}
for _, p in ipairs(plan) do
  if fair_fields(p[2]) then
    fair_back[#fair_back + 1] = {p[2], p[1], score}
  else
    redis.call('ZADD', lanes[p[2]], score, p[1])
    index_lane_after_add(KEYS[3], p[2], score)
  end
  redis.call('ZREM', KEYS[1], p[1])
  redis.call('HDEL', KEYS[5], p[1])
  redis.call('HDEL', KEYS[6], p[1])
end
if #fair_back > 0 then fair_add(lanes, KEYS[3], fair_back, score) end
if #plan > 0 then wake(KEYS[4]) end
if paged then return {'ok', #plan, cur_score, cur_id} end
return {'ok', #plan}
