-- limit_recount.lua: set every limit group's running count to what the owner entries
-- of the leases held now say (their limit marks): the repair for counts that lost
-- owner entries left behind. O(running jobs), in one step. Token buckets that are full
-- again (or whose limit is gone) leave the state too: a full bucket and none are the
-- same, and per-key buckets would otherwise grow with every key ever served.
-- KEYS[1] owners  KEYS[2] limits' state  KEYS[3] limits
-- ARGV[1] now ms ('': Redis' clock)
local rel = {order = {}}
for _, o in ipairs(redis.call('HVALS', KEYS[1])) do limits_note(rel, o) end
local cur = redis.call('HGETALL', KEYS[2])
local del = {}
local now = clock_ms(ARGV[1])
local cfg = {}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do cfg[all[i]] = limit_setting(all[i + 1]) end
for i = 1, #cur, 2 do
  local g = string.match(cur[i], '^r:(.*)$')
  if g and not rel[g] then del[#del + 1] = cur[i] end
  local b = string.match(cur[i], '^b:(.*)$')
  if b then
    local c = cfg[limit_field(b)]
    local tk, at = string.match(cur[i + 1], '^([^|]+)|(.+)$')
    tk, at = finite(tk), finite(at)
    if not (c and c.rate and tk and at) or (at <= now and tk + (now - at) * c.rate >= c.burst) then
      del[#del + 1] = cur[i]
    end
  end
end
if #del > 0 then call_chunked('HDEL', KEYS[2], del) end
local set = {}
for _, g in ipairs(rel.order) do
  set[#set + 1] = 'r:' .. g
  set[#set + 1] = string.format('%d', rel[g])
end
if #set > 0 then call_chunked('HSET', KEYS[2], set) end
return #rel.order
