-- claim.lua: a worker takes ownership of a job handed to an idle worker (owner "*")
-- and starts a full lease of its own: a hand-off claimed late must not keep what was
-- left of the lease it was handed with.
-- KEYS[1] owners  KEYS[2] active
-- ARGV[1] id  ARGV[2] worker id  ARGV[3] the hand-off's start ms (from its ready entry)
-- ARGV[4] lease ms  ARGV[5] now ms ('': Redis' clock)
-- Returns 1, or 0 when that hand-off no longer waits for a claim (its lease ran out and
-- it was taken back, maybe fetched again since): the worker must not run it, or must
-- stop recording it.
local o = redis.call('HGET', KEYS[1], ARGV[1])
if not holds(o, '*', ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.sub(o, 2))
redis.call('ZADD', KEYS[2], 'XX', clock_ms(ARGV[5]) + tonumber(ARGV[4]), ARGV[1])
return 1
