-- settle: report the outcomes of several jobs in one call, then fetch more
-- jobs in the same call. Per job this is BullMQ's moveToFinished
-- (completed/failed) or, for a retry, retryJob (delay 0: back to wait) or
-- moveToDelayed (delay > 0).
-- ARGV: base, now, njobs, then per job 11 + 2*nfields values:
--         id, token, kind ("c" completed | "f" failed | "r" retry), value
--         (returnvalue JSON or failedReason), attempts, keep_count,
--         keep_age_s, keep_limit, delay_ms, lifo ("1"|"0"), nfields,
--         field/value pairs (failedReason, stacktrace, ...)
--       then count, token_prefix, lock_ms, limiter_max, limiter_ms, worker_name.
-- Returns {codes, rate_limit_ttl, next_delayed_due, n, id, token, fields, ...}
-- where codes[i] is 0 or -1 (job missing), -2 (lock missing), -3 (not in
-- active), -6 (lock held by someone else) for the i-th job.
local now = tonumber(ARGV[2])
local njobs = tonumber(ARGV[3])
local maxlen = max_events()

-- A deduplication id is released by its owner unless a TTL governs it.
local function release_dedup(jk, id)
  local deid = redis.call('HGET', jk, 'deid')
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

local function finish(at, id, jk, kind, nfields)
  local target = kind == 'c' and 'completed' or 'failed'
  local field = kind == 'c' and 'returnvalue' or 'failedReason'
  local value = ARGV[at + 3]
  local keep_count = tonumber(ARGV[at + 5])
  set_fields(jk, at + 11, nfields)
  if redis.call('LREM', K.active, -1, id) == 0 then
    return -3
  end
  release_dedup(jk, id)
  local atm = redis.call('HINCRBY', jk, 'atm', 1)
  local set = K[target]
  if keep_count == 0 then
    remove_job_keys(id)
  else
    redis.call('ZADD', set, now, id)
    redis.call('HSET', jk, field, value, 'finishedOn', now)
    prune(set, id, keep_count, tonumber(ARGV[at + 6]), tonumber(ARGV[at + 7]))
  end
  emit(maxlen, target, 'jobId', id, field, value, 'prev', 'active')
  if kind == 'f' and atm >= tonumber(ARGV[at + 4]) then
    emit(maxlen, 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
  end
  return 0
end

local function retry(at, id, jk, nfields)
  local delay = tonumber(ARGV[at + 8])
  if redis.call('LREM', K.active, -1, id) == 0 then
    return -3
  end
  set_fields(jk, at + 11, nfields)
  redis.call('HINCRBY', jk, 'atm', 1)
  if delay > 0 then
    local due = now + delay
    redis.call('HSET', jk, 'delay', delay)
    push_delayed(id, due)
    emit(maxlen, 'delayed', 'jobId', id, 'delay', due)
    local paused, maxed = queue_state()
    if not paused and not maxed then
      wake_at_next_delayed()
    end
  else
    local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
    -- LPUSH puts a job at the back of wait (workers pop the tail); lifo
    -- jobs go to the front, as on add.
    enqueue_ready(id, priority, ARGV[at + 9] == '1', 'active', maxlen)
  end
  return 0
end

local codes = {}
local at = 4
for i = 1, njobs do
  local id = ARGV[at]
  local kind = ARGV[at + 2]
  local nfields = tonumber(ARGV[at + 10])
  local jk = base .. id
  local code = take_lock(id, ARGV[at + 1])
  if code == 0 then
    if kind == 'r' then
      code = retry(at, id, jk, nfields)
    else
      code = finish(at, id, jk, kind, nfields)
    end
  end
  codes[i] = code
  at = at + 11 + 2 * nfields
end

wake_for_freed_slot()
local r = with_fetch(0, now, at)
r[1] = codes
if r[4] == 0 and redis.call('LLEN', K.wait) == 0 and redis.call('LLEN', K.active) == 0
    and redis.call('ZCARD', K.prioritized) == 0 then
  emit(maxlen, 'drained')
end
return r
