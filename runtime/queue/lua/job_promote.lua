-- job_promote: `nova-worker queue promote`, with the effects of Node's
-- Job.promote: a delayed job leaves `delayed` for wait (paused when the
-- queue is) or prioritized, its `delay` field becomes 0, `waiting` is
-- emitted with prev=delayed and idle workers are woken.
-- ARGV: base, id... Returns {id, code, ...}: 0 promoted, -1 no such job,
-- -3 the job is not delayed.
local maxlen = max_events()
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local jk = base .. id
  local code = 0
  if redis.call('ZREM', K.delayed, id) == 1 then
    local priority = tonumber(redis.call('HGET', jk, 'priority')) or 0
    enqueue_ready(id, priority, false, 'delayed', maxlen)
    redis.call('HSET', jk, 'delay', 0)
  elseif redis.call('EXISTS', jk) == 0 then
    code = -1
  else
    code = -3
  end
  out[#out + 1] = id
  out[#out + 1] = code
end
return out
