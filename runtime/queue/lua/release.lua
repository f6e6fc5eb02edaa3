-- release: give a job back without counting an attempt, like BullMQ's
-- moveJobFromActiveToWait: an unfinished job at a shutdown timeout goes to
-- the head of wait (next in line); a job whose name this worker does not
-- handle goes to the end, for the worker that does.
-- ARGV: base, id, token, front ("1", the default | "0").
-- Returns 0 or a take_lock code.
local id = ARGV[2]
local code = take_lock(id, ARGV[3])
if code ~= 0 then
  return code
end
if redis.call('LREM', K.active, -1, id) == 0 then
  return -3
end
local priority = tonumber(redis.call('HGET', base .. id, 'priority')) or 0
enqueue_ready(id, priority, ARGV[4] ~= '0', 'active', max_events())
return 0
