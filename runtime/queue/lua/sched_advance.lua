-- sched_advance: a worker took the job of slot `slot` of scheduler sid:
-- make the next slot's job before the run starts (Node's worker calls
-- updateJobScheduler at the same point, so Node and nova-worker workers
-- can share a scheduler). The next slot is the first one after both the
-- slot and now: after downtime the overdue job runs once and missed slots
-- are not replayed. `every`: computed here from the template; cron: by
-- the caller from (pattern, tz), which must still be the template's.
-- ARGV: base, now, sid, producer_id, slot, next ('' for every), pattern, tz
-- Returns {'advanced'|'kept', next} | {'gone'} | {'respec', pattern, tz}.
local now = tonumber(ARGV[2])
local sid = ARGV[3]
local producer = ARGV[4]
local slot = tonumber(ARGV[5])
local tpl = sched_template(sid)
if not tpl or not (tpl.every or tpl.pattern) then
  return {'gone'}
end
local nxt
if tpl.every then
  local e = tonumber(tpl.every)
  if not e or e <= 0 then
    return {'gone'}
  end
  nxt = slot + e
  if nxt <= now then
    nxt = slot + (math.floor((now - slot) / e) + 1) * e
  end
else
  if tpl.pattern ~= ARGV[7] or (tpl.tz or '') ~= ARGV[8] or ARGV[6] == '' then
    return {'respec', tpl.pattern, tpl.tz or ''}
  end
  nxt = tonumber(ARGV[6])
end
if tpl.endDate and tonumber(tpl.endDate) and nxt > tonumber(tpl.endDate) then
  return {'gone'}
end
if tpl.limit and tonumber(tpl.limit) and tonumber(tpl.ic or '0') >= tonumber(tpl.limit) then
  return {'gone'}
end
local rk = base .. 'repeat'
local score = tonumber(redis.call('ZSCORE', rk, sid))
local jid
if score and score >= nxt then
  jid = 'repeat:' .. sid .. ':' .. int_str(score)
  redis.call('HSET', base .. producer, 'nrjid', jid)
  return {'kept', int_str(score)}
end
local ic = redis.call('HINCRBY', base .. 'repeat:' .. sid, 'ic', 1)
jid = sched_make_job(sid, tpl, nxt, now, ic)
redis.call('ZADD', rk, int_str(nxt), sid)
redis.call('HSET', base .. producer, 'nrjid', jid)
return {'advanced', int_str(nxt)}
