-- lib.lua: helpers shared by every nova-worker queue script.
-- The build prepends this file to each script (runtime/lua/embed.sh), so
-- the scripts stay self-contained on the server. Layout, fields, markers
-- and events follow BullMQ 5.81 (docs: shared/reference/bullmq-protocol.md);
-- the code is nova-worker's own.
--
-- Every script receives the queue's key base "<prefix>:<queue>:" as
-- ARGV[1] and its meta key as KEYS[1]; other keys are derived from the base,
-- so on Redis Cluster a queue must use a hash-tagged prefix or name.

local base = ARGV[1]
local K = {
  wait = base .. 'wait', active = base .. 'active', paused = base .. 'paused',
  prioritized = base .. 'prioritized', delayed = base .. 'delayed',
  marker = base .. 'marker', events = base .. 'events', meta = base .. 'meta',
  stalled = base .. 'stalled', pc = base .. 'pc', limiter = base .. 'limiter',
  id = base .. 'id', completed = base .. 'completed', failed = base .. 'failed',
  stalled_check = base .. 'stalled-check',
}

-- Scores beyond 2^47 lose digits through tostring(); always format them.
local function int_str(n)
  return string.format('%.0f', n)
end

-- meta is read once per script call: {paused, concurrency, max, duration,
-- maxLenEvents}. Scripts that change meta must call meta_changed().
local meta_cache = nil
local function meta()
  if not meta_cache then
    meta_cache = redis.call('HMGET', K.meta, 'paused', 'concurrency', 'max', 'duration',
                            'opts.maxLenEvents')
  end
  return meta_cache
end

-- The events stream's MAXLEN as the string XADD receives: converting a Lua
-- number for every redis.call is a measurable share of Redis's CPU per job.
local max_events_cache = nil
local function max_events()
  if not max_events_cache then
    local v = tonumber(meta()[5])
    max_events_cache = v and int_str(v) or '10000'
  end
  return max_events_cache
end

local function emit(maxlen, ...)
  redis.call('XADD', K.events, 'MAXLEN', '~', maxlen, '*', 'event', ...)
end

-- "paused": new work goes to the paused list and nobody is woken.
-- "maxed": global concurrency reached; work goes to wait without a marker.
local function queue_state()
  local m = meta()
  local paused = m[1] ~= false
  local maxed = false
  if m[2] then
    maxed = redis.call('LLEN', K.active) >= tonumber(m[2])
  end
  return paused, maxed
end

local function wake_now()
  redis.call('ZADD', K.marker, 0, '0')
end

-- Under a global concurrency limit, workers park on the marker while the
-- queue is maxed; a job leaving active must wake one of them.
local function wake_for_freed_slot()
  local m = meta()
  if m[2] and not m[1] and (redis.call('LLEN', K.wait) > 0 or
      redis.call('ZCARD', K.prioritized) > 0) then
    wake_now()
  end
end

local function next_delayed_due()
  local r = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES')
  if r[2] then
    return math.floor(tonumber(r[2]) / 4096)
  end
  return 0
end

local function wake_at_next_delayed()
  local due = next_delayed_due()
  if due > 0 then
    redis.call('ZADD', K.marker, int_str(due), '1')
  end
end

-- Lower score first; the pc counter keeps FIFO order within a priority.
local function push_prioritized(id, priority)
  local seq = redis.call('INCR', K.pc) % 4294967296
  redis.call('ZADD', K.prioritized, int_str(priority * 4294967296 + seq), id)
end

-- Delayed score: due_ms * 4096 + seq, seq one above the last job due in
-- the same millisecond so equal due times keep their insertion order.
local function push_delayed(id, due)
  local lo = due * 4096
  local last = redis.call('ZREVRANGEBYSCORE', K.delayed, int_str(lo + 4095), int_str(lo),
                          'LIMIT', 0, 1, 'WITHSCORES')
  local seq = 0
  if last[2] then
    seq = math.min(tonumber(last[2]) - lo + 1, 4095)
  end
  redis.call('ZADD', K.delayed, int_str(lo + seq), id)
end

-- A job due at `due` (ms): into delayed, the `delayed` event, and the
-- marker moved up when it is now the first due and the queue takes jobs.
local function delay_until(id, due, maxlen)
  push_delayed(id, due)
  emit(maxlen, 'delayed', 'jobId', id, 'delay', int_str(due))
  local paused, maxed = queue_state()
  if not paused and not maxed then
    wake_at_next_delayed()
  end
end

-- Puts a job where a worker will take it next; returns nothing.
-- front: take it before the jobs already waiting (retry to the head).
local function enqueue_ready(id, priority, front, prev, maxlen)
  local paused, maxed = queue_state()
  if priority > 0 then
    push_prioritized(id, priority)
  else
    local list = paused and K.paused or K.wait
    redis.call(front and 'RPUSH' or 'LPUSH', list, id)
  end
  if prev then
    emit(maxlen, 'waiting', 'jobId', id, 'prev', prev)
  else
    emit(maxlen, 'waiting', 'jobId', id)
  end
  if not paused and not maxed then
    wake_now()
  end
end

-- Moves due delayed jobs (at most 1000 per call) to wait or prioritized.
local function promote_delayed(now, maxlen)
  local ids = redis.call('ZRANGEBYSCORE', K.delayed, 0, int_str((now + 1) * 4096 - 1),
                         'LIMIT', 0, 1000)
  if #ids == 0 then
    return
  end
  local paused = queue_state()
  for _, id in ipairs(ids) do
    redis.call('ZREM', K.delayed, id)
    local jk = base .. id
    local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
    if priority > 0 then
      push_prioritized(id, priority)
    else
      redis.call('LPUSH', paused and K.paused or K.wait, id)
    end
    redis.call('HSET', jk, 'delay', 0)
    emit(maxlen, 'waiting', 'jobId', id, 'prev', 'delayed')
  end
  if not paused then
    wake_now()
  end
end

-- Appends the names of every key a job owns to `keys`; returns `keys`.
local function job_keys(id, keys)
  local jk = base .. id
  local n = #keys
  keys[n + 1] = jk
  keys[n + 2] = jk .. ':logs'
  keys[n + 3] = jk .. ':dependencies'
  keys[n + 4] = jk .. ':processed'
  keys[n + 5] = jk .. ':failed'
  keys[n + 6] = jk .. ':unsuccessful'
  keys[n + 7] = jk .. ':lock'
  return keys
end

local function remove_job_keys(id)
  redis.call('DEL', unpack(job_keys(id, {})))
end

-- Takes up to `count` jobs: wait (FIFO) before prioritized. Returns
-- {rate_limit_ttl_ms, next_delayed_due_ms, n, id, token, fields, ...}.
local function fetch_jobs(now, count, token_prefix, lock_ms, lim_max, lim_dur, worker_name)
  local maxlen = max_events()
  promote_delayed(now, maxlen)
  local out = {0, 0, 0}
  local m = meta()
  -- The worker's own limiter wins; the queue's (meta) applies otherwise.
  if not (lim_max > 0 and lim_dur > 0) then
    lim_max = tonumber(m[3]) or 0
    lim_dur = tonumber(m[4]) or 0
  end
  local limited = lim_max > 0 and lim_dur > 0
  local used = 0
  if limited then
    used = tonumber(redis.call('GET', K.limiter)) or 0
    if used >= lim_max then
      local ttl = redis.call('PTTL', K.limiter)
      if ttl > 0 then
        out[1] = ttl
        out[2] = next_delayed_due()
        return out
      end
      -- a counter without a TTL limits nothing: start a new window
      redis.call('DEL', K.limiter)
      used = 0
    end
  end
  if m[1] then
    out[2] = next_delayed_due()
    return out
  end
  local conc = tonumber(m[2])
  local now_s = int_str(now)
  local lock_s = int_str(lock_ms)
  -- Without a global concurrency or rate limit every job can be taken at
  -- once: three commands for the batch instead of an RPOPLPUSH per job.
  -- Taken tail first and pushed to active's head, as RPOPLPUSH would.
  local batch = {}
  if count > 0 and not conc and not limited then
    local ids = redis.call('LRANGE', K.wait, -count, -1)
    for j = #ids, 1, -1 do
      batch[#batch + 1] = ids[j]
    end
    if #batch > 0 then
      redis.call('LTRIM', K.wait, 0, -#batch - 1)
      redis.call('LPUSH', K.active, unpack(batch))
    end
  end
  local n = 0
  local b = 0
  local i = 0
  local exhausted = false
  while b < #batch or n < count do
    local id
    if b < #batch then
      b = b + 1
      id = batch[b]
    else
      i = i + 1
      if i > count + 16 then break end
      if conc and redis.call('LLEN', K.active) >= conc then break end
      if limited and used >= lim_max then
        out[1] = math.max(redis.call('PTTL', K.limiter), 1)
        break
      end
      id = redis.call('RPOPLPUSH', K.wait, K.active)
      if not id then
        local p = redis.call('ZPOPMIN', K.prioritized)
        if p[1] then
          id = p[1]
          redis.call('LPUSH', K.active, id)
          if redis.call('ZCARD', K.prioritized) == 0 then
            redis.call('DEL', K.pc)
          end
        end
      end
      if not id then
        exhausted = true
        break
      end
    end
    local jk = base .. id
    local fields = {}
    if string.sub(id, 1, 2) ~= '0:' then
      fields = redis.call('HGETALL', jk)
    end
    if #fields == 0 then
      -- a legacy marker or a job removed while waiting: drop the entry
      redis.call('LREM', K.active, -1, id)
    else
      if limited then
        used = redis.call('INCR', K.limiter)
        if used == 1 then
          redis.call('PEXPIRE', K.limiter, lim_dur)
        end
      end
      n = n + 1
      local token = token_prefix .. ':' .. n
      redis.call('SET', jk .. ':lock', token, 'PX', lock_s)
      emit(maxlen, 'active', 'jobId', id, 'prev', 'waiting')
      -- attemptsStarted from the fields just read: one HSET instead of HINCRBY too
      local ats = 1
      for f = 1, #fields, 2 do
        if fields[f] == 'ats' then
          ats = (tonumber(fields[f + 1]) or 0) + 1
          break
        end
      end
      if worker_name ~= '' then
        redis.call('HSET', jk, 'processedOn', now_s, 'ats', ats, 'pb', worker_name)
      else
        redis.call('HSET', jk, 'processedOn', now_s, 'ats', ats)
      end
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = fields
    end
  end
  out[3] = n
  -- Wake other workers only when jobs may remain; an emptied queue needs no
  -- marker (the next add writes one), and re-adding it cost every worker a
  -- wasted wake-up and an empty fetch per job at low rates.
  if n > 0 and not exhausted then
    wake_now()
  end
  if n < count then
    out[2] = next_delayed_due()
  end
  return out
end

-- Jobs leave the stalled set when they finish; the set is empty unless a
-- stall sweep is in progress, so one SCARD per call saves an SREM per job.
-- Only our own SREMs change the set during a script, so "empty" stays true.
local stalled_empty = nil
local function forget_stalled(id)
  if stalled_empty == nil then
    stalled_empty = redis.call('SCARD', K.stalled) == 0
  end
  if not stalled_empty then
    redis.call('SREM', K.stalled, id)
  end
end

-- Checks that we still own the job, leaving its lock in place for the
-- caller to delete (possibly with the job's other keys); returns 0 or
-- BullMQ's error code (-1 missing job, -2 missing lock, -6 lock held by
-- someone else). Token '0' means the job was taken without a lock. `lock`
-- is the lock's value if the caller read it already (false: no lock).
local function check_lock(id, token, lock)
  local jk = base .. id
  if token ~= '0' then
    -- A job cannot be removed while locked, so our lock implies the job.
    if lock == nil then
      lock = redis.call('GET', jk .. ':lock')
    end
    if not lock then
      return redis.call('EXISTS', jk) == 0 and -1 or -2
    end
    if lock ~= token then return -6 end
  elseif redis.call('EXISTS', jk) == 0 then
    return -1
  end
  forget_stalled(id)
  return 0
end

-- check_lock, then releases the lock.
local function take_lock(id, token)
  local code = check_lock(id, token, nil)
  if code == 0 and token ~= '0' then
    redis.call('DEL', base .. id .. ':lock')
  end
  return code
end

-- The ARGV slice [from, from + 2n) as field/value pairs, followed by the
-- extra pairs given, all for one HSET.
local function field_args(from, n, ...)
  local args = {}
  for j = from, from + 2 * n - 1 do
    args[#args + 1] = ARGV[j]
  end
  for _, v in ipairs({...}) do
    args[#args + 1] = v
  end
  return args
end

-- Appends the fetch result after a finish code: {code, fetch...}.
local function with_fetch(code, now, fetch_from)
  local count = tonumber(ARGV[fetch_from])
  if code ~= 0 or count == 0 then
    return {code, 0, 0, 0}
  end
  local r = fetch_jobs(now, count, ARGV[fetch_from + 1], tonumber(ARGV[fetch_from + 2]),
                       tonumber(ARGV[fetch_from + 3]), tonumber(ARGV[fetch_from + 4]),
                       ARGV[fetch_from + 5])
  table.insert(r, 1, code)
  return r
end

-- ---- job schedulers (BullMQ's layout: ZSET repeat, HASH repeat:<id>) ----

-- The scheduler's template as a table (false when it does not exist).
local function sched_template(sid)
  local f = redis.call('HGETALL', base .. 'repeat:' .. sid)
  if #f == 0 then
    return false
  end
  local t = {}
  for i = 1, #f, 2 do
    t[f[i]] = f[i + 1]
  end
  return t
end

-- True while the job of a slot is still to run or running.
local function sched_job_pending(jid)
  local jk = base .. jid
  return redis.call('EXISTS', jk) == 1 and redis.call('HEXISTS', jk, 'finishedOn') == 0
end

-- Creates the job of slot `slot` (ms) for scheduler sid from its template,
-- as Node's scheduler does: id repeat:<sid>:<slot>, rjk, opts with repeat
-- {every|pattern, tz, count}, repeatJobKey, jobId, timestamp, delay, and
-- prevMillis for cron. Delayed until its slot, or ready when it is due.
-- An existing job of that slot is left alone. Returns the job id.
local function sched_make_job(sid, tpl, slot, now, count)
  local jid = 'repeat:' .. sid .. ':' .. int_str(slot)
  local jk = base .. jid
  if redis.call('EXISTS', jk) == 1 then
    return jid
  end
  local opts = {}
  if tpl.opts and tpl.opts ~= '' then
    local ok, decoded = pcall(cjson.decode, tpl.opts)
    if ok and type(decoded) == 'table' then
      opts = decoded
    end
  end
  local rep = {count = count}
  if tpl.every then
    rep.every = tonumber(tpl.every)
  else
    rep.pattern = tpl.pattern
    if tpl.tz then
      rep.tz = tpl.tz
    end
    opts.prevMillis = slot
  end
  opts['repeat'] = rep
  opts.repeatJobKey = sid
  opts.jobId = jid
  opts.timestamp = now
  local delay = slot - now
  if delay < 0 then
    delay = 0
  end
  opts.delay = delay
  local name = tpl.name or ''
  redis.call('INCR', K.id)
  redis.call('HSET', jk, 'name', name, 'data', tpl.data or '{}', 'opts', cjson.encode(opts),
             'timestamp', int_str(now), 'delay', int_str(delay), 'priority', 0, 'rjk', sid)
  local maxlen = max_events()
  emit(maxlen, 'added', 'jobId', jid, 'name', name)
  if delay > 0 then
    delay_until(jid, slot, maxlen)
  else
    enqueue_ready(jid, 0, false, nil, maxlen)
  end
  return jid
end

-- Takes a slot's job out of the queue when nobody runs it yet.
local function sched_drop_pending(jid)
  local n = redis.call('ZREM', K.delayed, jid) + redis.call('LREM', K.wait, 0, jid) +
              redis.call('LREM', K.paused, 0, jid) + redis.call('ZREM', K.prioritized, jid)
  if n > 0 then
    remove_job_keys(jid)
    emit(max_events(), 'removed', 'jobId', jid, 'prev', 'delayed')
  end
end
