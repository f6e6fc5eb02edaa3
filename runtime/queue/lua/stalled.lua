-- stalled: the two-phase stall sweep (BullMQ's moveStalledJobsToWait).
-- Jobs marked as suspects by the previous sweep whose lock has expired go
-- back to the head of wait; a job stalled more than max_stalled times gets
-- `defa` so the next worker fails it. Then every active job becomes a
-- suspect until its owner renews the lock.
-- ARGV: base, now, max_stalled, interval_ms
-- Returns the recovered ids ({} also when another worker swept recently).
local now = tonumber(ARGV[2])
local max_stalled = tonumber(ARGV[3])
local interval = tonumber(ARGV[4])
if redis.call('EXISTS', K.stalled_check) == 1 then
  return {}
end
redis.call('SET', K.stalled_check, now, 'PX', interval)
local maxlen = max_events()
redis.call('XTRIM', K.events, 'MAXLEN', '~', maxlen)

local recovered = {}
local paused = queue_state()
for _, id in ipairs(redis.call('SMEMBERS', K.stalled)) do
  local jk = base .. id
  if redis.call('EXISTS', jk .. ':lock') == 0 and redis.call('LREM', K.active, 1, id) > 0 then
    if redis.call('EXISTS', jk) == 1 then
      local stc = redis.call('HINCRBY', jk, 'stc', 1)
      local rjk = redis.call('HGET', jk, 'rjk')
      local scheduled = rjk and redis.call('EXISTS', base .. 'repeat:' .. rjk) == 1
      if stc > max_stalled and not scheduled then
        redis.call('HSET', jk, 'defa', 'job stalled more than allowable limit')
      end
      redis.call('RPUSH', paused and K.paused or K.wait, id)
      emit(maxlen, 'waiting', 'jobId', id, 'prev', 'active')
      emit(maxlen, 'stalled', 'jobId', id)
      recovered[#recovered + 1] = id
    end
  end
end
if #recovered > 0 and not paused then
  wake_now()
end

redis.call('DEL', K.stalled)
local active = redis.call('LRANGE', K.active, 0, -1)
for i = 1, #active, 1000 do
  redis.call('SADD', K.stalled, unpack(active, i, math.min(i + 999, #active)))
end
return recovered
