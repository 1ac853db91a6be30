-- lib.lua: prepended to every script. The one home of the dequeue score.
--
-- Pending jobs live in lanes (one sorted set per priority band and task type, maybe with
-- a size bucket). Inside a lane a job's score is job_score(...), its arrival; the lane
-- index holds each lane scored by lane_offset(member) + its head's score. In fifo and
-- shadow mode the index minimum is the next lane; in active mode fetch.lua ranks the
-- highest band's lane heads by the learned predictions (see docs/ranking.md).

local BAND = 1e13 -- one strict priority band, in score units (ms): > any arrival + w*prediction

-- The time in ms that leases are measured by: Redis' own clock (given ''), so neither a
-- caller delayed on its way here nor a caller's skewed clock can shorten a lease; or
-- the caller's, when it runs on an injected clock (tests, the simulator).
local function clock_ms(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether owner entry o ("worker|start ms|lane score|lane") is the lease of worker that
-- began at start ('' : any lease of worker). Every state change of an active job names
-- the lease it ends, so a run whose lease was taken back (even when the same worker
-- fetched the job again) changes nothing.
local function holds(o, worker, start)
  if not o then return false end
  local mine = worker .. '|'
  if start ~= '' then mine = mine .. start .. '|' end
  return string.sub(o, 1, #mine) == mine
end

-- The in-lane score of a job arriving at arrival_ms.
local function job_score(arrival_ms)
  return arrival_ms
end

-- What a lane adds to its head's score in the index: its priority band (9 first).
-- A lane member is "<priority digit>:<task>".
local function lane_offset(member)
  local prio = tonumber(string.sub(member, 1, 1))
  return (9 - prio) * BAND
end

-- The task of a lane member ("<prio>:<task>" or "<prio>:<task> =<bucket>").
local function lane_task(member)
  local sp = string.find(member, ' ', 3, true)
  if sp then return string.sub(member, 3, sp - 1) end
  return string.sub(member, 3)
end

-- A prediction as read or computed: a finite number of ms, at least 0; nil (unknown) for
-- anything else. A learned mean or a prior read from Redis may be damaged ('inf', 'nan',
-- garbage: tonumber reads the first two), and an infinite prediction makes the rules
-- NaN (inf / inf), which wins every comparison it is first in.
local function known_ms(x)
  x = tonumber(x or '') -- HMGET gives false for a missing field
  if x and x >= 0 and x < math.huge then return x end -- NaN fails x >= 0
  return nil
end

-- The prediction of a lane from its task's prediction: lanes of jobs with their own
-- estimate (" =b") predict 2^(b/8) ms; lanes of a cost-hint size bucket (" ~b") predict
-- the task's mean times 2^(b/8); plain lanes the task's mean. nil when nothing is known,
-- or when the product overflows.
local function lane_prediction(member, task_pred)
  local kind, b = string.match(member, ' ([=~])(%-?%d+)$')
  if kind == '=' then return known_ms(2 ^ (tonumber(b) / 8)) end
  if kind == '~' and task_pred then return known_ms(task_pred * 2 ^ (tonumber(b) / 8)) end
  return known_ms(task_pred)
end

-- Fold (x, y) into a cost model entry "name|n|sx|sy|sxx|sxy" (decayed sums of a
-- regression of log run time on log1p(cost)), for the cost hint named name.
local MODEL_ALPHA = 0.02
local function model_add(entry, name, x, y)
  local n, sx, sy, sxx, sxy = 0, 0, 0, 0, 0
  if entry then
    local en, rest = string.match(entry, '^(.-)|(.*)$')
    if en ~= name then return entry end -- a task's model follows one cost hint
    n, sx, sy, sxx, sxy = string.match(rest, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
    n, sx, sy, sxx, sxy = tonumber(n), tonumber(sx), tonumber(sy), tonumber(sxx), tonumber(sxy)
  end
  local k = 1 - MODEL_ALPHA
  local f = '%.9g'
  return name .. '|' .. string.format(f, k * n + 1) .. '|' .. string.format(f, k * sx + x) .. '|' ..
    string.format(f, k * sy + y) .. '|' .. string.format(f, k * sxx + x * x) .. '|' .. string.format(f, k * sxy + x * y)
end

-- A queue's ranking settings: mode ('fifo', 'shadow', 'active'), rule ('fixed',
-- 'hrrn'), w (aging weight; math.huge for 'inf') and alpha (EWMA weight).
-- The fifth is the fair mode ('off', 'lru', 'share'): one more field of the same read,
-- so fairness that is off costs no command.
-- The sixth says whether the queue has fleet-wide limits ('lim', written with them).
local function rank_settings(key)
  local c = redis.call('HMGET', key, 'mode', 'rule', 'w', 'alpha', 'fair', 'lim')
  local w = c[3]
  if w == 'inf' then w = math.huge else w = tonumber(w or '16') end
  return c[1] or 'fifo', c[2] or 'hrrn', w, tonumber(c[4] or '0.1'), c[5] or 'off', c[6] == '1'
end

-- The learned mean of a stats entry "count|mean|variance" (nil unless known_ms).
local function stat_mean(entry)
  if not entry then return nil end
  return known_ms(string.match(entry, '^[^|]+|([^|]+)'))
end

-- Predicted ms for each of tasks (a list of distinct names): the learned mean (field
-- "t:<task>"), else the configured prior ("p:<task>"), else the queue-wide mean ("*");
-- nil when nothing is known; a value that is not a finite number of ms counts as nothing.
-- One HMGET. (The prefixes keep any task name clear of "*".)
local function predict(stats_key, tasks)
  local n = #tasks
  local names = {}
  for i = 1, n do
    names[i] = 't:' .. tasks[i]
    names[n + 1 + i] = 'p:' .. tasks[i]
  end
  names[n + 1] = '*'
  local st = redis.call('HMGET', stats_key, unpack(names))
  local qmean = stat_mean(st[n + 1])
  local out = {}
  for i = 1, n do
    out[tasks[i]] = stat_mean(st[i]) or known_ms(st[n + 1 + i]) or qmean
  end
  return out
end

-- lane_keys: map from lane member to its key, built from KEYS[first..] and ARGV[afirst..].
local function lane_map(kfirst, afirst, n)
  local m = {}
  for i = 0, n - 1 do
    m[ARGV[afirst + i]] = KEYS[kfirst + i]
  end
  return m
end

-- Call a multi-argument command over a list in chunks (Lua's unpack has a limit).
local function call_chunked(cmd, key, list)
  local n = #list
  local i = 1
  while i <= n do
    local j = math.min(i + UNPACK_CHUNK - 1, n)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end

-- Add jobs to the scheduled set sch (a list of due, id pairs; min_due the earliest),
-- and announce on channel a due time earlier than every one there.
local function schedule(sch, list, min_due, channel)
  if #list == 0 then return end
  local head = redis.call('ZRANGE', sch, 0, 0, 'WITHSCORES')
  call_chunked('ZADD', sch, list)
  if (not head[1]) or min_due < tonumber(head[2]) then
    redis.call('PUBLISH', channel, tostring(min_due))
  end
end

-- Fair share by key (docs/fairshare.md). In fair mode a job is not put in a lane but in
-- its priority band's fair set, by its fair key: its place "<lane>\31<key>\31<score>"
-- stands where a lane member would (the record's first line; the owner entry adds
-- "\31<charge>\31<weight>"). The band's fair set "<p>|fair" is one member of the lane
-- index, and its keys ride in the lane list like lanes: "<p>|fair" (fj: pending jobs,
-- all scored 0, ordered by bytes: "<key>\31<score %015d>\31<id>\31<lane>\31<due>"),
-- "<p>|fk" (backlogged keys by start tag), "<p>|fz" (finish tags of keys gone idle),
-- and, once per queue, "|fv" (virtual time per band, "cfg"), "|fn" (pending jobs per
-- key), "|fcfg" (weights, tags, default lateness), "|fuse" (last served, usage).
local SEP = '\31'

-- The fields of a place or of a fair owner member (lane, key, score[, charge, weight]),
-- or nil for a lane member.
-- The common shapes (a place: 3 fields; a fair set member or a share owner: 5) are
-- read by one match each, five times faster than the general split.
local FIELDS3 = '^([^\31]*)\31([^\31]*)\31([^\31]*)$'
local FIELDS5 = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$'
local function fair_fields(member)
  if not member then return nil end
  local a, b, c, d, e = string.match(member, FIELDS5)
  if a then return {a, b, c, d, e} end
  a, b, c = string.match(member, FIELDS3)
  if a then return {a, b, c} end
  if not string.find(member, SEP, 1, true) then return nil end
  local f, i = {}, 1
  while true do
    local j = string.find(member, SEP, i, true)
    if not j then
      f[#f + 1] = string.sub(member, i)
      return f
    end
    f[#f + 1] = string.sub(member, i, j - 1)
    i = j + 1
  end
end

-- The lane list member a record's first line or an owner member needs: itself, or for
-- a place its band's fair set.
local function lane_ref(member)
  if member and string.find(member, SEP, 1, true) then return string.sub(member, 1, 1) .. '|fair' end
  return member
end

-- A finite number read from Redis, else nil.
local function finite(x)
  x = tonumber(x or '')
  if x and x == x and x > -math.huge and x < math.huge then return x end
  return nil
end

-- A key's weight as stored: finite in [0.01, 100], else (damaged, or unset) 1.
local function known_weight(x)
  x = tonumber(x or '')
  if x and x >= 0.01 and x <= 100 then return x end -- NaN fails
  return 1
end

local function fmt17(x) return string.format('%.17g', x) end

-- Count d more (or fewer) pending jobs of key; a key at 0 leaves the count.
local function fair_count(lanes, key, d)
  local n = tonumber(redis.call('ZINCRBY', lanes['|fn'], d, key))
  if n <= 0 then redis.call('ZREM', lanes['|fn'], key) end
end

-- Make key backlogged in band p unless it is: its start tag is max(its finish tag, V),
-- so a key that went idle banks no credit, and a new key goes ahead of those served.
local function fair_backlog(lanes, p, key)
  local fk = lanes[p .. '|fk']
  if redis.call('ZSCORE', fk, key) then return end
  local fz = lanes[p .. '|fz']
  local s = finite(redis.call('HGET', lanes['|fv'], 'v:' .. p)) or 0
  local f = finite(redis.call('ZSCORE', fz, key))
  if f then
    if f > s then s = f end
    redis.call('ZREM', fz, key)
  end
  redis.call('ZADD', fk, fmt17(s), key)
end

-- Put fair-placed jobs into their bands' fair sets: entries are {place, id, due ms}; at
-- is now (ms), the index score of a band that had no fair work. Returns true when a
-- band's fair set was empty before.
local function fair_add(lanes, idx, entries, at)
  local bands, order = {}, {}
  for _, e in ipairs(entries) do
    local f = fair_fields(e[1])
    local p = string.sub(f[1], 1, 1)
    local b = bands[p]
    if not b then
      b = {z = {}, keys = {}, list = {}}
      bands[p] = b
      order[#order + 1] = p
    end
    b.z[#b.z + 1] = 0
    b.z[#b.z + 1] = f[2] .. SEP .. f[3] .. SEP .. e[2] .. SEP .. f[1] .. SEP .. string.format('%d', e[3])
    if not b.keys[f[2]] then
      b.keys[f[2]] = 0
      b.list[#b.list + 1] = f[2]
    end
    b.keys[f[2]] = b.keys[f[2]] + 1
  end
  local fresh = false
  for _, p in ipairs(order) do
    local b = bands[p]
    call_chunked('ZADD', lanes[p .. '|fair'], b.z)
    for _, key in ipairs(b.list) do
      redis.call('ZINCRBY', lanes['|fn'], b.keys[key], key)
      fair_backlog(lanes, p, key)
    end
    local ref = p .. '|fair'
    if not redis.call('ZSCORE', idx, ref) then
      -- x.5: never tied with a lane's integer score
      redis.call('ZADD', idx, fmt17(lane_offset(ref) + at + 0.5), ref)
      fresh = true
    end
  end
  return fresh
end

-- The lex range of key's jobs in a fair set (no key holds a byte below ' ', so the
-- range holds no other key's).
local function key_range(key)
  return '[' .. key .. SEP, '(' .. key .. ' '
end

-- After jobs left band p's fair set outside a fetch: each of keys that has no job left
-- there stops being backlogged (its tag kept as a finish tag); a band left with no fair
-- work leaves the lane index and forgets its tags. Returns true when the band emptied.
local function fair_settle(lanes, idx, p, keys)
  local fj, fk, fz = lanes[p .. '|fair'], lanes[p .. '|fk'], lanes[p .. '|fz']
  if redis.call('ZCARD', fj) == 0 then
    redis.call('ZREM', idx, p .. '|fair')
    redis.call('DEL', fk, fz)
    redis.call('HDEL', lanes['|fv'], 'v:' .. p, 'c:' .. p)
    return true
  end
  for _, key in ipairs(keys) do
    local lo, hi = key_range(key)
    if not redis.call('ZRANGE', fj, lo, hi, 'BYLEX', 'LIMIT', 0, 1)[1] then
      local s = redis.call('ZSCORE', fk, key)
      if s then
        redis.call('ZREM', fk, key)
        redis.call('ZADD', fz, s, key)
        -- a visit to it is over (fetch.lua, the quantum): back, it starts a new one
        local c = redis.call('HGET', lanes['|fv'], 'c:' .. p)
        if c and string.match(c, '\31(.*)$') == key then redis.call('HDEL', lanes['|fv'], 'c:' .. p) end
      end
    end
  end
  return false
end

-- Take pending job id of place out of its band's fair set; true when it was there.
local function fair_remove(lanes, idx, place, id)
  local f = fair_fields(place)
  local p = string.sub(f[1], 1, 1)
  local prefix = f[2] .. SEP .. f[3] .. SEP .. id
  local fj = lanes[p .. '|fair']
  local m = redis.call('ZRANGE', fj, '[' .. prefix .. SEP, '(' .. prefix .. ' ', 'BYLEX', 'LIMIT', 0, 1)
  if not m[1] then return false end
  redis.call('ZREM', fj, m[1])
  fair_count(lanes, f[2], -1)
  fair_settle(lanes, idx, p, {f[2]})
  return true
end

-- Correct key's tag in band p by d (the charge's error, in tag units): while it is
-- backlogged, else while its finish tag is kept; an overrun of a tag already trimmed
-- is kept from V on, so the debt is not forgotten.
local function fair_correct(lanes, p, key, d)
  if not (d == d and d > -math.huge and d < math.huge) or d == 0 then return end
  local s = fmt17(d)
  local fk, fz = lanes[p .. '|fk'], lanes[p .. '|fz']
  if redis.call('ZADD', fk, 'XX', 'INCR', s, key) then return end
  if redis.call('ZADD', fz, 'XX', 'INCR', s, key) then return end
  if d > 0 then
    local v = finite(redis.call('HGET', lanes['|fv'], 'v:' .. p))
    if v then redis.call('ZADD', fz, fmt17(v + d), key) end
  end
end

-- Whether key a with tag sa comes before key b with tag sb in a key set: by tag, then
-- by bytes (Lua's own string comparison follows the server's locale).
local function key_before(sa, a, sb, b)
  if sa ~= sb then return sa < sb end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Collect member into missing (a set and a list) when the caller did not pass its lane:
-- a script names every missing lane it meets in one "stale" answer, before changing
-- anything, so that the caller learns them in one more call.
local function note_missing(lanes, missing, member)
  member = lane_ref(member)
  if member == nil or lanes[member] or missing[member] then return end
  missing[member] = true
  missing[#missing + 1] = member
end

-- The "stale" answer naming the missing lanes, or nil when none is missing.
local function stale_answer(missing)
  if #missing == 0 then return nil end
  local out = {'stale'}
  for _, m in ipairs(missing) do out[#out + 1] = m end
  return out
end

-- Put a lane's index entry right after jobs with in-lane score `score` entered it.
-- Returns true when the lane was not in the index (it was empty).
-- cur is the lane's index score when the caller has read it already.
local function index_lane_after_add(idx, member, score, cur)
  local key = lane_offset(member) + score
  if cur == nil then cur = redis.call('ZSCORE', idx, member) end
  if (not cur) or key < tonumber(cur) then
    redis.call('ZADD', idx, key, member)
  end
  return not cur
end

-- Rescore a lane's index entry from its current head (or drop it when empty). Returns
-- true when the lane is empty.
local function rescore_lane(idx, lane, member)
  local head = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
  if head[1] then
    redis.call('ZADD', idx, lane_offset(member) + tonumber(head[2]), member)
    return false
  end
  redis.call('ZREM', idx, member)
  return true
end

-- Leave one token on the wake-up list so a blocked worker wakes (never more than one).
local function wake(list)
  if redis.call('LLEN', list) == 0 then
    redis.call('RPUSH', list, '1')
  end
end

-- The lane member a job record starts with (up to the first newline).
local function record_lane(rec)
  local nl = string.find(rec, '\n', 1, true)
  if not nl then return nil end
  return string.sub(rec, 1, nl - 1)
end


-- Schedule keys: skey maps a key to the job waiting under it, jkey maps a keyed job
-- back to its key (only keyed jobs have an entry).

-- Release job id's key, if it still names the job, and drop the job's jkey entry
-- (kept with keep_jkey: a failed job remembers its key, so a requeue can take it back).
local function release_key(skey, jkey, id, keep_jkey)
  local k = redis.call('HGET', jkey, id)
  if k then
    if redis.call('HGET', skey, k) == id then redis.call('HDEL', skey, k) end
    if not keep_jkey then redis.call('HDEL', jkey, id) end
  end
end

-- Whether keyed job id, about to wait again (retry, hand-back, reclaim, requeue), has
-- been superseded: a newer job was enqueued under its key meanwhile. A free key is
-- taken back.
local function superseded(skey, jkey, id)
  local k = redis.call('HGET', jkey, id)
  if not k then return false end
  local cur = redis.call('HGET', skey, k)
  if cur == id then return false end
  if not cur then
    redis.call('HSET', skey, k, id)
    return false
  end
  return true
end

-- Take the ended jobs past their keeping out of an ended set (succeeded, failed,
-- canceled): up to limit of those scored at or before older_than, else the oldest
-- beyond cap. Returns their ids, for forget.
local function drop_expired(set, older_than, cap, limit)
  local old = redis.call('ZRANGE', set, '-inf', older_than, 'BYSCORE', 'LIMIT', 0, limit)
  if #old == 0 then
    local excess = redis.call('ZCARD', set) - cap
    if excess > 0 then old = redis.call('ZRANGE', set, 0, math.min(excess, limit) - 1) end
  end
  if #old > 0 then redis.call('ZREM', set, unpack(old)) end
  return old
end

-- Forget everything stored about jobs `ids` (their record and side hashes).
local function forget(ids, jk, ak, ek, sk, rk, fk)
  if #ids == 0 then return end
  call_chunked('HDEL', jk, ids)
  call_chunked('HDEL', ak, ids)
  call_chunked('HDEL', ek, ids)
  call_chunked('HDEL', sk, ids)
  call_chunked('HDEL', rk, ids)
  call_chunked('HDEL', fk, ids)
end



-- Fleet-wide limits (docs/limits.md). A limit applies to a group of one queue's jobs:
-- "t:<task>", "k:<fair key>" (every key alike: one setting, "k") or "q" (the queue).
-- The queue's limits hash holds a group's setting as "cap|rate per s|burst|spec" (cap
-- or rate '' for none); its state hash "r:<group>", the jobs counted running, and
-- "b:<group>", its token bucket "tokens|at ms" in Redis' time. A job taken under limits
-- ends its owner entry with MARK and the groups it was counted in ('t', 'k', 'q'):
-- whichever script ends that lease frees exactly those, once (it also removes the
-- owner entry), so a setting changed meanwhile cannot leak or double a slot.
local MARK = '\30'

-- An owner entry without its limit mark, and the mark's flags ('' for none).
local function owner_split(o)
  local i = string.find(o, MARK, 1, true)
  if not i then return o, '' end
  return string.sub(o, 1, i - 1), string.sub(o, i + 1)
end

-- The field of a group's setting: a key group's is the one of every key, "k".
local function limit_field(g)
  if string.sub(g, 1, 2) == 'k:' then return 'k' end
  return g
end

-- A group's setting as stored, read: {cap, rate (per ms), burst}, or nil for none or
-- damaged (a cap below 1, a rate that is not a positive finite number).
local function limit_setting(v)
  if not v then return nil end
  local cap, rate, burst = string.match(v, '^([^|]*)|([^|]*)|([^|]*)')
  if not cap then return nil end
  local c = {cap = tonumber(cap), rate = tonumber(rate), burst = tonumber(burst)}
  if c.cap then c.cap = math.floor(c.cap) end -- whole jobs (a damaged 2.5 would reach LIMIT)
  if c.cap and not (c.cap >= 1) then c.cap = nil end
  if c.rate and not (c.rate > 0 and c.rate < math.huge) then c.rate = nil end
  if c.rate then
    c.rate = c.rate / 1000
    if not (c.burst and c.burst >= 1 and c.burst < math.huge) then c.burst = 1 end
  end
  if not c.cap and not c.rate then return nil end
  return c
end

-- The groups an owner entry's flags name: its task's, its fair key's, the queue's.
local function owner_groups(body, flags)
  local out = {}
  if flags == '' then return out end
  local member = string.match(body, '^.-|%d+|[^|]+|(.*)$') or ''
  local f = fair_fields(member)
  local lane = member
  if f then lane = f[1] end
  for i = 1, #flags do
    local c = string.sub(flags, i, i)
    if c == 't' then out[#out + 1] = 't:' .. lane_task(lane)
    elseif c == 'k' and f then out[#out + 1] = 'k:' .. f[2]
    elseif c == 'q' then out[#out + 1] = 'q' end
  end
  return out
end

-- Count the groups of an ended lease's owner entry o into rel (group -> n, plus the
-- list rel.order, and rel.seen: the groups of each member and mark met, as one batch's
-- jobs mostly share them), for limits_release.
local function limits_note(rel, o)
  if not string.find(o, MARK, 1, true) then return end
  -- past "worker|start|score|" (plain finds: this runs for every job acknowledged)
  local a = string.find(o, '|', 1, true)
  local b = a and string.find(o, '|', a + 1, true)
  local c = b and string.find(o, '|', b + 1, true)
  if not c then return end
  local tail = string.sub(o, c + 1) -- the member, MARK and the flags
  rel.seen = rel.seen or {}
  local gs = rel.seen[tail]
  if not gs then
    local body, flags = owner_split(o)
    gs = owner_groups(body, flags)
    rel.seen[tail] = gs
  end
  for _, g in ipairs(gs) do
    if not rel[g] then
      rel[g] = 0
      rel.order[#rel.order + 1] = g
    end
    rel[g] = rel[g] + 1
  end
end

-- Free the slots counted in rel (limits_note), and wake a waiting worker when a group
-- that was at its cap has room again (a count at 0 leaves the state hash).
local function limits_release(cfg_key, st_key, wake_key, rel)
  local order = rel.order
  if #order == 0 then return end
  local cfields = {}
  for i, g in ipairs(order) do cfields[i] = limit_field(g) end
  local cfg = redis.call('HMGET', cfg_key, unpack(cfields))
  local room = false
  for i, g in ipairs(order) do
    local after = redis.call('HINCRBY', st_key, 'r:' .. g, -rel[g])
    if after <= 0 then redis.call('HDEL', st_key, 'r:' .. g) end
    local c = limit_setting(cfg[i] or nil)
    if c and c.cap and after + rel[g] >= c.cap and after < c.cap then room = true end
  end
  if room then wake(wake_key) end
end
