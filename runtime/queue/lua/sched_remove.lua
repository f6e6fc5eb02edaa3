-- sched_remove: removes the schedulers an owner made on this queue that it
-- no longer declares (a schedule taken out of the config), with their
-- pending job. Schedulers of others (Node's, other plugins') stay.
-- ARGV: base, owner, declared ids...
-- Returns the removed ids.
local owner = ARGV[2]
local keep = {}
for i = 3, #ARGV do
  keep[ARGV[i]] = true
end
local rk = base .. 'repeat'
local removed = {}
local members = redis.call('ZRANGE', rk, 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local sid = members[i]
  if not keep[sid] and redis.call('HGET', base .. 'repeat:' .. sid, 'nova') == owner then
    sched_drop_pending('repeat:' .. sid .. ':' .. members[i + 1])
    redis.call('ZREM', rk, sid)
    redis.call('DEL', base .. 'repeat:' .. sid)
    removed[#removed + 1] = sid
  end
end
return removed
