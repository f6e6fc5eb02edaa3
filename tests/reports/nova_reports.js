// Nova's reportingService, as the Node API runs it, to compare with what the
// reports plugin wrote: the same statements (reference: Nova's
// services/reportingService.js, reports §3.3), run through node-pg 8.22.0
// (Nova's lockfile) with the same filters, and the cache value built the
// way Nova builds it: JSON.stringify({type, generatedAt, params, data}).
//
// usage: node nova_reports.js PG_DSN REDIS_URL check TYPE PARAMS_JSON [--rows FILE] [--ttl N]
//          compares the Redis entry report:<...> byte for byte with Nova's
//          value (generatedAt only for its format and time), checks the TTL
//          (default 300, within 3 s); --rows writes the rows Nova's CSV
//          export would hold (header first, cells as text) as JSON for
//          check_csv.py. Prints {"key":..., "rows":N, "ttl":N}.
//        node nova_reports.js PG_DSN REDIS_URL key TYPE PARAMS_JSON
//          prints Nova's cache key.
//        node nova_reports.js PG_DSN REDIS_URL jobs SPEC_JSON
//          SPEC_JSON: {"generate": [{"type", "params"}...], "bad": [{"data",
//          "reason"}...], "ttl": N}: adds every job at once through bullmq
//          (queue "reports"), waits for them; each generate job must complete
//          with Nova's key in its result and its entry equal Nova's value
//          (as `check`); each bad job must fail with a reason holding
//          `reason`. One line per job.
// Run with TZ=UTC, as Nova's image runs (no TZ set).
'use strict';
const fs = require('fs');
const { Client } = require('pg');
const Redis = require('ioredis');

const [dsn, redisUrl, cmd, type, paramsText, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(name);
  return i < 0 ? undefined : rest[i + 1];
};

function fail(msg) {
  console.error(`nova_reports: ${msg}`);
  process.exit(1);
}

// Nova's cacheKey(): params sorted by key, undefined and null dropped
function cacheKey(t, params = {}) {
  const pairs = Object.keys(params)
    .sort()
    .filter((k) => params[k] !== undefined && params[k] !== null)
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  return `report:${t}${pairs ? ':' + pairs : ''}`;
}

// Nova's generators: a filter per truthy param, $n in push order
const generators = {
  async user(q, params) {
    const { startDate, endDate } = params;
    const conds = ['is_deleted = FALSE'];
    const vals = [];
    let i = 1;
    if (startDate) { conds.push(`created_at >= $${i++}`); vals.push(startDate); }
    if (endDate) { conds.push(`created_at <= $${i++}`); vals.push(endDate); }
    const where = `WHERE ${conds.join(' AND ')}`;
    const [totals, referrals] = await Promise.all([
      q(`SELECT COUNT(*) AS total_users,
                COUNT(*) FILTER (WHERE created_at >= NOW() - INTERVAL '30 days') AS new_last_30d
         FROM users ${where}`, vals),
      q(`SELECT COUNT(*) AS total_referrals
         FROM users
         WHERE referred_by IS NOT NULL ${startDate ? 'AND created_at >= $1' : ''} ${endDate ? `AND created_at <= $${startDate ? 2 : 1}` : ''}`, vals),
    ]);
    return { ...totals.rows[0], ...referrals.rows[0] };
  },
  async campaign(q, params) {
    const { merchantId, startDate, endDate } = params;
    const conds = [];
    const vals = [];
    let i = 1;
    if (merchantId) { conds.push(`c.merchant_id = $${i++}`); vals.push(merchantId); }
    if (startDate) { conds.push(`c.created_at >= $${i++}`); vals.push(startDate); }
    if (endDate) { conds.push(`c.created_at <= $${i++}`); vals.push(endDate); }
    const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
    const r = await q(
      `SELECT c.id, c.name, c.reward_rate, c.start_date, c.end_date, c.is_active,
              COUNT(t.id) AS transaction_count,
              COALESCE(SUM(t.amount), 0) AS total_distributed
       FROM campaigns c
       LEFT JOIN transactions t ON t.campaign_id = c.id AND t.tx_type = 'distribution'
       ${where}
       GROUP BY c.id
       ORDER BY c.created_at DESC`, vals);
    return r.rows;
  },
  async transaction(q, params) {
    const { merchantId, startDate, endDate, txType } = params;
    const conds = [];
    const vals = [];
    let i = 1;
    if (merchantId) { conds.push(`merchant_id = $${i++}`); vals.push(merchantId); }
    if (startDate) { conds.push(`created_at >= $${i++}`); vals.push(startDate); }
    if (endDate) { conds.push(`created_at <= $${i++}`); vals.push(endDate); }
    if (txType) { conds.push(`tx_type = $${i++}`); vals.push(txType); }
    const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
    const [summary, rows] = await Promise.all([
      q(`SELECT tx_type, COUNT(*) AS count, COALESCE(SUM(amount), 0) AS total_amount
         FROM transactions ${where}
         GROUP BY tx_type`, vals),
      q(`SELECT * FROM transactions ${where} ORDER BY created_at DESC LIMIT 500`, vals),
    ]);
    return { summary: summary.rows, transactions: rows.rows };
  },
  async revenue(q, params) {
    const { startDate, endDate } = params;
    const conds = [`tx_type IN ('distribution', 'redemption')`];
    const vals = [];
    let i = 1;
    if (startDate) { conds.push(`t.created_at >= $${i++}`); vals.push(startDate); }
    if (endDate) { conds.push(`t.created_at <= $${i++}`); vals.push(endDate); }
    const r = await q(
      `SELECT m.id AS merchant_id, m.name AS merchant_name,
              COALESCE(SUM(t.amount) FILTER (WHERE t.tx_type = 'distribution'), 0) AS total_distributed,
              COALESCE(SUM(t.amount) FILTER (WHERE t.tx_type = 'redemption'), 0) AS total_redeemed
       FROM transactions t
       JOIN merchants m ON t.merchant_id = m.id
       WHERE ${conds.join(' AND ')}
       GROUP BY m.id, m.name
       ORDER BY total_distributed DESC`, vals);
    const totals = r.rows.reduce((acc, row) => {
      acc.total_distributed += parseFloat(row.total_distributed);
      acc.total_redeemed += parseFloat(row.total_redeemed);
      return acc;
    }, { total_distributed: 0, total_redeemed: 0 });
    return { byMerchant: r.rows, totals };
  },
};

// The rows of Nova's CSV export per type (reportExporter's flatten), cells
// as the plugin writes them: null empty, Date toISOString, objects JSON.
function csvRows(t, data) {
  let rows;
  if (Array.isArray(data)) rows = data;
  else if (t === 'transaction') rows = data.transactions;
  else if (t === 'revenue') rows = data.byMerchant;
  else rows = [data];
  const cell = (v) => {
    if (v === null || v === undefined) return '';
    if (v instanceof Date) return isNaN(v) ? '' : v.toISOString();
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  };
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)])));
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function checkEntry(pg, redis, t, params, wantTtl, rowsOut) {
  const key = cacheKey(t, params);
  const gen = generators[t];
  if (!gen) fail(`unknown type ${t}`);
  const cached = await redis.get(key);
  if (cached === null) fail(`${key} is not in Redis`);
  const ttl = await redis.ttl(key);
  if (ttl > wantTtl || ttl < wantTtl - 3) fail(`${key}: TTL ${ttl}, expected ${wantTtl} (-3)`);
  const data = await gen((sql, vals) => pg.query(sql, vals), params);
  const got = JSON.parse(cached);
  if (typeof got.generatedAt !== 'string' || !ISO.test(got.generatedAt))
    fail(`${key}: generatedAt ${JSON.stringify(got.generatedAt)} is not toISOString()`);
  const age = Date.now() - Date.parse(got.generatedAt);
  if (age < -5000 || age > 600000) fail(`${key}: generatedAt ${got.generatedAt} is ${age} ms old`);
  // Nova's value with the plugin's generatedAt: then byte for byte
  const want = JSON.stringify({ type: t, generatedAt: got.generatedAt, params, data });
  if (cached !== want) {
    let i = 0;
    while (i < cached.length && cached[i] === want[i]) i++;
    fail(`${key} differs from Nova's at byte ${i}:\n cached: ...${cached.slice(Math.max(0, i - 100), i + 100)}\n nova:   ...${want.slice(Math.max(0, i - 100), i + 100)}`);
  }
  const rows = csvRows(t, data);
  if (rowsOut) {
    const header = rows.length > 0 ? Object.keys(rows[0]) : null;
    fs.writeFileSync(rowsOut, JSON.stringify({ header, rows: rows.map((r) => Object.values(r)) }));
  }
  return { key, rows: rows.length, ttl, bytes: cached.length };
}

async function jobs(pg, redis, spec) {
  const { Queue } = require('bullmq');
  const u = new URL(redisUrl);
  const queue = new Queue('reports', { connection: { host: u.hostname, port: Number(u.port) } });
  try {
    const gen = await Promise.all((spec.generate || []).map((g) => queue.add('generate', { type: g.type, params: g.params })));
    const bad = await Promise.all((spec.bad || []).map((b) => queue.add('generate', b.data)));
    const finished = async (job) => {
      const deadline = Date.now() + 60000;
      for (;;) {
        const state = await queue.getJobState(job.id);
        if (state === 'completed' || state === 'failed') {
          const j = await queue.getJob(job.id);
          return { state, returnvalue: j.returnvalue, failedReason: j.failedReason };
        }
        if (Date.now() > deadline) fail(`job ${job.id} not finished after 60 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    for (let i = 0; i < gen.length; i++) {
      const { type: t, params } = spec.generate[i];
      const r = await finished(gen[i]);
      if (r.state !== 'completed') fail(`generate ${t} ${JSON.stringify(params)}: ${r.state} ${r.failedReason}`);
      const res = r.returnvalue;
      const c = await checkEntry(pg, redis, t, params, spec.ttl || 300);
      if (!res || !res.reports || res.reports[0].cacheKey !== c.key || res.reports[0].type !== t)
        fail(`generate ${t} ${JSON.stringify(params)}: result ${JSON.stringify(res)}, Nova's key ${c.key}`);
      console.log(`  ${c.key}: ${c.rows} rows, ${c.bytes} bytes, equal to Nova's`);
    }
    for (let i = 0; i < bad.length; i++) {
      const r = await finished(bad[i]);
      const b = spec.bad[i];
      if (r.state !== 'failed') fail(`${JSON.stringify(b.data)} did not fail: ${JSON.stringify(r)}`);
      if (!String(r.failedReason).includes(b.reason)) fail(`${JSON.stringify(b.data)}: reason ${r.failedReason}`);
      console.log(`  refused ${JSON.stringify(b.data)}: ${r.failedReason}`);
    }
  } finally {
    await queue.close();
  }
}

async function main() {
  if (cmd === 'jobs') {
    const pg = new Client({ connectionString: dsn });
    await pg.connect();
    const u = new URL(redisUrl);
    const redis = new Redis({ host: u.hostname, port: Number(u.port), lazyConnect: true });
    await redis.connect();
    try {
      await jobs(pg, redis, JSON.parse(type));
    } finally {
      await pg.end();
      redis.disconnect();
    }
    return;
  }
  const params = JSON.parse(paramsText || '{}');
  const key = cacheKey(type, params);
  if (cmd === 'key') {
    console.log(key);
    return;
  }
  if (cmd !== 'check') fail(`unknown command ${cmd}`);
  const pg = new Client({ connectionString: dsn });
  await pg.connect();
  const u = new URL(redisUrl);
  const redis = new Redis({ host: u.hostname, port: Number(u.port), lazyConnect: true });
  await redis.connect();
  try {
    const c = await checkEntry(pg, redis, type, params, Number(opt('--ttl') || 300), opt('--rows'));
    console.log(JSON.stringify(c));
  } finally {
    await pg.end();
    redis.disconnect();
  }
}

main().catch((e) => fail(e.stack || e));
