-- fair_config.lua: set one fair key's configuration (validated by the caller):
-- its weight ('w'; '' for the default, 1), its default lateness ('x', ms; '' for none)
-- or its tags ('g': "name=value" entries joined by \31; '' for none, indexed in the
-- tag set). Then "cfg" in the virtual-time hash counts the configured keys, so that a
-- fetch reads weights only when some key has one.
-- KEYS[1] fair configuration  KEYS[2] tag index  KEYS[3] fair virtual times
-- ARGV[1] 'w', 'x' or 'g'  ARGV[2] the fair key  ARGV[3] the value
-- Returns the number of configured fields.
local field = ARGV[1] .. ':' .. ARGV[2]
if ARGV[1] == 'g' then
  local old = redis.call('HGET', KEYS[1], field)
  if old then
    local drop = {}
    for t in string.gmatch(old, '[^\31]+') do drop[#drop + 1] = t .. '\31' .. ARGV[2] end
    if #drop > 0 then redis.call('ZREM', KEYS[2], unpack(drop)) end
  end
  if ARGV[3] ~= '' then
    local add = {}
    for t in string.gmatch(ARGV[3], '[^\31]+') do
      add[#add + 1] = 0
      add[#add + 1] = t .. '\31' .. ARGV[2]
    end
    redis.call('ZADD', KEYS[2], unpack(add))
  end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], field)
else
  redis.call('HSET', KEYS[1], field, ARGV[3])
end
local n = redis.call('HLEN', KEYS[1])
redis.call('HSET', KEYS[3], 'cfg', n)
return n
