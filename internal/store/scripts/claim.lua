-- claim.lua: a worker takes ownership of a job handed to an idle worker (owner "*").
-- KEYS[1] owners
-- ARGV[1] id  ARGV[2] worker id
-- Returns 1, or 0 when the job is no longer waiting for a claim (its lease ran out and
-- it was taken back): the worker must not run it, or must stop recording it.
local o = redis.call('HGET', KEYS[1], ARGV[1])
if (not o) or string.sub(o, 1, 2) ~= '*|' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.sub(o, 2))
return 1
