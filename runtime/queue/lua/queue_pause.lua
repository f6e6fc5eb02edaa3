-- queue_pause: `nova-worker queue pause|resume`, with the effects of
-- Node's Queue.pause and Queue.resume in BullMQ 5: pause sets meta
-- `paused`, moves the wait list to `paused` (where producers add while the
-- queue is paused), deletes the marker so blocked workers stay idle, and
-- emits `paused`; resume moves the list back, clears the flag, writes the
-- marker (now when jobs are ready, else at the next delayed job's due
-- time) and emits `resumed`.
-- ARGV: base, 'pause'|'resume'. Returns 1 when the queue was paused
-- before the call, else 0.
local was = redis.call('HEXISTS', K.meta, 'paused')
local maxlen = max_events()

-- src's jobs to dst: a rename when dst does not exist, as Node does;
-- otherwise src's jobs are appended at dst's tail, where workers take
-- from (they are the ones that waited longer), and none is lost.
local function move_list(src, dst)
  if redis.call('EXISTS', src) == 0 then
    return
  end
  if redis.call('EXISTS', dst) == 0 then
    redis.call('RENAME', src, dst)
    return
  end
  local n = redis.call('LLEN', src)
  for from = 0, n - 1, 1000 do
    redis.call('RPUSH', dst, unpack(redis.call('LRANGE', src, from, from + 999)))
  end
  redis.call('DEL', src)
end

if ARGV[2] == 'pause' then
  move_list(K.wait, K.paused)
  redis.call('HSET', K.meta, 'paused', 1)
  redis.call('DEL', K.marker)
  emit(maxlen, 'paused')
elseif ARGV[2] == 'resume' then
  move_list(K.paused, K.wait)
  redis.call('HDEL', K.meta, 'paused')
  if redis.call('LLEN', K.wait) > 0 or redis.call('ZCARD', K.prioritized) > 0 then
    wake_now()
  else
    wake_at_next_delayed()
  end
  emit(maxlen, 'resumed')
else
  return redis.error_reply('queue_pause: unknown mode ' .. tostring(ARGV[2]))
end
return was
