-- retry_failed: failed -> wait for the given ids, or for up to 1000 of the
-- oldest failed jobs when none is given (like Node's job.retry()).
-- ARGV: base, now, id... Returns the ids moved.
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  ids = redis.call('ZRANGE', K.failed, 0, 999)
end
local maxlen = max_events()
local moved = {}
for _, id in ipairs(ids) do
  if redis.call('ZREM', K.failed, id) == 1 then
    local jk = base .. id
    redis.call('HDEL', jk, 'finishedOn', 'processedOn', 'defa')
    local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
    local paused, maxed = queue_state()
    if priority > 0 then
      push_prioritized(id, priority)
    else
      redis.call('LPUSH', paused and K.paused or K.wait, id)
    end
    emit(maxlen, 'waiting', 'jobId', id, 'prev', 'failed')
    if not paused and not maxed then
      wake_now()
    end
    moved[#moved + 1] = id
  end
end
return moved
