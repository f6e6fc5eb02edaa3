-- add: create a job (BullMQ's addStandardJob/addDelayedJob/
-- addPrioritizedJob). The id counter is incremented on every add, as Node
-- does, even for custom ids and duplicates.
-- ARGV: base, now, name, data, opts_json, custom_id ("" = auto), delay_ms,
--       priority, lifo ("1"|"0")
-- Returns {id, duplicated (0|1)}.
local now = tonumber(ARGV[2])
local name = ARGV[3]
local delay = tonumber(ARGV[7])
local priority = tonumber(ARGV[8])
local counter = redis.call('INCR', K.id)
local id = ARGV[6]
if id == '' then
  id = tostring(counter)
end
local jk = base .. id
local maxlen = max_events()
if redis.call('EXISTS', jk) == 1 then
  emit(maxlen, 'duplicated', 'jobId', id)
  return {id, 1}
end
redis.call('HSET', jk, 'name', name, 'data', ARGV[4], 'opts', ARGV[5], 'timestamp', now,
           'delay', delay, 'priority', priority)
emit(maxlen, 'added', 'jobId', id, 'name', name)
if delay > 0 then
  delay_until(id, now + delay, maxlen)
else
  enqueue_ready(id, priority, ARGV[9] == '1', nil, maxlen)
end
return {id, 0}
