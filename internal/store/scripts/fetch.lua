-- fetch.lua: take up to n jobs in dequeue order and lease them to a worker.
-- KEYS[1] lane index  KEYS[2] active set  KEYS[3] owners  KEYS[4] job records
-- KEYS[5] attempts    KEYS[6] paused flag KEYS[7] wake-up list  KEYS[8] ranking settings
-- KEYS[9] task stats and priors           KEYS[10] limits  KEYS[11] limits' state
-- KEYS[12..] lane keys
-- (a lane is "<prio>:<task>", or with a size bucket " =b" or " ~b": see lib.lua)
-- ARGV[1] now ms ('': Redis' clock, see clock_ms)  ARGV[2] n  ARGV[3] lease ms
-- ARGV[4] worker id  ARGV[5] number of lanes  ARGV[6..] lane members (same order as
-- KEYS[12..])
-- Returns {"ok", now ms (the leases' start), the lanes this fetch emptied (members
-- joined by newlines), the earliest ms at which work held back by a rate limit gets a
-- token ('' for none), then per job: id, record, attempts, predicted ms or "", in-lane
-- score (the time the job became due: arrival, promotion, retry)}, {"paused"}, or
-- {"stale", member...} when the caller's lane list lacks lanes (it adds them and calls
-- again).
--
-- Limits (lib.lua, MARK; docs/limits.md): work over a limit is not taken and not
-- touched; the fetch goes on past it (a lane of a task at its limit, a fair key at its
-- own, a job of such a task inside a key) to the eligible work in the same order.
--
-- Order: strict priority bands first. Inside the highest non-empty band, fifo and
-- shadow mode take the lane whose head arrived first (the index minimum); active mode
-- evaluates its rule over the band's lane heads (O(lanes), never O(backlog)):
--   fixed: the smallest arrival + w × predicted
--   hrrn:  the highest (waited + predicted) / predicted, except that heads overdue
--          (waited past arrival + w × predicted) go first, by that deadline
-- and takes that lane's jobs while they stay ahead of the runner-up.
if redis.call('EXISTS', KEYS[6]) == 1 then return {'paused'} end
local now = clock_ms(ARGV[1])
local start = string.format('%d', now)
local deadline = now + tonumber(ARGV[3]) -- the lease runs from Redis' now, not the caller's
local want = math.min(tonumber(ARGV[2]), MAX_FETCH) -- unpack() below takes ~8000 values at most
local lanes = lane_map(12, 6, tonumber(ARGV[5]))
local mode, rule, w, _, fair, limited = rank_settings(KEYS[8])
local ids, own, act, preds, scores = {}, {}, {}, {}, {}
local emptied = {} -- lanes this fetch emptied: the caller may stop passing them
local got = 0

local function fmt(x) -- a script returning a Lua number would truncate it to an integer
  if x then return string.format('%.6g', x) end
  return ''
end

local function is_fair_ref(member)
  return string.sub(member, 2) == '|fair'
end

local function fmt_ms(x)
  if x then return string.format('%d', x) end
  return ''
end

-- The limits of this queue, when it has any: settings read once, each group's state
-- when first met; L.next the earliest token time of work held back by a rate.
local L = nil
if limited then
  -- held: per band, the fair keys held back in this fetch; scanned: entries passed
  -- over (lanes, keys, jobs of a limited task), bounded by LIMIT_SCAN for the fetch
  L = {cfg = {}, st = {}, next = nil, task = false, key = false, blocked_fair = {}, held = {}, scanned = 0}
  local all = redis.call('HGETALL', KEYS[10])
  for i = 1, #all, 2 do
    local c = limit_setting(all[i + 1])
    if c then
      L.cfg[all[i]] = c
      if string.sub(all[i], 1, 2) == 't:' then L.task = true end
      if all[i] == 'k' then L.key = true end
    end
  end
end

-- The state of group g ({c = setting, run, tokens, taken}), or false when unlimited.
local function group(g)
  local st = L.st[g]
  if st ~= nil then return st end
  st = false
  local c = L.cfg[limit_field(g)]
  if c then
    local r = redis.call('HMGET', KEYS[11], 'r:' .. g, 'b:' .. g)
    st = {c = c, run = math.max(math.floor(finite(r[1]) or 0), 0), taken = 0, tokens = math.huge}
    if c.rate then
      local tk, at = string.match(r[2] or '', '^([^|]+)|(.+)$')
      tk, at = finite(tk), finite(at)
      if tk then tk = math.max(tk, 0) end -- a damaged negative count would never refill
      if tk and at and at > now then
        -- stamped by a clock ahead of this one (a failover to a replica whose clock is
        -- behind): refill from now, or the bucket would stay frozen until that clock
        st.tokens, st.restamp = math.max(math.min(c.burst, tk), 0), true
      elseif tk and at then
        st.tokens = math.min(c.burst, tk + (now - at) * c.rate)
      else
        st.tokens = c.burst
      end
    end
  end
  L.st[g] = st
  return st
end

-- How many more jobs of group g this fetch may take (math.huge: no limit). Work held
-- back by the rate alone notes when its next token is due.
local function allowance(g)
  local st = group(g)
  if not st then return math.huge end
  local a = math.huge
  if st.c.cap then a = st.c.cap - st.run - st.taken end
  if st.c.rate then
    local left = st.tokens - st.taken
    if a > 0 and left < 1 then
      local at = now + math.ceil((1 - left) / st.c.rate)
      if (not L.next) or at < L.next then L.next = at end
    end
    a = math.min(a, math.floor(left))
  end
  return math.max(a, 0)
end

-- How many jobs of a lane's task this fetch may take.
local lane_group = {} -- lane member -> its task's group name, once per fetch
local function task_group(member)
  local g = lane_group[member]
  if not g then
    g = 't:' .. lane_task(member)
    lane_group[member] = g
  end
  return g
end

local function lane_allowance(member)
  if not L or not L.task then return math.huge end
  return allowance(task_group(member))
end

-- Whether a lane-index member may give a job now.
local function eligible(member)
  if not L then return true end
  if is_fair_ref(member) then return not L.blocked_fair[string.sub(member, 1, 1)] end
  return lane_allowance(member) > 0
end

-- Count one job of lane (and fair key, or nil) taken: the mark its owner entry ends
-- with ('' when no limit counted it).
-- (The groups of a lane, or of a lane and key, are found once per fetch: this runs for
-- every job taken.)
local take_plan = {}
local function limit_take(lane, key)
  if not L then return '' end
  local id = lane
  if key then id = lane .. SEP .. key end
  local plan = take_plan[id]
  if not plan then
    plan = {mark = ''}
    local flags = ''
    local gs = {{'t', task_group(lane)}, {'q', 'q'}}
    if key then gs[3] = {'k', 'k:' .. key} end
    for _, x in ipairs(gs) do
      local st = group(x[2])
      if st then
        plan[#plan + 1] = st
        if st.c.cap then flags = flags .. x[1] end -- a rate alone counts no running job
      end
    end
    if flags ~= '' then plan.mark = MARK .. flags end
    take_plan[id] = plan
  end
  for i = 1, #plan do plan[i].taken = plan[i].taken + 1 end
  return plan.mark
end

-- The first n eligible entries of the lane index (member, score, ...): entries held
-- back by a limit are passed over, up to LIMIT_SCAN of them in the whole fetch.
local function index_top(n)
  if not L then return redis.call('ZRANGE', KEYS[1], 0, n - 1, 'WITHSCORES') end
  local out, off = {}, 0
  while true do
    local page = n + 16
    local r = redis.call('ZRANGE', KEYS[1], off, off + page - 1, 'WITHSCORES')
    for i = 1, #r, 2 do
      if eligible(r[i]) then
        out[#out + 1] = r[i]
        out[#out + 1] = r[i + 1]
        if #out >= 2 * n then return out end
      else
        L.scanned = L.scanned + 1 -- passed over: counted for the whole fetch
      end
    end
    off = off + page
    if #r < 2 * page or L.scanned >= LIMIT_SCAN then return out end
  end
end

-- The queue's own cap bounds the whole batch.
if L then
  want = math.min(want, allowance('q'))
  if want <= 0 then return {'ok', start, '', fmt_ms(L.next)} end
end

local function take(lane, member, popped, pred, bounded)
  local k = #popped / 2
  if k == 0 then return end
  local p = fmt(pred)
  if bounded then redis.call('ZREMRANGEBYRANK', lane, 0, k - 1) end
  for i = 1, #popped, 2 do
    local id = popped[i]
    ids[#ids + 1] = id
    own[#own + 1] = id
    own[#own + 1] = ARGV[4] .. '|' .. start .. '|' .. popped[i + 1] .. '|' .. member .. limit_take(member, nil)
    act[#act + 1] = deadline
    act[#act + 1] = id
    preds[#preds + 1] = p
    scores[#scores + 1] = popped[i + 1]
  end
  got = got + k
end

-- Fair sets (lib.lua, fair_add): the band's fair set competes in the lane index like a
-- lane; once chosen, take_fair picks inside it by key, start-time fair queueing over the
-- band's backlogged keys: the key with the smallest start tag goes next, its jobs in
-- their in-key order, and each job adds its charge / the key's weight to the key's tag
-- (share: the job's predicted ms; lru and off: 1). V, the band's virtual time, is the
-- tag of the job started last.
local task_preds = {}
local function job_prediction(lane)
  local t = lane_task(lane)
  local tp = task_preds[t]
  if tp == nil then
    tp = predict(KEYS[9], {t})[t] or false
    task_preds[t] = tp
  end
  return lane_prediction(lane, tp or nil)
end

-- Take up to limit jobs of band p's fair set.
local function take_fair(p, limit)
  local ref = p .. '|fair'
  local fj, fk, fz = lanes[ref], lanes[p .. '|fk'], lanes[p .. '|fz']
  local fv = lanes['|fv']
  local st = redis.call('HMGET', fv, 'v:' .. p, 'cfg', 'c:' .. p)
  local V = finite(st[1]) or 0
  local configured = (tonumber(st[2] or '0') or 0) > 0
  local share = fair == 'share'
  -- the quantum (fairshare.QuantumMs): a visit to a key goes on while its tag has moved
  -- less than Q since the visit began; "c:<p>" is the visit a batch ended in, "from\31key"
  local Q = 0
  if share then Q = FAIR_QUANTUM end
  local visit = nil
  if st[3] and Q > 0 then
    local from, key = string.match(st[3], '^([^\31]*)\31(.*)$')
    from = finite(from)
    if from then
      local tag = finite(redis.call('ZSCORE', fk, key))
      if tag and tag < from + Q then visit = {k = key, s = tag, from = from} end
    end
  end
  -- limits: a key at its own limit is passed over with its tag kept (it goes first
  -- when it may run again, as owed); a job of a task at its limit is passed over
  -- inside its key, at most SKIP_PER_KEY of them a visit
  local held = {} -- keys held back in this fetch (kept across calls for the band)
  if L then
    L.held[p] = L.held[p] or {}
    held = L.held[p]
  end
  local function key_allowance(key)
    if not L or not L.key then return math.huge end
    return allowance('k:' .. key)
  end
  local function hold(key)
    if not held[key] then
      held[key] = true
      L.scanned = L.scanned + 1
    end
  end
  local function scan_spent() return L and L.scanned >= LIMIT_SCAN end
  if visit and key_allowance(visit.k) <= 0 then
    hold(visit.k)
    visit = nil
  end
  local ended = nil -- the visit under way when the batch ends, if any
  local left = false -- the last key visited has jobs left: the fair set is not empty
  local went_idle = false -- a key went idle in this call (finish tags to trim)
  local weights, weight_str, cursor, lane_info = {}, {}, {}, {}
  local function weight(key)
    local wt = weights[key]
    if not wt then
      wt = 1
      if configured then wt = known_weight(redis.call('HGET', lanes['|fcfg'], 'w:' .. key)) end
      weights[key] = wt
    end
    return wt
  end
  -- list: the keys of fk up to a threshold (all of those at or before its last entry),
  -- sorted; full: every key of fk is in it
  local list, full = {}, false
  local function read_list()
    list = {}
    if not L then
      local r = redis.call('ZRANGE', fk, 0, limit, 'WITHSCORES')
      for i = 1, #r, 2 do list[#list + 1] = {k = r[i], s = finite(r[i + 1]) or V} end
      full = #list <= limit
      return
    end
    -- the first limit + 1 keys not held back; every entry read counts against the
    -- fetch's LIMIT_SCAN, so held keys cost a bounded read however many there are
    local off = 0
    local dropped = false -- a key not held was read but left out of the list
    full = false
    while not scan_spent() do
      local page = limit + 1 + 16
      local r = redis.call('ZRANGE', fk, off, off + page - 1, 'WITHSCORES')
      L.scanned = L.scanned + #r / 2
      for i = 1, #r, 2 do
        local key = r[i]
        if not held[key] and key_allowance(key) <= 0 then hold(key) end
        if not held[key] then
          if #list <= limit then list[#list + 1] = {k = key, s = finite(r[i + 1]) or V} else dropped = true end
        end
      end
      off = off + page
      if #r < 2 * page then
        full = not dropped -- every key not held is in the list
        return
      end
      if #list > limit then return end
    end
  end
  local dirty, gone, served, served_order, taken = {}, {}, {}, {}, {}
  local function write_tags()
    local z = {}
    for key, tag in pairs(dirty) do
      z[#z + 1] = fmt17(tag)
      z[#z + 1] = key
    end
    if #z > 0 then call_chunked('ZADD', fk, z) end
    for key, tag in pairs(gone) do
      redis.call('ZREM', fk, key)
      redis.call('ZADD', fz, fmt17(tag), key)
    end
    dirty, gone = {}, {}
  end
  read_list()
  if not list[1] then
    -- jobs without a backlogged key (a damaged state): the key of the first one joins
    local m = redis.call('ZRANGE', fj, 0, 0)[1]
    if m then
      fair_backlog(lanes, p, fair_fields(m)[1])
      read_list()
    end
  end
  local n = 0
  while n < limit and (visit or list[1]) and not scan_spent() do
    local K, S, from
    if visit then
      K, S, from = visit.k, visit.s, visit.from
      visit = nil
      for i = 1, #list do
        if list[i].k == K then
          table.remove(list, i)
          break
        end
      end
    else
      K, S = list[1].k, list[1].s
      from = S
      table.remove(list, 1)
    end
    local R = list[1]
    ended = nil
    local wt = weight(K)
    local wts = weight_str[K]
    if share and not wts then
      wts = fmt17(wt)
      weight_str[K] = wts
    end
    local lo, hi = key_range(K)
    if cursor[K] then lo = '(' .. cursor[K] end
    -- facing a runner-up, read 2: the one the key may get, and whether it has more
    local ask = limit - n
    if R then ask = 2 end
    local stop, empty, more = false, false, false
    local kroom = key_allowance(K) -- > 0: K was not held back
    local skipped = 0 -- jobs of K passed over (their task at its limit)
    while not stop do
      local ms = redis.call('ZRANGE', fj, lo, hi, 'BYLEX', 'LIMIT', 0, ask)
      local used = 0
      for _, m in ipairs(ms) do
        local f = fair_fields(m) -- key, score, id, lane, due
        local id, lane, due = f[3], f[4], f[5]
        if L and L.task and lane_allowance(lane) <= 0 then
          -- its task is at its limit: it stays, the key's next job may go
          skipped = skipped + 1
          L.scanned = L.scanned + 1
          used = used + 1
          lo = '(' .. m
          cursor[K] = m
          if skipped >= SKIP_PER_KEY or scan_spent() then
            hold(K)
            stop = true
            break
          end
        else
        local li = lane_info[lane]
        if not li then
          -- a lane's prediction, charge and their strings, once per fetch
          local pr = nil
          if share or mode ~= 'fifo' then pr = job_prediction(lane) end
          local c = 1
          if share then c = math.max(pr or 1, 0.01) end
          li = {c = c, prs = fmt(pr), cs = fmt17(c)}
          lane_info[lane] = li
        end
        local c = li.c
        taken[#taken + 1] = m
        cursor[K] = m
        used = used + 1
        ids[#ids + 1] = id
        own[#own + 1] = id
        local o = ARGV[4] .. '|' .. start .. '|' .. due .. '|' .. lane .. SEP .. K .. SEP .. f[2]
        -- share: the charge and weight, which the ack corrects to the run time; lru
        -- counts jobs, and a job's run time changes nothing
        if share then o = o .. SEP .. li.cs .. SEP .. wts end
        own[#own + 1] = o .. limit_take(lane, K)
        act[#act + 1] = deadline
        act[#act + 1] = id
        preds[#preds + 1] = li.prs
        scores[#scores + 1] = due
        got = got + 1
        n = n + 1
        if not served[K] then
          served[K] = 0
          served_order[#served_order + 1] = K
        end
        served[K] = served[K] + 1
        if S > V then V = S end
        S = S + c / wt
        lo = '(' .. m
        -- the visit goes on within its quantum; past it, K goes on only while it is
        -- still the smallest, as a new visit (with no quantum, lru: only that)
        if S < from + Q then
          ended = {k = K, from = from}
        else
          ended = nil
          if (not R) or key_before(S, K, R.s, R.k) then from = S else stop = true end
        end
        if n >= limit then stop = true end
        if kroom ~= math.huge then
          kroom = kroom - 1
          if kroom <= 0 then
            hold(K) -- at its own limit: it keeps its tag, the next key goes
            stop = true
          end
        end
        if stop then break end
        end
      end
      if used < #ms or skipped > 0 then more = true end
      if used == #ms and #ms < ask then
        -- read all it had; what it passed over waits for its task's limit
        if skipped == 0 then empty = true else hold(K) end
        stop = true
      elseif not stop then
        local most = limit - n
        if skipped > 0 then most = math.max(most, SKIP_PER_KEY) end
        ask = math.min(ask * 2, most)
      end
    end
    left = more
    if not empty and not more then
      -- its last job read was taken: whether K has more decides whether it stays
      -- backlogged (a key left in fk with no jobs would keep its tag when it comes back,
      -- where one that went idle restarts at max(its finish tag, V)), and whether a
      -- visit may go on in the next fetch
      if not redis.call('ZRANGE', fj, lo, hi, 'BYLEX', 'LIMIT', 0, 1)[1] then empty = true end
    end
    if empty then
      ended = nil
      went_idle = true
      gone[K] = S
      dirty[K] = nil
    else
      dirty[K] = S
      local pos = #list + 1
      for i = 1, #list do
        if key_before(S, K, list[i].s, list[i].k) then
          pos = i
          break
        end
      end
      -- past every key read, with keys unread: it may come after one of those; drop it
      -- (it is written back, and read again when it comes up)
      if not held[K] and (pos <= #list or full) then table.insert(list, pos, {k = K, s = S}) end
    end
    if n < limit and #list < 2 and not full then
      write_tags()
      read_list()
    end
  end
  if #taken > 0 then call_chunked('ZREM', fj, taken) end
  write_tags()
  if n == 0 and L and redis.call('ZCARD', fj) > 0 then
    -- all of it held back: it keeps its place in the index and its visit, as if the
    -- fetch had not looked (limits never reorder the eligible work)
    return 0
  end
  local use = {}
  for _, key in ipairs(served_order) do
    fair_count(lanes, key, -served[key])
    use[#use + 1] = 's:' .. key
    use[#use + 1] = start
  end
  if #use > 0 then call_chunked('HSET', lanes['|fuse'], use) end
  if not left and redis.call('ZCARD', fj) == 0 then
    -- the band's fair work is gone: it leaves the index and its tags reset (an idle
    -- band, like an idle server in SFQ, owes nobody)
    redis.call('ZREM', KEYS[1], ref)
    redis.call('DEL', fk, fz)
    redis.call('HDEL', fv, 'v:' .. p, 'c:' .. p)
    emptied[#emptied + 1] = ref
  else
    if ended then
      redis.call('HSET', fv, 'v:' .. p, fmt17(V), 'c:' .. p, fmt17(ended.from) .. SEP .. ended.k)
    else
      redis.call('HSET', fv, 'v:' .. p, fmt17(V))
      if st[3] then redis.call('HDEL', fv, 'c:' .. p) end
    end
    -- behind every lane head that arrived before now: leftover lanes of the band are
    -- not starved by its fair set (nor it by them)
    redis.call('ZADD', KEYS[1], fmt17(lane_offset(ref) + now + 0.5), ref)
    -- finish tags V passed say nothing: dropped as keys go idle (what makes fz grow)
    if went_idle then redis.call('ZREMRANGEBYSCORE', fz, '-inf', fmt17(V)) end
  end
  return n
end

-- whether candidate a ranks before b
local function before(a, b)
  if a.k0 ~= b.k0 then return a.k0 < b.k0 end
  if a.k1 ~= b.k1 then return a.k1 < b.k1 end
  return a.k2 < b.k2
end

-- Take jobs of lane: all of them that rank strictly before the runner-up (in-lane score
-- below bound), at least its head (the ranking chose it). bound nil: no runner-up, take
-- up to the batch; bound false: take the head only and rank again.
local function pop(lane, member, bound, pred)
  local room = math.min(want - got, lane_allowance(member)) -- eligible: at least 1
  if bound == nil then
    take(lane, member, redis.call('ZPOPMIN', lane, room), pred, false)
  else
    local popped = {}
    if bound then
      popped = redis.call('ZRANGE', lane, '-inf', '(' .. string.format('%.17g', bound), 'BYSCORE', 'LIMIT', 0, room, 'WITHSCORES')
    end
    if not popped[1] then
      popped = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
    end
    take(lane, member, popped, pred, true)
  end
  if rescore_lane(KEYS[1], lane, member) then emptied[#emptied + 1] = member end
end

-- Lanes whose heads tie on the lowest score (arrived in the same ms, as a bulk enqueue
-- of mixed tasks does): their jobs at that score go by id, which sorts by creation
-- time, not lane by lane in name order. The tied lanes' heads are read once; each take
-- reads only the next head of its lane; the index is rescored once per lane at the end.
-- Returns false and the tied lanes unknown to the caller (stale) before anything was
-- taken; once jobs are taken, an unknown lane is left for the next fetch (false, nil
-- when that leaves nothing to take). Else true.
local function take_tied(score)
  local group = {}
  local repaired = false
  local tied = {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], score, score, 'BYSCORE', 'LIMIT', 0, 128)) do
    if eligible(m) then tied[#tied + 1] = m end
  end
  local missing = {}
  for _, m in ipairs(tied) do note_missing(lanes, missing, m) end
  if #missing > 0 then
    if got == 0 then return false, missing end
    return false, nil -- a tied lane the caller lacks may hold the smallest id: stop here
  end
  for _, m in ipairs(tied) do
    local l = lanes[m]
    if l then
      local h = redis.call('ZRANGE', l, 0, 0, 'WITHSCORES')
      if h[1] then
        group[#group + 1] = {m = m, l = l, id = h[1], s = h[2]}
      else
        rescore_lane(KEYS[1], l, m) -- an index entry of an empty lane: drop it
        repaired = true
      end
    end
  end
  if #group == 0 then return repaired, nil end
  local touched = {}
  while got < want and #group > 0 do
    local bi = 1
    for i = 2, #group do
      if group[i].id < group[bi].id then bi = i end
    end
    local g = group[bi]
    if not eligible(g.m) then
      table.remove(group, bi) -- its task reached its limit in this batch
    else
      take(g.l, g.m, {g.id, g.s}, nil, true) -- removes the lane's head: this job
      touched[g.m] = g.l
      local h = redis.call('ZRANGE', g.l, 0, 0, 'WITHSCORES')
      if h[1] and h[2] == g.s then g.id = h[1] else table.remove(group, bi) end
    end
  end
  for m, l in pairs(touched) do
    if rescore_lane(KEYS[1], l, m) then emptied[#emptied + 1] = m end
  end
  return true
end

if mode ~= 'active' then
  local first = true
  while got < want do
    local top
    if first then
      -- the first read spans every lane this fetch can take from (a lane holding one
      -- of the next `want` jobs has its head among the index's first want, then the
      -- runner-up): all must be known, or a lane the caller lacks cuts the batch short
      first = false
      top = index_top(want + 1)
      local missing = {}
      for i = 1, #top, 2 do note_missing(lanes, missing, top[i]) end
      if #top > 2 then
        -- lanes tied with the last one read go by id, not rank: a tie read later
        -- (take_tied, up to 128 lanes past what was taken) may reach past rank want
        local last = top[#top]
        for _, m in ipairs(redis.call('ZRANGE', KEYS[1], last, last, 'BYSCORE', 'LIMIT', 0, want + 128)) do
          note_missing(lanes, missing, m)
        end
      end
      if #missing > 0 then return stale_answer(missing) end
    else
      top = index_top(2)
    end
    if not top[1] then break end
    local member = top[1]
    local lane = lanes[member]
    local ok, stale = true, nil
    if lane and is_fair_ref(member) then
      -- another lane of the same band waiting: one job, then rank again
      local limit = want - got
      if top[3] and math.floor(tonumber(top[4]) / BAND) == math.floor(tonumber(top[2]) / BAND) then limit = 1 end
      if take_fair(string.sub(member, 1, 1), limit) == 0 then
        -- every key of it held back by a limit: the other lanes go on
        if not L then break end
        L.blocked_fair[string.sub(member, 1, 1)] = true
      end
    elseif lane and top[3] and top[4] == top[2] then
      ok, stale = take_tied(top[2])
    elseif lane then
      local bound = nil
      if top[3] then bound = tonumber(top[4]) - lane_offset(member) end
      pop(lane, member, bound, nil)
    end
    if not lane or (not ok and stale) then
      if got == 0 then return stale_answer(stale or {member}) end
      break -- keep what was taken; the caller learns of the lane on its next fetch
    end
    if not ok then break end -- only unknown lanes left in the tie: the next fetch
  end
  if mode == 'shadow' and got > 0 then
    -- fifo order, but every job's prediction is recorded so it can be judged
    local tasks, seen, task_of = {}, {}, {}
    local function owned_lane(o)
      local m = string.match(owner_split(o), '^.-|%d+|[^|]+|(.*)$')
      local f = fair_fields(m)
      if f then return f[1] end
      return m
    end
    for i = 1, got do
      local o = own[i * 2]
      local t = lane_task(owned_lane(o))
      task_of[i] = t
      if not seen[t] then seen[t] = true; tasks[#tasks + 1] = t end
    end
    local p = predict(KEYS[9], tasks)
    for i = 1, got do
      preds[i] = fmt(lane_prediction(owned_lane(own[i * 2]), p[task_of[i]]))
    end
  end
else
  while got < want do
    -- the highest band's lanes, at most the 1000 whose heads came first: the rule's
    -- work per fetch is bounded however many lanes hold work (docs/ranking.md)
    local all = redis.call('ZRANGE', KEYS[1], 0, 999, 'WITHSCORES')
    if L then
      local kept = {}
      for i = 1, #all, 2 do
        if eligible(all[i]) then
          kept[#kept + 1] = all[i]
          kept[#kept + 1] = all[i + 1]
        end
      end
      all = kept
    end
    if not all[1] then break end
    local lo = math.floor(tonumber(all[2]) / BAND) * BAND
    if got == 0 then
      -- every lane read known before anything is taken (lower bands too, for when the
      -- top one empties), so that the batch is not cut short
      local missing = {}
      for i = 1, #all, 2 do note_missing(lanes, missing, all[i]) end
      if #missing > 0 then return stale_answer(missing) end
    end
    local cands = {}
    for i = 1, #all, 2 do
      if tonumber(all[i + 1]) >= lo + BAND then break end
      cands[#cands + 1] = all[i]
      cands[#cands + 1] = all[i + 1]
    end
    local tasks, seen = {}, {}
    for i = 1, #cands, 2 do
      if not is_fair_ref(cands[i]) then
        local t = lane_task(cands[i])
        if not seen[t] then seen[t] = true; tasks[#tasks + 1] = t end
      end
    end
    local p = predict(KEYS[9], tasks)
    -- rank the band's lane heads by (k0, k1, k2), smallest first (equal keys: index
    -- order). A lane without any prediction competes on arrival, as if predicted 0.
    local best, second = nil, nil
    for i = 1, #cands, 2 do
      local member = cands[i]
      local head = tonumber(cands[i + 1]) - lo
      local pr = nil -- a fair set competes on its entry, as a lane of unknown prediction
      if not is_fair_ref(member) then pr = lane_prediction(member, p[lane_task(member)]) end
      if pr then pr = math.max(pr, 0.001) end -- a learned 0 (sub-µs handlers) is tiny, not nothing
      local c = {member = member, head = head, pred = pr, k0 = 1, k2 = 0}
      if rule == 'hrrn' then
        if not pr then
          c.k0, c.k1 = 0, head
        elseif now > head + w * pr then
          -- overdue: waited past arrival + w × predicted. Overdue heads go first, by
          -- that deadline: the hard bound on overtaking that plain HRRN lacks
          c.k0, c.k1 = 0, head + w * pr
        else
          -- a head stamped by a producer clock ahead of Redis' has waited nothing yet,
          -- not a negative time (which would rank a short job behind a long one)
          c.k1, c.k2 = -((math.max(now - head, 0) + pr) / pr), head
        end
      elseif w == math.huge then
        c.k1, c.k2 = pr or 0, head
      else
        c.k1 = head + w * (pr or 0)
      end
      if (not best) or before(c, best) then
        second = best
        best = c
      elseif (not second) or before(c, second) then
        second = c
      end
    end
    local lane = lanes[best.member]
    if not lane then
      if got == 0 then return {'stale', best.member} end
      break
    end
    if is_fair_ref(best.member) then
      local limit = want - got
      if second then limit = 1 end
      if take_fair(string.sub(best.member, 1, 1), limit) == 0 then
        if not L then break end
        L.blocked_fair[string.sub(best.member, 1, 1)] = true
      end
    else
      -- the in-lane score below which best's jobs still rank before the runner-up
      local bound = nil
      if second then
        local pb = best.pred or 0
        if rule == 'hrrn' then
          -- a later job s of best's lane is overdue while s < now - w*pb (an unknown lane's
          -- jobs always are, with pb = 0); it ranks before the runner-up when it is overdue
          -- with a smaller deadline, or, facing a runner-up that is not overdue, also when
          -- its ratio is the higher one
          local wp = 0
          if pb > 0 then wp = w * pb end -- (w may be math.huge; inf × 0 would be NaN)
          local due = now - wp
          if best.k0 == 1 then
            bound = now + pb + second.k1 * pb -- both on ratios; second.k1 is minus its ratio
          elseif second.k0 == 0 then
            bound = math.min(due, second.k1 - wp) -- both overdue: by deadline
          elseif not best.pred then
            bound = nil -- an unknown lane goes before any lane that is not overdue
          else
            bound = math.max(due, now + pb + second.k1 * pb)
          end
        elseif w == math.huge then
          if pb < second.k1 then bound = nil else bound = second.head end
        else
          bound = second.k1 - w * pb
        end
        if bound and (bound ~= bound or bound == -math.huge) then bound = false end -- NaN: job by job
      end
      pop(lane, best.member, bound, best.pred)
    end
  end
end

local gone = table.concat(emptied, '\n')
local nexts = ''
if L then
  nexts = fmt_ms(L.next)
  -- the groups' new counts and buckets, in one write
  local set = {}
  for g, st in pairs(L.st) do
    if st and st.restamp and st.taken == 0 then
      set[#set + 1] = 'b:' .. g
      set[#set + 1] = string.format('%.6f', st.tokens) .. '|' .. start
    end
    if st and st.taken > 0 then
      if st.c.cap then
        set[#set + 1] = 'r:' .. g
        set[#set + 1] = string.format('%d', st.run + st.taken)
      end
      if st.c.rate then
        set[#set + 1] = 'b:' .. g
        set[#set + 1] = string.format('%.6f', st.tokens - st.taken) .. '|' .. start
      end
    end
  end
  if #set > 0 then redis.call('HSET', KEYS[11], unpack(set)) end
end
if got == 0 then return {'ok', start, gone, nexts} end
redis.call('ZADD', KEYS[2], unpack(act))
redis.call('HSET', KEYS[3], unpack(own))
local recs = redis.call('HMGET', KEYS[4], unpack(ids))
local atts = redis.call('HMGET', KEYS[5], unpack(ids))
-- a full batch may have left work: pass the token on so another idle worker wakes too
-- (with no lane emptied, the lanes taken from still hold work: no need to count)
if got == want and (#emptied == 0 or redis.call('ZCARD', KEYS[1]) > 0) then wake(KEYS[7]) end
local out = {'ok', start, gone, nexts}
for i = 1, got do
  out[#out + 1] = ids[i]
  out[#out + 1] = recs[i] or ''
  out[#out + 1] = atts[i] or '0'
  out[#out + 1] = preds[i]
  out[#out + 1] = scores[i]
end
return out
