-- enqueue.lua: store a batch of jobs; put each in its lane, or in the scheduled set
-- when it has a due time.
-- KEYS[1] job records (hash)   KEYS[2] lane index   KEYS[3] scheduled set
-- KEYS[4] wake-up list         KEYS[5] limits  KEYS[6..] lane keys
-- ARGV[1] now ms  ARGV[2] number of jobs  ARGV[3] number of lanes  ARGV[4] schedule channel
-- ARGV[5 .. 4+nlanes] lane members (same order as KEYS[5..])
-- then per job, 4 values: id, lane number (1-based into the lane list), record, due ms (0: now)
-- Returns the number of jobs stored.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local nl = tonumber(ARGV[3])
local members = {}
for i = 1, nl do members[i] = ARGV[4 + i] end

local hset = {}
local lanes = {}      -- lane number -> {score, id, ...}
local sched = {}
local first = 4 + nl
local min_due = nil
for i = 0, n - 1 do
  local b = first + i * 4
  local id, ln, rec, due = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], tonumber(ARGV[b + 4])
  hset[#hset + 1] = id
  hset[#hset + 1] = members[ln] .. '\n' .. rec
  if due > now then
    sched[#sched + 1] = due
    sched[#sched + 1] = id
    if (not min_due) or due < min_due then min_due = due end
  else
    local l = lanes[ln]
    if not l then l = {}; lanes[ln] = l end
    l[#l + 1] = job_score(now)
    l[#l + 1] = id
  end
end
call_chunked('HSET', KEYS[1], hset)

-- Wake-ups: a token is pushed only when the queue goes from empty to non-empty (a fetch
-- that leaves work behind passes its token on), so a busy queue's enqueue costs no
-- wake-up command. (Single jobs, and hand-offs to idle workers, go through
-- enqueue_one.lua.)
local immediate = false
local was_empty = nil
local opened = false -- a lane that was empty got jobs
for ln, l in pairs(lanes) do
  immediate = true
  local member = members[ln]
  local min = l[1]
  for j = 3, #l, 2 do if l[j] < min then min = l[j] end end
  local cur = nil
  if was_empty == nil then
    -- a lane already indexed means the queue holds work: nothing more to check
    cur = redis.call('ZSCORE', KEYS[2], member)
    was_empty = (not cur) and redis.call('ZCARD', KEYS[2]) == 0
  end
  call_chunked('ZADD', KEYS[5 + ln], l)
  if index_lane_after_add(KEYS[2], member, min, cur) then opened = true end
end
if was_empty then
  wake(KEYS[4])
elseif opened and redis.call('EXISTS', KEYS[5]) == 1 then
  wake(KEYS[4]) -- with limits, the work already there may all be held back
end

schedule(KEYS[3], sched, min_due, ARGV[4])
return n
