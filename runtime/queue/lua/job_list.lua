-- job_list: a page of one state's jobs for `nova-worker queue list`, in
-- the order of Node's Queue.getJobs (newest first: the lists from their
-- head, the sets by descending score).
-- ARGV: base, state (waiting|paused|active|prioritized|delayed|completed|
--       failed|waiting-children), offset, count.
-- Returns {total, then per job: id, name, timestamp, attemptsMade,
-- failedReason, processedOn, finishedOn, priority, due, data} with '' for
-- what the job lacks; due (ms) only for delayed jobs; data only for
-- dead letters (name `dead-letter`: their reason is in it).
local state = ARGV[2]
local from = tonumber(ARGV[3])
local to = from + tonumber(ARGV[4]) - 1
local lists = {waiting = K.wait, paused = K.paused, active = K.active}
local sets = {prioritized = K.prioritized, delayed = K.delayed, completed = K.completed,
              failed = K.failed, ['waiting-children'] = base .. 'waiting-children'}
local total, ids, scores
if lists[state] then
  total = redis.call('LLEN', lists[state])
  ids = redis.call('LRANGE', lists[state], from, to)
elseif sets[state] then
  total = redis.call('ZCARD', sets[state])
  local r = redis.call('ZREVRANGE', sets[state], from, to, 'WITHSCORES')
  ids, scores = {}, {}
  for i = 1, #r, 2 do
    ids[#ids + 1] = r[i]
    scores[#scores + 1] = r[i + 1]
  end
else
  return redis.error_reply('unknown state ' .. state)
end
local out = {total}
for i, id in ipairs(ids) do
  local h = redis.call('HMGET', base .. id, 'name', 'timestamp', 'atm', 'failedReason',
                       'processedOn', 'finishedOn', 'priority', 'data')
  out[#out + 1] = id
  for j = 1, 7 do
    out[#out + 1] = h[j] or ''
  end
  if state == 'delayed' then
    out[#out + 1] = int_str(math.floor(tonumber(scores[i]) / 4096))
  else
    out[#out + 1] = ''
  end
  out[#out + 1] = (h[1] == 'dead-letter' and h[8]) or ''
end
return out
