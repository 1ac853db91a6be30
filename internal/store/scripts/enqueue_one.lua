-- enqueue_one.lua: store one job that may run at once (the common case, kept lean:
-- no tables, no loops). Into an empty, unpaused queue with an idle worker, the job is
-- handed straight to that worker: leased (owner "*", claimed by whichever idle worker
-- pops it) and pushed with its record onto the ready list the worker blocks on, which
-- saves the worker a fetch round trip after waking.
-- KEYS[1] job records  KEYS[2] lane index  KEYS[3] wake-up list  KEYS[4] idle workers
-- KEYS[5] ready list   KEYS[6] active      KEYS[7] owners        KEYS[8] paused flag
-- KEYS[9] the job's lane  KEYS[10] limits (a queue with limits hands nothing off: a
-- hand-off skips the fetch, where limits are enforced)
-- ARGV[1] now ms  ARGV[2] id  ARGV[3] lane member  ARGV[4] record
-- ARGV[5] the clock of leases ('': Redis' own; see clock_ms)
-- A hand-off's ready entry is "id|lease start ms|lease ms|lane score|record": the lease
-- it runs under until claimed, so whichever worker pops it judges its age by that lease.
-- Returns 1 when the job went to its lane, 2 when it was handed off.
local now, id, member = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local rec = member .. '\n' .. ARGV[4]
redis.call('HSET', KEYS[1], id, rec)
local score = job_score(now)
local cur = redis.call('ZSCORE', KEYS[2], member)
if cur then
  -- the lane holds work already: no wake-up is needed (a token is out, or a worker busy)
  redis.call('ZADD', KEYS[9], score, id)
  index_lane_after_add(KEYS[2], member, score, cur)
  return 1
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  local held = redis.call('EXISTS', KEYS[8], KEYS[10]) -- paused, or limits (no hand-off)
  -- the most recently idle worker: the least likely to have left meanwhile
  local idle = {}
  if held == 0 then idle = redis.call('ZRANGE', KEYS[4], '+inf', now, 'BYSCORE', 'REV', 'LIMIT', 0, 1) end
  if idle[1] then
    local lease = string.match(idle[1], '|(%d+)$')
    local start = clock_ms(ARGV[5])
    local starts = string.format('%d', start)
    redis.call('ZREM', KEYS[4], idle[1])
    redis.call('ZADD', KEYS[6], start + tonumber(lease), id)
    redis.call('HSET', KEYS[7], id, '*|' .. starts .. '|' .. score .. '|' .. member)
    redis.call('RPUSH', KEYS[5], id .. '|' .. starts .. '|' .. lease .. '|' .. score .. '|' .. rec)
    return 2
  end
  redis.call('ZADD', KEYS[9], score, id)
  index_lane_after_add(KEYS[2], member, score, false)
  -- the queue went from empty to non-empty (a paused one wakes nobody)
  if held == 0 or redis.call('EXISTS', KEYS[8]) == 0 then wake(KEYS[3]) end
  return 1
end
redis.call('ZADD', KEYS[9], score, id)
index_lane_after_add(KEYS[2], member, score, false)
-- a new lane in a queue with work: with limits that work may all be held back while
-- every worker waits, so the new lane wakes one
if redis.call('EXISTS', KEYS[10]) == 1 then wake(KEYS[3]) end
return 1
