-- job_info: one job as `nova-worker queue show` prints it. Its state is
-- the key that holds its id, looked up in each state's key as Node's
-- Job.getState does ('paused' for the v5 paused list, 'unknown' when no
-- state holds it).
-- ARGV: base, id. Returns {} when the job has no hash, else
-- {state, locked (0|1), log lines, field, value, field, value, ...}.
local id = ARGV[2]
local jk = base .. id
local fields = redis.call('HGETALL', jk)
if #fields == 0 then
  return {}
end
local state = 'unknown'
local sets = {{'completed', K.completed}, {'failed', K.failed}, {'delayed', K.delayed},
              {'prioritized', K.prioritized}, {'waiting-children', base .. 'waiting-children'}}
for _, s in ipairs(sets) do
  if redis.call('ZSCORE', s[2], id) then
    state = s[1]
    break
  end
end
if state == 'unknown' then
  local lists = {{'active', K.active}, {'waiting', K.wait}, {'paused', K.paused}}
  for _, l in ipairs(lists) do
    if redis.call('LPOS', l[2], id) then
      state = l[1]
      break
    end
  end
end
local out = {state, redis.call('EXISTS', jk .. ':lock'), redis.call('LLEN', jk .. ':logs')}
for i = 1, #fields do
  out[#out + 1] = fields[i]
end
return out
