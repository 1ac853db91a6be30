-- enqueue_fair.lua: store jobs of a queue in fair mode: each goes to its band's fair
-- set under its fair key (lib.lua, fair_add), or to the scheduled set when it has a due
-- time. A single job into an empty, unpaused queue with an idle worker is handed to that
-- worker as enqueue_one.lua does, uncharged: an empty queue has no one to be fair to.
-- KEYS[1] job records  KEYS[2] lane index  KEYS[3] scheduled  KEYS[4] wake-up list
-- KEYS[5] idle workers KEYS[6] ready list  KEYS[7] active     KEYS[8] owners
-- KEYS[9] paused flag  KEYS[10] limits (with any, no hand-off: see enqueue_one.lua)
-- KEYS[11..] the fair keys, as lanes (see fair_add)
-- ARGV[1] now ms  ARGV[2] number of jobs  ARGV[3] the clock of leases ('': Redis' own)
-- ARGV[4] schedule channel  ARGV[5] number of lane entries  ARGV[6..] their members
-- then per job, 4 values: id, place "<lane>\31<key>\31<score>", record, due ms (0: now)
-- Returns the number of jobs stored, negative when the one job was handed off.
local now, n, nl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local lanes = lane_map(11, 6, nl)
local first = 5 + nl
local hset, sched, entries = {}, {}, {}
local min_due = nil
for i = 0, n - 1 do
  local b = first + i * 4
  local id, place, rec, due = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4])
  hset[#hset + 1] = id
  hset[#hset + 1] = place .. '\n' .. rec
  if due > now then
    sched[#sched + 1] = due
    sched[#sched + 1] = id
    if (not min_due) or due < min_due then min_due = due end
  else
    entries[#entries + 1] = {place, id, now}
  end
end
call_chunked('HSET', KEYS[1], hset)
if #entries > 0 then
  local was_empty = redis.call('ZCARD', KEYS[2]) == 0
  if n == 1 and was_empty and redis.call('EXISTS', KEYS[9], KEYS[10]) == 0 then
    local idle = redis.call('ZRANGE', KEYS[5], '+inf', now, 'BYSCORE', 'REV', 'LIMIT', 0, 1)
    if idle[1] then
      local e = entries[1]
      local lease = string.match(idle[1], '|(%d+)$')
      local start = clock_ms(ARGV[3])
      local starts = string.format('%d', start)
      local dues = string.format('%d', now)
      redis.call('ZREM', KEYS[5], idle[1])
      redis.call('ZADD', KEYS[7], start + tonumber(lease), e[2])
      redis.call('HSET', KEYS[8], e[2], '*|' .. starts .. '|' .. dues .. '|' .. e[1])
      redis.call('RPUSH', KEYS[6], e[2] .. '|' .. starts .. '|' .. lease .. '|' .. dues .. '|' .. hset[2])
      return -1
    end
  end
  fair_add(lanes, KEYS[2], entries, now)
  if was_empty then
    wake(KEYS[4])
  elseif redis.call('EXISTS', KEYS[10]) == 1 then
    wake(KEYS[4]) -- with limits, the keys already there may all be held back
  end
end
schedule(KEYS[3], sched, min_due, ARGV[4])
return n
