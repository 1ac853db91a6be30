-- renew.lua: extend the leases a worker still holds, and report those it lost and
-- those asked to stop.
-- KEYS[1] active  KEYS[2] owners  KEYS[3] stop requests
-- ARGV[1] now ms ('': Redis' clock)  ARGV[2] lease ms  ARGV[3] worker id
-- then pairs: job id, lease start ms (the lease's own, so a run whose lease was taken
-- back is reported lost even when the same worker fetched the job again)
-- Returns {lost, stop}: the pair numbers (from 1) of the leases lost and of those whose
-- job was asked to stop.
local deadline = clock_ms(ARGV[1]) + tonumber(ARGV[2])
local ids = {}
for i = 4, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local owners, stops = {}, {}
for i = 1, #ids, UNPACK_CHUNK do
  local part = {unpack(ids, i, math.min(i + UNPACK_CHUNK - 1, #ids))}
  for j, v in ipairs(redis.call('HMGET', KEYS[2], unpack(part))) do owners[i + j - 1] = v end
  for j, v in ipairs(redis.call('HMGET', KEYS[3], unpack(part))) do stops[i + j - 1] = v end
end
local lost, stop, zs = {}, {}, {}
for i, id in ipairs(ids) do
  if holds(owners[i], ARGV[3], ARGV[3 + 2 * i]) then
    zs[#zs + 1] = deadline
    zs[#zs + 1] = id
    if stops[i] then stop[#stop + 1] = i end
  else
    lost[#lost + 1] = i
  end
end
for i = 1, #zs, UNPACK_CHUNK do redis.call('ZADD', KEYS[1], 'XX', unpack(zs, i, math.min(i + UNPACK_CHUNK - 1, #zs))) end
return {lost, stop}
