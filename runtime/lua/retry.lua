-- retry: active -> wait/prioritized (BullMQ's retryJob) when delay is 0,
-- active -> delayed (BullMQ's moveToDelayed) otherwise; then optionally
-- fetch more jobs in the same call.
-- ARGV: base, now, id, token, delay_ms, lifo ("1"|"0"), nfields,
--       field/value pairs..., then the fetch arguments (see finish.lua).
-- Returns {code, fetch result...}.
local now = tonumber(ARGV[2])
local id = ARGV[3]
local delay = tonumber(ARGV[5])
local lifo = ARGV[6] == '1'
local nfields = tonumber(ARGV[7])
local fetch_from = 8 + 2 * nfields
local jk = base .. id

local code = take_lock(id, ARGV[4])
if code ~= 0 then
  return with_fetch(code, now, fetch_from)
end
if redis.call('LREM', K.active, -1, id) == 0 then
  return with_fetch(-3, now, fetch_from)
end
set_fields(jk, 8, nfields)
redis.call('HINCRBY', jk, 'atm', 1)
local maxlen = max_events()
if delay > 0 then
  local due = now + delay
  redis.call('HSET', jk, 'delay', delay)
  push_delayed(id, due)
  emit(maxlen, 'delayed', 'jobId', id, 'delay', due)
  local paused, maxed = queue_state()
  if not paused and not maxed then
    wake_at_next_delayed()
  end
  wake_for_freed_slot()
else
  local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
  -- LPUSH puts a job at the back of wait (workers pop the tail); lifo jobs
  -- go to the front, as on add.
  enqueue_ready(id, priority, lifo, 'active', maxlen)
end
return with_fetch(0, now, fetch_from)
