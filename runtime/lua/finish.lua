-- finish: active -> completed/failed (BullMQ's moveToFinished), then
-- optionally fetch more jobs in the same call.
-- ARGV: base, now, id, token, target ("completed"|"failed"), value
--       (returnvalue JSON or failedReason), attempts, keep_count, keep_age_s,
--       keep_limit, nfields, field/value pairs..., then the fetch arguments
--       count, token_prefix, lock_ms, limiter_max, limiter_ms, worker_name.
-- Returns {code, fetch result...}; code 0 or -1/-2/-3/-6.
local now = tonumber(ARGV[2])
local id = ARGV[3]
local target = ARGV[5]
local value = ARGV[6]
local attempts = tonumber(ARGV[7])
local keep_count = tonumber(ARGV[8])
local keep_age = tonumber(ARGV[9])
local keep_limit = tonumber(ARGV[10])
local nfields = tonumber(ARGV[11])
local fetch_from = 12 + 2 * nfields
local jk = base .. id

local code = take_lock(id, ARGV[4])
if code ~= 0 then
  return with_fetch(code, now, fetch_from)
end
set_fields(jk, 12, nfields)
if redis.call('LREM', K.active, -1, id) == 0 then
  return with_fetch(-3, now, fetch_from)
end
-- Every XADD caps the stream (MAXLEN ~), so no separate XTRIM is needed.
local maxlen = max_events()

-- A deduplication id is released by its owner unless a TTL governs it.
local deid = redis.call('HGET', jk, 'deid')
if deid then
  local dk = base .. 'de:' .. deid
  if redis.call('PTTL', dk) == -1 and redis.call('GET', dk) == id then
    redis.call('DEL', dk)
  end
end

local atm = redis.call('HINCRBY', jk, 'atm', 1)
local set = target == 'completed' and K.completed or K.failed
local field = target == 'completed' and 'returnvalue' or 'failedReason'
if keep_count == 0 then
  remove_job_keys(id)
else
  redis.call('ZADD', set, now, id)
  redis.call('HSET', jk, field, value, 'finishedOn', now)
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

emit(maxlen, target, 'jobId', id, field, value, 'prev', 'active')
if target == 'failed' and atm >= attempts then
  emit(maxlen, 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
end

wake_for_freed_slot()

local r = with_fetch(0, now, fetch_from)
if r[4] == 0 and redis.call('LLEN', K.wait) == 0 and redis.call('LLEN', K.active) == 0
    and redis.call('ZCARD', K.prioritized) == 0 then
  emit(maxlen, 'drained')
end
return r
