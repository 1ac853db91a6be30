-- enqueue_keyed.lua: store one job under a schedule key. At most one job per key waits
-- (scheduled or pending): the one waiting is replaced, or kept (ARGV[7] = '1').
-- KEYS[1] job records  KEYS[2] lane index  KEYS[3] scheduled  KEYS[4] wake-up list
-- KEYS[5] schedule keys  KEYS[6] keys of keyed jobs (id -> key)  KEYS[7] attempts
-- KEYS[8] errors  KEYS[9] stacks  KEYS[10] results  KEYS[11] timings
-- KEYS[12..] lane keys (the new job's among them)
-- ARGV[1] now ms  ARGV[2] id  ARGV[3] lane member  ARGV[4] record  ARGV[5] due ms (0: now)
-- ARGV[6] key  ARGV[7] '1' to keep a waiting job  ARGV[8] schedule channel
-- ARGV[9] done channel  ARGV[10] number of lanes  ARGV[11..] lane members
-- Returns {"ok", id}, {"kept", waiting id}, or {"stale", member} when the lane list
-- lacks a lane (the caller refreshes it and calls again).
local lanes = lane_map(12, 11, tonumber(ARGV[10]))
local new_lane = lanes[lane_ref(ARGV[3])]
if not new_lane then return {'stale', lane_ref(ARGV[3])} end
local cur = redis.call('HGET', KEYS[5], ARGV[6])
if cur then
  local waiting = redis.call('ZSCORE', KEYS[3], cur)
  local member = record_lane(redis.call('HGET', KEYS[1], cur) or '')
  local lane = nil
  local placed = fair_fields(member)
  if member then
    lane = lanes[lane_ref(member)]
    if not lane then return {'stale', lane_ref(member)} end
  end
  if not waiting and lane then
    if placed then
      -- pending in a fair set: found (and, unless kept, removed) by its member
      if ARGV[7] ~= '1' then
        waiting = fair_remove(lanes, KEYS[2], member, cur)
      else
        local f = placed
        local prefix = f[2] .. SEP .. f[3] .. SEP .. cur
        waiting = redis.call('ZRANGE', lane, '[' .. prefix .. SEP, '(' .. prefix .. ' ', 'BYLEX', 'LIMIT', 0, 1)[1] ~= nil
      end
    else
      waiting = redis.call('ZSCORE', lane, cur)
    end
  end
  if waiting then
    if ARGV[7] == '1' then return {'kept', cur} end
    if (not placed) and redis.call('ZREM', KEYS[3], cur) == 0 then
      redis.call('ZREM', lane, cur)
      rescore_lane(KEYS[2], lane, member)
    elseif placed then
      redis.call('ZREM', KEYS[3], cur)
    end
    forget({cur}, KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
    redis.call('HDEL', KEYS[6], cur)
    redis.call('PUBLISH', ARGV[9], 'c ' .. cur) -- its waiters learn it was replaced
  end
  -- a job under the key that no longer waits (running, say) keeps running; if it comes
  -- back to wait (a retry), it finds itself superseded and goes (see lib.lua)
end
local now, due = tonumber(ARGV[1]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '\n' .. ARGV[4])
if due > now then
  local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], due, ARGV[2])
  if (not head[1]) or due < tonumber(head[2]) then redis.call('PUBLISH', ARGV[8], ARGV[5]) end
else
  local score = job_score(now)
  local was_empty = redis.call('ZCARD', KEYS[2]) == 0
  if fair_fields(ARGV[3]) then
    fair_add(lanes, KEYS[2], {{ARGV[3], ARGV[2], score}}, now)
  else
    redis.call('ZADD', new_lane, score, ARGV[2])
    index_lane_after_add(KEYS[2], ARGV[3], score)
  end
  if was_empty then wake(KEYS[4]) end
end
redis.call('HSET', KEYS[5], ARGV[6], ARGV[2])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[6])
return {'ok', ARGV[2]}
