-- settle: report the outcomes of several jobs in one call, then fetch more
-- jobs in the same call. Per job this is BullMQ's moveToFinished
-- (completed/failed) or, for a retry, retryJob (delay 0: back to wait) or
-- moveToDelayed (delay > 0).
-- ARGV: base, now, njobs, then per job 12 + 2*nfields values:
--         id, token, kind ("c" completed | "f" failed | "r" retry), value
--         (returnvalue JSON or failedReason), attempts, keep_count,
--         keep_age_s, keep_limit, delay_ms, lifo ("1"|"0"), known_atm,
--         nfields, field/value pairs (failedReason, stacktrace, ...)
--       known_atm: the job's atm as fetched when its hash had no deid and
--       no parentKey (fields set when a job is added, never after), so
--       finishing needs no read of the hash; "" when it must read them.
--       then count, token_prefix, lock_ms, limiter_max, limiter_ms, worker_name.
-- Returns {codes, rate_limit_ttl, next_delayed_due, n, id, token, fields, ...}
-- where codes[i] is 0 or -1 (job missing), -2 (lock missing), -3 (not in
-- active), -6 (lock held by someone else), -7 (a script error on this job)
-- for the i-th job.
local now = tonumber(ARGV[2])
local njobs = tonumber(ARGV[3])
local maxlen = max_events()
-- Keys to delete in one DEL before the script returns (see the loop below).
local doomed = {}
-- Kept jobs, as ZADD score/member pairs per finished set: one ZADD per set
-- per call, flushed early only when a prune must see them.
local finished = {[K.completed] = {}, [K.failed] = {}}
local function flush_finished(set)
  local z = finished[set]
  if #z > 0 then
    redis.call('ZADD', set, unpack(z))
    finished[set] = {}
  end
end

-- A deduplication id is released by its owner unless a TTL governs it.
local function release_dedup(id, deid)
  if deid then
    local dk = base .. 'de:' .. deid
    if redis.call('PTTL', dk) == -1 and redis.call('GET', dk) == id then
      redis.call('DEL', dk)
    end
  end
end

local function prune(set, id, keep_count, keep_age, keep_limit)
  if keep_limit <= 0 then keep_limit = 1000 end
  if keep_age > 0 then
    local old = redis.call('ZRANGEBYSCORE', set, '-inf', int_str(now - keep_age * 1000),
                           'LIMIT', 0, keep_limit)
    for _, o in ipairs(old) do
      if o ~= id then
        remove_job_keys(o)
        redis.call('ZREM', set, o)
      end
    end
  end
  if keep_count > 0 then
    local extra = redis.call('ZREVRANGE', set, keep_count, keep_count + keep_limit - 1)
    for _, o in ipairs(extra) do
      remove_job_keys(o)
      redis.call('ZREM', set, o)
    end
  end
end

-- The flow parent pid (key pk, queue base pb) leaves waiting-children for
-- the front of its queue's wait (or prioritized, or delayed when it has a
-- delay), as BullMQ moves a parent whose children are done.
local function release_parent(pk, pb, pid)
  if redis.call('ZREM', pb .. 'waiting-children', pid) == 0 then return end
  local pm = redis.call('HMGET', pb .. 'meta', 'paused', 'opts.maxLenEvents')
  local plen = tonumber(pm[2]) or 10000
  local pf = redis.call('HMGET', pk, 'priority', 'delay')
  local prio = tonumber(pf[1]) or 0
  local pdelay = tonumber(pf[2]) or 0
  if pdelay > 0 then
    local due = now + pdelay
    redis.call('ZADD', pb .. 'delayed', int_str(due * 4096), pid)
    redis.call('XADD', pb .. 'events', 'MAXLEN', '~', plen, '*', 'event', 'delayed',
               'jobId', pid, 'delay', due)
    if not pm[1] then
      -- the marker keeps the earliest due time
      local cur = tonumber(redis.call('ZSCORE', pb .. 'marker', '1'))
      if not cur or due < cur then
        redis.call('ZADD', pb .. 'marker', int_str(due), '1')
      end
    end
    return
  end
  if prio > 0 then
    local seq = redis.call('INCR', pb .. 'pc') % 4294967296
    redis.call('ZADD', pb .. 'prioritized', int_str(prio * 4294967296 + seq), pid)
  else
    -- workers take from the tail: RPUSH puts the parent first in line
    redis.call('RPUSH', pm[1] and (pb .. 'paused') or (pb .. 'wait'), pid)
  end
  redis.call('XADD', pb .. 'events', 'MAXLEN', '~', plen, '*', 'event', 'waiting',
             'jobId', pid, 'prev', 'waiting-children')
  if not pm[1] then
    redis.call('ZADD', pb .. 'marker', 0, '0')
  end
end

local function parent_of(jk)
  local ok, parent = pcall(cjson.decode, redis.call('HGET', jk, 'parent') or '')
  if not ok or type(parent) ~= 'table' or type(parent.id) ~= 'string' or
      type(parent.queueKey) ~= 'string' then
    return nil
  end
  return parent
end

-- A completed flow child hands its result to its parent; the last child
-- moves the parent out of waiting-children.
local function update_parent(jk, value, pk)
  if not pk then return end
  local parent = parent_of(jk)
  if not parent then return end
  local deps = pk .. ':dependencies'
  if redis.call('SREM', deps, jk) == 0 then return end
  redis.call('HSET', pk .. ':processed', jk, value)
  if redis.call('SCARD', deps) > 0 then return end
  release_parent(pk, parent.queueKey .. ':', parent.id)
end

-- A flow child failed for good: its parent's policy (BullMQ 5.81, from the
-- child's `parent` field) decides. failParentOnFailure: the parent goes to
-- wait marked to fail (`defa`), the child listed in :unsuccessful;
-- ignoreDependencyOnFailure: the child leaves the dependencies for
-- :failed, and the parent goes on when none are left;
-- removeDependencyOnFailure: the child leaves the dependencies;
-- continueParentOnFailure: the child goes to :failed and the parent goes
-- on at once. Without a policy the parent keeps waiting.
local function fail_parent(jk, reason, pk)
  if not pk then return end
  local parent = parent_of(jk)
  if not parent then return end
  local deps = pk .. ':dependencies'
  local pb = parent.queueKey .. ':'
  if parent.fpof then
    if redis.call('SREM', deps, jk) == 0 then return end
    redis.call('ZADD', pk .. ':unsuccessful', int_str(now), jk)
    redis.call('HSET', pk, 'defa', 'child ' .. jk .. ' failed')
    release_parent(pk, pb, parent.id)
  elseif parent.idof or parent.cpof then
    if redis.call('SREM', deps, jk) == 0 then return end
    redis.call('HSET', pk .. ':failed', jk, reason)
    if parent.cpof or redis.call('SCARD', deps) == 0 then
      release_parent(pk, pb, parent.id)
    end
  elseif parent.rdof then
    if redis.call('SREM', deps, jk) == 0 then return end
    if redis.call('SCARD', deps) == 0 then
      release_parent(pk, pb, parent.id)
    end
  end
end

local function finish(at, id, jk, kind, nfields, token)
  local target = kind == 'c' and 'completed' or 'failed'
  local field = kind == 'c' and 'returnvalue' or 'failedReason'
  local value = ARGV[at + 3]
  local keep_count = tonumber(ARGV[at + 5])
  if redis.call('LREM', K.active, -1, id) == 0 then
    if token ~= '0' then doomed[#doomed + 1] = jk .. ':lock' end
    return -3
  end
  -- attemptsMade as the worker fetched it, or from one read of the hash:
  -- one HSET instead of HINCRBY too, and nothing at all when the job is
  -- removed.
  local atm = tonumber(ARGV[at + 10])
  if atm then
    atm = atm + 1
  else
    local h = redis.call('HMGET', jk, 'deid', 'parentKey', 'atm')
    release_dedup(id, h[1])
    if kind == 'c' then
      update_parent(jk, value, h[2])
    else
      fail_parent(jk, value, h[2])
    end
    atm = (tonumber(h[3]) or 0) + 1
  end
  if kind == 'f' then
    -- a failed job keeps no deferred failure: Job.retry() must run it
    redis.call('HDEL', jk, 'defa')
  end
  local set = K[target]
  if keep_count == 0 then
    job_keys(id, doomed) -- the lock included
  else
    if token ~= '0' then doomed[#doomed + 1] = jk .. ':lock' end
    local z = finished[set]
    z[#z + 1] = ARGV[2]
    z[#z + 1] = id
    redis.call('HSET', jk, unpack(field_args(at + 12, nfields, field, value, 'finishedOn',
                                             ARGV[2], 'atm', atm)))
    local keep_age = tonumber(ARGV[at + 6])
    if keep_count > 0 or keep_age > 0 then
      flush_finished(set)
      prune(set, id, keep_count, keep_age, tonumber(ARGV[at + 7]))
    end
  end
  emit(maxlen, target, 'jobId', id, field, value, 'prev', 'active')
  if kind == 'f' and atm >= tonumber(ARGV[at + 4]) then
    emit(maxlen, 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
  end
  return 0
end

local function retry(at, id, jk, nfields, token)
  local delay = tonumber(ARGV[at + 8])
  if token ~= '0' then doomed[#doomed + 1] = jk .. ':lock' end
  if redis.call('LREM', K.active, -1, id) == 0 then
    return -3
  end
  if nfields > 0 then
    redis.call('HSET', jk, unpack(field_args(at + 12, nfields)))
  end
  redis.call('HINCRBY', jk, 'atm', 1)
  if delay > 0 then
    redis.call('HSET', jk, 'delay', delay)
    delay_until(id, now + delay, maxlen)
  else
    local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
    -- LPUSH puts a job at the back of wait (workers pop the tail); lifo
    -- jobs go to the front, as on add.
    enqueue_ready(id, priority, ARGV[at + 9] == '1', 'active', maxlen)
  end
  return 0
end

-- Every job's lock is read with one MGET, and the keys of finished jobs
-- (locks included) are deleted with one DEL at the end: per job that is two
-- redis.calls fewer, each costing Redis more than the command itself.
local lock_keys = {}
local at = 4
for i = 1, njobs do
  lock_keys[i] = base .. ARGV[at] .. ':lock'
  at = at + 12 + 2 * tonumber(ARGV[at + 11])
end
local locks = njobs > 0 and redis.call('MGET', unpack(lock_keys)) or {}
local function flush_doomed()
  if #doomed > 0 then
    redis.call('DEL', unpack(doomed))
    doomed = {}
  end
end

local codes = {}
local seen = {}
at = 4
for i = 1, njobs do
  local id = ARGV[at]
  local kind = ARGV[at + 2]
  local nfields = tonumber(ARGV[at + 11])
  local jk = base .. id
  local token = ARGV[at + 1]
  local lock = locks[i]
  if seen[id] then
    -- the same job twice in one call: the prefetched lock is stale
    flush_doomed()
    lock = nil
  end
  seen[id] = true
  local code = check_lock(id, token, lock)
  if code == 0 then
    -- one job's error (bad data in its hash) must not stop the others:
    -- -7, and the worker sends that outcome again
    local ok, res
    if kind == 'r' then
      ok, res = pcall(retry, at, id, jk, nfields, token)
    else
      ok, res = pcall(finish, at, id, jk, kind, nfields, token)
    end
    code = ok and res or -7
  end
  codes[i] = code
  at = at + 12 + 2 * nfields
  if #doomed > 3000 then
    flush_doomed()
  end
end
flush_doomed()
flush_finished(K.completed)
flush_finished(K.failed)

wake_for_freed_slot()
local r = with_fetch(0, now, at)
r[1] = codes
if r[4] == 0 and redis.call('LLEN', K.wait) == 0 and redis.call('LLEN', K.active) == 0
    and redis.call('ZCARD', K.prioritized) == 0 then
  emit(maxlen, 'drained')
end
return r
