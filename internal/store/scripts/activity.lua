-- activity.lua: add workers' tallies to a queue's per-minute activity ring (the
-- dashboard's throughput, failure rate and wait). Field "m<minute mod 60>" holds
-- "minute|succeeded|failed|retried|wait sum ms|wait n|wait max ms"; a slot last
-- written in another minute starts afresh, so the ring needs no trimming.
-- KEYS[1] activity ring
-- ARGV[1] n, then per minute 7 values: minute (unix ms / 60000), succeeded, failed,
-- retried, wait sum ms, wait n, wait max ms
-- Returns n.
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local b = 2 + i * 7
  local minute = tonumber(ARGV[b])
  local field = 'm' .. (minute % 60)
  local v = {minute, 0, 0, 0, 0, 0, 0}
  local cur = redis.call('HGET', KEYS[1], field)
  if cur then
    local p = {}
    for x in string.gmatch(cur, '[^|]+') do p[#p + 1] = tonumber(x) end
    if #p == 7 and p[1] == minute then v = p end
    -- an older minute is overwritten; a newer one (a tally flushed late) is kept
    if #p == 7 and p[1] > minute then v = nil end
  end
  if v then
    for j = 2, 6 do v[j] = v[j] + tonumber(ARGV[b + j - 1]) end
    v[7] = math.max(v[7], tonumber(ARGV[b + 6]))
    for j = 1, 7 do v[j] = string.format('%d', v[j]) end
    redis.call('HSET', KEYS[1], field, table.concat(v, '|'))
  end
end
return n
