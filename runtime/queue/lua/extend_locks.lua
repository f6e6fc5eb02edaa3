-- extend_locks: renew the locks we hold (BullMQ's extendLock(s)); a
-- renewed job is no longer a stall suspect.
-- ARGV: base, lock_ms, id, token, id, token, ...
-- Returns the ids whose lock is gone or owned by someone else.
local lock_ms = tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV - 1, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lk = base .. id .. ':lock'
  if redis.call('GET', lk) == token then
    redis.call('SET', lk, token, 'PX', lock_ms)
    redis.call('SREM', K.stalled, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
