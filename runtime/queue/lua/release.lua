-- release: give an unfinished job back (shutdown timeout): active -> the
-- head of wait without counting an attempt, like BullMQ's
-- moveJobFromActiveToWait.
-- ARGV: base, id, token. Returns 0 or a take_lock code.
local id = ARGV[2]
local code = take_lock(id, ARGV[3])
if code ~= 0 then
  return code
end
if redis.call('LREM', K.active, -1, id) == 0 then
  return -3
end
local priority = tonumber(redis.call('HGET', base .. id, 'priority')) or 0
enqueue_ready(id, priority, true, 'active', max_events())
return 0
