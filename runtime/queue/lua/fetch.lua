-- fetch: wait/prioritized -> active for up to COUNT jobs (BullMQ's
-- moveToActive, batched). Promotes due delayed jobs first and honours
-- meta.paused, meta.concurrency and the rate limiter.
-- ARGV: base, now, count, token_prefix, lock_ms, limiter_max, limiter_ms, worker_name
-- Returns {rate_limit_ttl, next_delayed_due, n, id, token, fields, ...}.
return fetch_jobs(tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]),
                  tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8])
