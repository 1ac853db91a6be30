-- limit_config.lua: set, declare or clear one fleet-wide limit of a queue.
-- KEYS[1] limits  KEYS[2] ranking settings  KEYS[3] idle workers
-- ARGV[1] field ("t:<task>", "k", "q")  ARGV[2] setting "cap|rate per s|burst|spec|src"
-- ('' to clear)  ARGV[3] 'set' (an operator's: src 's') or 'declare' (a task's, from a
-- worker's start: src 'd', which never replaces an operator's setting)
-- The ranking settings' "lim" says the queue has limits (fetch.lua reads it with the
-- rest, so a queue without limits pays no command for them), and a queue with limits
-- hands no job off to an idle worker (a hand-off skips the fetch): the idle marks are
-- dropped as the first limit arrives.
-- Returns 1 when the setting changed, 0 when a declaration left an operator's alone.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == 'declare' and cur and string.sub(cur, -2) == '|s' then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('DEL', KEYS[3])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[2], 'lim', '1')
else
  redis.call('HDEL', KEYS[2], 'lim')
end
return 1
