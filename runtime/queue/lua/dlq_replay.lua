-- dlq_replay: `nova-worker queue replay`: dead letters back onto their
-- queue. Per dead letter, in this one atomic call: a new job is added to
-- the target queue exactly as Node's Queue.add would add it (id counter,
-- hash fields name/data/opts/timestamp/delay/priority, `added` and
-- `waiting` events, the marker; paused queues get it in `paused`), then
-- the dead letter is removed from the dead-letter queue as Node's
-- Job.remove would (its keys deleted, `removed` on that queue's events).
-- A crash can never lose a dead letter nor add its replacement twice.
-- The new id is <stem>-replay-<n>, the first n not used in the target.
--
-- KEYS: target meta, dead-letter queue meta.
-- ARGV: base (the target's), now, dlq_base, dry ('1': only say what would
--       happen), name, opts_json (without jobId), then per dead letter:
--       id, its data as read (the call refuses it if it changed since),
--       the new job's data, id stem.
-- Returns per dead letter {id, status, new_id, detail}: status 'replayed'
-- (detail = the state it left), 'dry', 'missing', 'not-dead-letter'
-- (detail = its name), 'changed', 'locked', 'no-free-id'.
local now = ARGV[2]
local dbase = ARGV[3]
local dry = ARGV[4] == '1'
local name = ARGV[5]
local opts_tpl = ARGV[6]
local maxlen = max_events()
local dmaxlen = tonumber(redis.call('HGET', KEYS[2], 'opts.maxLenEvents')) or 10000
local DSTATES = {
  {'wait', 'wait', true}, {'paused', 'paused', true}, {'active', 'active', true},
  {'prioritized', 'prioritized'}, {'delayed', 'delayed'}, {'completed', 'completed'},
  {'failed', 'failed'}, {'waiting-children', 'waiting-children'},
}

local function free_id(stem)
  for n = 1, 1000 do
    local cand = stem .. '-replay-' .. n
    if redis.call('EXISTS', base .. cand) == 0 then
      return cand
    end
  end
  return nil
end

local function add_job(id, data)
  redis.call('INCR', K.id)
  local opts = cjson.decode(opts_tpl)
  opts.jobId = id
  redis.call('HSET', base .. id, 'name', name, 'data', data, 'opts', cjson.encode(opts),
             'timestamp', now, 'delay', 0, 'priority', 0)
  emit(maxlen, 'added', 'jobId', id, 'name', name)
  enqueue_ready(id, 0, false, nil, maxlen)
end

-- The dead letter leaves every state key holding it; the first one named.
local function remove_dead_letter(id)
  local prev = nil
  for _, s in ipairs(DSTATES) do
    local n
    if s[3] then
      n = redis.call('LREM', dbase .. s[2], 0, id)
    else
      n = redis.call('ZREM', dbase .. s[2], id)
    end
    if n > 0 and not prev then
      prev = s[1]
    end
  end
  prev = prev or 'unknown'
  if prev == 'active' then
    redis.call('SREM', dbase .. 'stalled', id)
  end
  local jk = dbase .. id
  local deid = redis.call('HGET', jk, 'deid')
  if deid and redis.call('GET', dbase .. 'de:' .. deid) == id then
    redis.call('DEL', dbase .. 'de:' .. deid)
  end
  redis.call('DEL', jk, jk .. ':logs', jk .. ':dependencies', jk .. ':processed',
             jk .. ':failed', jk .. ':unsuccessful')
  redis.call('XADD', dbase .. 'events', 'MAXLEN', '~', dmaxlen, '*', 'event', 'removed',
             'jobId', id, 'prev', prev)
  return prev
end

local out = {}
for i = 7, #ARGV, 4 do
  local id, seen, data, stem = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = dbase .. id
  local h = redis.call('HMGET', jk, 'name', 'data')
  local status, new_id, detail = '', '', ''
  if not h[1] then
    status = 'missing'
  elseif h[1] ~= 'dead-letter' then
    status, detail = 'not-dead-letter', h[1]
  elseif h[2] ~= seen then
    status = 'changed'
  elseif redis.call('EXISTS', jk .. ':lock') == 1 then
    status = 'locked'
  else
    new_id = free_id(stem)
    if not new_id then
      status, new_id = 'no-free-id', ''
    elseif dry then
      status = 'dry'
    else
      add_job(new_id, data)
      detail = remove_dead_letter(id)
      status = 'replayed'
    end
  end
  out[#out + 1] = id
  out[#out + 1] = status
  out[#out + 1] = new_id
  out[#out + 1] = detail
end
return out
