-- progress: store a job's progress JSON and tell QueueEvents
-- (BullMQ's updateProgress).
-- ARGV: base, id, progress_json. Returns 0, or -1 when the job is gone.
local id = ARGV[2]
local jk = base .. id
if redis.call('EXISTS', jk) == 0 then
  return -1
end
redis.call('HSET', jk, 'progress', ARGV[3])
emit(max_events(), 'progress', 'jobId', id, 'data', ARGV[3])
return 0
