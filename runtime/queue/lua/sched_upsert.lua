-- sched_upsert: keeps one of nova-worker's schedules as a BullMQ job
-- scheduler, as Queue.upsertJobScheduler would, idempotently across a
-- fleet: N workers upserting the same template leave one scheduler and one
-- pending job. A changed template replaces the pending job; a scheduler
-- whose pending job is gone (finished, removed, never made) gets the job
-- of first_slot.
-- ARGV: base, now, sid, name, data, tpl_opts, kind ('every'|'cron'),
--       every_ms|pattern, tz ('' = none), first_slot, owner
-- Returns {'kept'|'created'|'replaced'|'restored', slot}.
local now = tonumber(ARGV[2])
local sid = ARGV[3]
local name, data, tpl_opts = ARGV[4], ARGV[5], ARGV[6]
local every = ARGV[7] == 'every' and ARGV[8] or false
local pattern = ARGV[7] == 'cron' and ARGV[8] or false
local tz = (ARGV[7] == 'cron' and ARGV[9] ~= '') and ARGV[9] or false
local first = tonumber(ARGV[10])
local owner = ARGV[11]
local tk = base .. 'repeat:' .. sid
local rk = base .. 'repeat'

local cur = sched_template(sid)
local same = cur and cur.name == name and (cur.data or '{}') == data and
               (cur.opts or '{}') == tpl_opts and (cur.every or false) == every and
               (cur.pattern or false) == pattern and (cur.tz or false) == tz
local score = redis.call('ZSCORE', rk, sid)
if same and score then
  if sched_job_pending('repeat:' .. sid .. ':' .. score) then
    return {'kept', score}
  end
end
local label = (not cur) and 'created' or (same and 'restored' or 'replaced')
if not same and score then
  sched_drop_pending('repeat:' .. sid .. ':' .. score)
end
redis.call('HDEL', tk, 'every', 'pattern', 'tz', 'data', 'opts', 'startDate', 'endDate', 'limit')
local fields = {'name', name, 'offset', 0, 'nova', owner}
if data ~= '{}' then
  fields[#fields + 1] = 'data'
  fields[#fields + 1] = data
end
if tpl_opts ~= '{}' then
  fields[#fields + 1] = 'opts'
  fields[#fields + 1] = tpl_opts
end
if every then
  fields[#fields + 1] = 'every'
  fields[#fields + 1] = every
else
  fields[#fields + 1] = 'pattern'
  fields[#fields + 1] = pattern
  if tz then
    fields[#fields + 1] = 'tz'
    fields[#fields + 1] = tz
  end
end
redis.call('HSET', tk, unpack(fields))
local ic = redis.call('HINCRBY', tk, 'ic', 1)
sched_make_job(sid, sched_template(sid), first, now, ic)
redis.call('ZADD', rk, int_str(first), sid)
return {label, int_str(first)}
