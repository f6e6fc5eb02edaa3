-- job_remove: `nova-worker queue remove` and `queue clean`, with the
-- effects of Node's Job.remove and Queue.clean (BullMQ 5.81): the job
-- leaves its state's key, its hash and its :logs, :dependencies,
-- :processed, :failed and :unsuccessful keys are deleted, a deduplication
-- id it owns is released; remove emits `removed` (jobId, prev = the key it
-- left: wait, paused, active, delayed, prioritized, completed, failed,
-- waiting-children), clean emits one `cleaned` (count) per call.
-- A job is left alone while a worker holds its lock, when it is the
-- pending run of a job scheduler, and when it belongs to an unfinished
-- flow (children still pending, or itself a pending child): Node's
-- Job.remove handles flows.
--
-- ARGV: base, 'ids', id...
--   Returns {id, status, detail, ...}: status 'removed' (detail = prev),
--   'missing', 'locked', 'scheduler' (detail = scheduler id), 'children'
--   (detail = pending children), 'flow' (detail = parent key).
-- ARGV: base, 'clean', state, cutoff_ms, start, window, cap
--   state: completed|failed (by finishedOn, the set's score), delayed|
--   prioritized|wait|paused|active (by finishedOn, processedOn or
--   timestamp, the first the job has). Looks at up to `window` entries
--   from index `start` (completed/failed: the oldest entries up to the
--   cutoff) and removes up to `cap` whose time is <= cutoff_ms.
--   Returns {fetched, scanned, removed, skipped, id...}: entries read,
--   entries looked at (fewer when cap was reached), removed and left
--   alone among them, then the ids removed.
local maxlen = max_events()
local STATES = {
  {'wait', K.wait, true}, {'paused', K.paused, true}, {'active', K.active, true},
  {'prioritized', K.prioritized}, {'delayed', K.delayed}, {'completed', K.completed},
  {'failed', K.failed}, {'waiting-children', base .. 'waiting-children'},
}

-- Takes the id out of whatever state key holds it; the first such state.
local function take_out(id)
  local prev = nil
  for _, s in ipairs(STATES) do
    local n
    if s[3] then
      n = redis.call('LREM', s[2], 0, id)
    else
      n = redis.call('ZREM', s[2], id)
    end
    if n > 0 and not prev then
      prev = s[1]
    end
  end
  if prev == 'active' then
    redis.call('SREM', K.stalled, id)
  end
  return prev or 'unknown'
end

-- Why the job must stay (and a detail), or nil. h: rjk, parentKey.
local function blocker(id, jk, h)
  if redis.call('EXISTS', jk .. ':lock') == 1 then
    return 'locked', ''
  end
  if h[1] then
    local slot = redis.call('ZSCORE', base .. 'repeat', h[1])
    if slot and id == 'repeat:' .. h[1] .. ':' .. slot then
      return 'scheduler', h[1]
    end
  end
  local deps = redis.call('SCARD', jk .. ':dependencies')
  if deps > 0 then
    return 'children', tostring(deps)
  end
  if h[2] and not redis.call('ZSCORE', K.completed, id) and
      not redis.call('ZSCORE', K.failed, id) then
    return 'flow', h[2]
  end
  return nil
end

-- Deletes the job's keys and releases its deduplication id.
local function drop(id, jk, deid)
  if deid then
    local dk = base .. 'de:' .. deid
    if redis.call('GET', dk) == id then
      redis.call('DEL', dk)
    end
  end
  redis.call('DEL', jk, jk .. ':logs', jk .. ':dependencies', jk .. ':processed',
             jk .. ':failed', jk .. ':unsuccessful')
end

if ARGV[2] == 'ids' then
  local out = {}
  for i = 3, #ARGV do
    local id = ARGV[i]
    local jk = base .. id
    local status, detail
    if redis.call('EXISTS', jk) == 0 then
      status, detail = 'missing', ''
    else
      local h = redis.call('HMGET', jk, 'rjk', 'parentKey', 'deid')
      status, detail = blocker(id, jk, h)
      if not status then
        detail = take_out(id)
        drop(id, jk, h[3])
        emit(maxlen, 'removed', 'jobId', id, 'prev', detail)
        status = 'removed'
      end
    end
    out[#out + 1] = id
    out[#out + 1] = status
    out[#out + 1] = detail
  end
  return out
end

if ARGV[2] ~= 'clean' then
  return redis.error_reply('job_remove: unknown mode ' .. tostring(ARGV[2]))
end
local state = ARGV[3]
local cutoff = tonumber(ARGV[4])
local start = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local key, is_list
for _, s in ipairs(STATES) do
  if s[1] == state then
    key, is_list = s[2], s[3]
  end
end
if not key or state == 'waiting-children' then
  return redis.error_reply('job_remove: cannot clean state ' .. tostring(state))
end
local removed = {}
local fetched, scanned, skipped = 0, 0, 0

if state == 'completed' or state == 'failed' then
  -- the score is finishedOn: everything in range goes
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', int_str(cutoff), 'LIMIT', 0, cap)
  for _, id in ipairs(ids) do
    local jk = base .. id
    redis.call('ZREM', key, id)
    drop(id, jk, redis.call('HGET', jk, 'deid'))
    removed[#removed + 1] = id
  end
  fetched, scanned = #ids, #ids
else
  local ids
  if is_list then
    ids = redis.call('LRANGE', key, start, start + window - 1)
  else
    ids = redis.call('ZRANGE', key, start, start + window - 1)
  end
  fetched = #ids
  -- list entries are replaced by a marker and removed together at the end
  local gone = '__nova_cleaned__'
  for i, id in ipairs(ids) do
    if #removed >= cap then
      break
    end
    scanned = i
    local jk = base .. id
    local h = redis.call('HMGET', jk, 'rjk', 'parentKey', 'deid', 'finishedOn', 'processedOn',
                         'timestamp')
    local ts = tonumber(h[4]) or tonumber(h[5]) or tonumber(h[6])
    if not ts or ts <= cutoff then
      if ts and blocker(id, jk, h) then
        skipped = skipped + 1
      else
        if is_list then
          redis.call('LSET', key, start + i - 1, gone)
        else
          redis.call('ZREM', key, id)
        end
        if state == 'active' then
          redis.call('SREM', K.stalled, id)
        end
        drop(id, jk, h[3])
        removed[#removed + 1] = id
      end
    end
  end
  if is_list and #removed > 0 then
    redis.call('LREM', key, 0, gone)
  end
end
-- like Node's Queue.clean, also when nothing was old enough
emit(maxlen, 'cleaned', 'count', #removed)
local out = {fetched, scanned, #removed, skipped}
for _, id in ipairs(removed) do
  out[#out + 1] = id
end
return out
