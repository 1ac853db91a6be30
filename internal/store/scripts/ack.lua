-- ack.lua: record a batch of succeeded jobs held by one worker.
-- KEYS[1] active  KEYS[2] owners  KEYS[3] job records  KEYS[4] attempts
-- KEYS[5] succeeded set (scored by expiry)  KEYS[6] results  KEYS[7] timings
-- KEYS[8] counters  KEYS[9] errors  KEYS[10] stacks  KEYS[11] ranking settings
-- KEYS[12] task stats  KEYS[13] quality window  KEYS[14] cost models
-- KEYS[15] schedule keys  KEYS[16] keys of keyed jobs  KEYS[17] limits
-- KEYS[18] limits' state  KEYS[19] wake-up list
-- ARGV[1] now ms  ARGV[2] worker id  ARGV[3] done channel  ARGV[4] n
-- ARGV[5] max succeeded jobs kept  ARGV[6] '1' to trim the succeeded set in this call
-- then per job, 9 values: id, retention ms, result ('' for none), lease start ms ('':
-- any lease of this worker), task
-- ('' to teach nothing), ran ms, its sample "task|predicted ms|ran ms|enqueued ms|
-- started ms" for the quality window ('' but for the first 8 of a call) and its cost
-- hint "name|log1p(value)" ('' for none), and its schedule key ('' for none), released
-- Outside fifo mode each recorded job's run time is folded into its task's statistics
-- (and the queue-wide "*"), exactly once: only a job this worker still held counts.
-- then, when jobs taken from fair sets are among them, ARGV[7+9n] the number of fair
-- key entries and their members (KEYS[20..]: lib.lua, fair_add): each such job's charge
-- is corrected to its run time, (ran - charge) / weight on its key's tag, and the key's
-- use of worker time is kept (fuse "u:<key>", decayed over a minute).
-- A job counted by limits frees its slots (lib.lua, limits_release).
-- Returns the ids this worker no longer held (their lease was taken back): not recorded.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[4])
local fair_lanes = nil
local nf = tonumber(ARGV[7 + n * 9] or '0')
if nf > 0 then fair_lanes = lane_map(20, 8 + n * 9, nf) end
local rel = {order = {}}
local fixes, fix_order, uses, use_order = {}, {}, {}, {}
local ids = {}
for i = 0, n - 1 do ids[#ids + 1] = ARGV[7 + i * 9] end
local owners = redis.call('HMGET', KEYS[2], unpack(ids))
local ok, lost, drop = {}, {}, {}
local done, res, fin, samples, costs, runs = {}, {}, {}, {}, {}, {}
local seen_ids = {}
for i = 0, n - 1 do
  local b = 7 + i * 9
  local id = ARGV[b]
  local o = owners[i + 1]
  -- the owner entry must be this worker's lease from this fetch (its start ms), so an
  -- old run of a job the same worker fetched again is not recorded; an id is recorded once
  if not seen_ids[id] and holds(o, ARGV[2], ARGV[b + 3]) then
    seen_ids[id] = true
    if ARGV[b + 8] ~= '' then release_key(KEYS[15], KEYS[16], id) end
    limits_note(rel, o)
    if fair_lanes then
      local f = fair_fields(string.match(owner_split(o), '^.-|%d+|[^|]+|(.*)$'))
      if f then
        local ran = tonumber(ARGV[b + 5]) or 0
        if not (ran >= 0) then ran = 0 end -- NaN too
        ran = math.min(ran, 3.2e11) -- 10 years: a finite correction
        local p = string.sub(f[1], 1, 1)
        if f[4] then -- charged at fetch (a hand-off is not)
          local c, wt = finite(f[4]), finite(f[5])
          if c and wt and wt > 0 then
            local fx = p .. SEP .. f[2]
            if not fixes[fx] then
              fixes[fx] = 0
              fix_order[#fix_order + 1] = {p, f[2], fx}
            end
            fixes[fx] = fixes[fx] + (ran - c) / wt
          end
        end
        if not uses[f[2]] then
          uses[f[2]] = 0
          use_order[#use_order + 1] = f[2]
        end
        uses[f[2]] = uses[f[2]] + ran
      end
    end
    ok[#ok + 1] = id
    if ARGV[b + 4] ~= '' then
      runs[#runs + 1] = {ARGV[b + 4], tonumber(ARGV[b + 5])}
      costs[#runs] = ARGV[b + 7]
      if ARGV[b + 6] ~= '' then samples[#samples + 1] = ARGV[b + 6] end
    end
    local keep = tonumber(ARGV[b + 1])
    if keep > 0 then
      done[#done + 1] = now + keep
      done[#done + 1] = id
      fin[#fin + 1] = id
      fin[#fin + 1] = ARGV[b + 3] .. '|' .. ARGV[1]
      if ARGV[b + 2] ~= '' then
        res[#res + 1] = id
        res[#res + 1] = ARGV[b + 2]
      end
    else
      drop[#drop + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
if #ok == 0 then return lost end
redis.call('ZREM', KEYS[1], unpack(ok))
redis.call('HDEL', KEYS[2], unpack(ok))
if #done > 0 then
  redis.call('ZADD', KEYS[5], unpack(done))
  redis.call('HSET', KEYS[7], unpack(fin))
  if #res > 0 then redis.call('HSET', KEYS[6], unpack(res)) end
end
forget(drop, KEYS[3], KEYS[4], KEYS[9], KEYS[10], KEYS[6], KEYS[7])
redis.call('HINCRBY', KEYS[8], 'succeeded', #ok)
limits_release(KEYS[17], KEYS[18], KEYS[19], rel)

if fair_lanes and #use_order > 0 then
  -- only where the fetch charged a prediction (share) is there an error to correct
  for _, fx in ipairs(fix_order) do
    if fair_lanes[fx[1] .. '|fk'] then fair_correct(fair_lanes, fx[1], fx[2], fixes[fx[3]]) end
  end
  -- use of worker time per key, and of all keys ('u'): "at ms|ms", decayed with a
  -- time constant of a minute, so a key's share is its own over the total
  local fuse = fair_lanes['|fuse']
  local names = {'u'}
  for _, key in ipairs(use_order) do names[#names + 1] = 'u:' .. key end
  local cur = redis.call('HMGET', fuse, unpack(names))
  local total = 0
  local set = {}
  local function decayed(e, add)
    local at, v = string.match(e or '', '^([^|]+)|(.+)$')
    at, v = finite(at), finite(v)
    local x = 0
    if at and v then x = v * math.exp(-math.max(now - at, 0) / 60000) end
    return string.format('%d', math.max(now, at or now)) .. '|' .. string.format('%.6g', x + add)
  end
  for i, key in ipairs(use_order) do
    total = total + uses[key]
    set[#set + 1] = names[i + 1]
    set[#set + 1] = decayed(cur[i + 1], uses[key])
  end
  set[#set + 1] = 'u'
  set[#set + 1] = decayed(cur[1], total)
  redis.call('HSET', fuse, unpack(set))
end

if #runs > 0 then
  local mode, _, _, alpha, fair = rank_settings(KEYS[11])
  if mode ~= 'fifo' or fair == 'share' then -- share charges predictions: learn them
    local tasks, seen = {}, {}
    for _, r in ipairs(runs) do
      local t = 't:' .. r[1]
      if not seen[t] then seen[t] = #tasks + 1; tasks[#tasks + 1] = t end
      r[1] = t
    end
    tasks[#tasks + 1] = '*'
    local cur = redis.call('HMGET', KEYS[12], unpack(tasks))
    -- fold each task's run times numerically; parse and format each entry once (an
    -- entry that does not parse starts afresh rather than failing the whole batch)
    local st = {}
    for i = 1, #tasks do
      local e = cur[i]
      if e then
        local n, mean, var = string.match(e, '^([^|]+)|([^|]+)|([^|]+)$')
        n, mean, var = tonumber(n), known_ms(mean), tonumber(var)
        -- a damaged entry (an infinite or NaN mean) starts afresh, or it never heals
        if n and mean and var and var == var and var < math.huge then st[i] = {n, mean, var} end
      end
    end
    local function fold(i, x)
      local s = st[i]
      if not s then st[i] = {1, x, 0}; return end
      local diff = x - s[2]
      local incr = alpha * diff
      s[1], s[2], s[3] = s[1] + 1, s[2] + incr, (1 - alpha) * (s[3] + diff * incr)
    end
    local all = #tasks
    for _, r in ipairs(runs) do
      fold(seen[r[1]], r[2])
      fold(all, r[2])
    end
    local hset = {}
    for i, t in ipairs(tasks) do
      hset[#hset + 1] = t
      hset[#hset + 1] = st[i][1] .. '|' .. string.format('%.6g', st[i][2]) .. '|' .. string.format('%.6g', st[i][3])
    end
    redis.call('HSET', KEYS[12], unpack(hset))
    -- the quality window keeps a recent sample: at most 8 jobs of each call, so its
    -- cost does not grow with the batch
    if #samples > 0 then
      redis.call('LPUSH', KEYS[13], unpack(samples))
      if ARGV[6] == '1' then redis.call('LTRIM', KEYS[13], 0, 999) end -- with the other trims
    end
    -- cost models: log run time against log1p(cost hint), per task
    local models, mseen, mtasks = {}, {}, {}
    for i, r in ipairs(runs) do
      local name, x = string.match(costs[i] or '', '^(.*)|([^|]+)$')
      local t = string.sub(r[1], 3)
      if name and tonumber(x) and r[2] and r[2] > 0 then
        if not mseen[t] then mseen[t] = true; mtasks[#mtasks + 1] = t end
        models[#models + 1] = {t, name, tonumber(x), math.log(r[2])}
      end
    end
    if #mtasks > 0 then
      local cm = redis.call('HMGET', KEYS[14], unpack(mtasks))
      local entry = {}
      for i, t in ipairs(mtasks) do entry[t] = cm[i] or nil end
      for _, m in ipairs(models) do entry[m[1]] = model_add(entry[m[1]], m[2], m[3], m[4]) end
      local mset = {}
      for _, t in ipairs(mtasks) do
        mset[#mset + 1] = t
        mset[#mset + 1] = entry[t]
      end
      redis.call('HSET', KEYS[14], unpack(mset))
    end
  end
end

-- trim (every few calls, as the caller decides): succeeded jobs past their retention,
-- then the oldest beyond the cap
if ARGV[6] ~= '1' then
  redis.call('PUBLISH', ARGV[3], 's ' .. table.concat(ok, ' '))
  return lost
end
forget(drop_expired(KEYS[5], now, tonumber(ARGV[5]), 500), KEYS[3], KEYS[4], KEYS[9], KEYS[10], KEYS[6], KEYS[7])
redis.call('PUBLISH', ARGV[3], 's ' .. table.concat(ok, ' '))
return lost
