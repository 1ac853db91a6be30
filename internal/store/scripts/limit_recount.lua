-- limit_recount.lua: set every limit group's running count to what the owner entries
-- of the leases held now say (their limit marks): the repair for counts that lost
-- owner entries left behind. O(running jobs), in one step.
-- KEYS[1] owners  KEYS[2] limits' state
local rel = {order = {}}
for _, o in ipairs(redis.call('HVALS', KEYS[1])) do limits_note(rel, o) end
local cur = redis.call('HGETALL', KEYS[2])
local del = {}
for i = 1, #cur, 2 do
  local g = string.match(cur[i], '^r:(.*)$')
  if g and not rel[g] then del[#del + 1] = cur[i] end
end
if #del > 0 then call_chunked('HDEL', KEYS[2], del) end
local set = {}
for _, g in ipairs(rel.order) do
  set[#set + 1] = 'r:' .. g
  set[#set + 1] = string.format('%d', rel[g])
end
if #set > 0 then call_chunked('HSET', KEYS[2], set) end
return #rel.order
