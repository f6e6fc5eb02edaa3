// Compares what the leaderboard plugin cached in Redis with what Nova's
// own query returns through node-pg (pg 8.22.0, Nova's lockfile), for both
// periods.
//
// usage: node leaderboard_check.js PG_DSN REDIS_URL LIMIT
//
// Nova's warmer (jobs/leaderboardCacheWarmer.js, reference §3.1) stores
// JSON.stringify(rows) of
//   SELECT * FROM (<ranked>) ranked ORDER BY rank LIMIT $1
// Its ORDER BY leaves the order of tied users to the plan, so the check is
//   1. byte for byte: the cached value equals JSON.stringify of Nova's
//      query with the ties ordered by user_id (ORDER BY rank, user_id: the
//      only change), run through node-pg;
//   2. against Nova's query exactly as it is: the same number of rows, the
//      same (total_points, rank) at every position, each tie group wholly
//      inside the list with the same users, and the group cut by the LIMIT
//      made of users of that group;
//   3. both keys expire in 300 s (±2).
// Prints {"weekly": {"rows": N, "cut_tie": bool}, "alltime": {...}}.
'use strict';
const { Client } = require('pg');
const Redis = require('ioredis');

const [dsn, redisUrl, limitText] = process.argv.slice(2);
const limit = Number(limitText);

function ranked(period) {
  const dateFilter = period === 'weekly' ? `AND created_at >= NOW() - INTERVAL '7 days'` : '';
  return `
    SELECT
      user_id,
      SUM(amount) AS total_points,
      RANK() OVER (ORDER BY SUM(amount) DESC) AS rank
    FROM point_transactions
    WHERE type = 'earned' ${dateFilter}
    GROUP BY user_id
  `;
}

function fail(msg) {
  console.error(`leaderboard_check: ${msg}`);
  process.exit(1);
}

async function main() {
  const pg = new Client({ connectionString: dsn });
  await pg.connect();
  const u = new URL(redisUrl);
  const redis = new Redis({ host: u.hostname, port: Number(u.port), lazyConnect: true });
  await redis.connect();
  const out = {};
  for (const period of ['weekly', 'alltime']) {
    const key = `leaderboard:${period}`;
    const cached = await redis.get(key);
    if (cached === null) fail(`${key} is not set`);
    const ttl = await redis.ttl(key);
    if (ttl < 298 || ttl > 300) fail(`${key}: TTL ${ttl}, expected 300 (±2)`);

    const nova = (await pg.query(`SELECT * FROM (${ranked(period)}) ranked ORDER BY rank LIMIT $1`, [limit])).rows;
    const pinned = (await pg.query(`SELECT * FROM (${ranked(period)}) ranked ORDER BY rank, user_id LIMIT $1`, [limit])).rows;
    const all = (await pg.query(`SELECT * FROM (${ranked(period)}) ranked ORDER BY rank, user_id`)).rows;

    // 1. byte for byte
    const want = JSON.stringify(pinned);
    if (cached !== want) {
      let i = 0;
      while (i < cached.length && cached[i] === want[i]) i++;
      fail(`${key} differs from Nova's query at byte ${i}:\n cached: ...${cached.slice(Math.max(0, i - 80), i + 80)}\n nova:   ...${want.slice(Math.max(0, i - 80), i + 80)}`);
    }
    // the types node-pg gives: user_id a number, the others strings
    for (const r of JSON.parse(cached)) {
      if (typeof r.user_id !== 'number' || typeof r.total_points !== 'string' || typeof r.rank !== 'string')
        fail(`${key}: row of the wrong types: ${JSON.stringify(r)}`);
      if (Object.keys(r).join(',') !== 'user_id,total_points,rank') fail(`${key}: keys ${Object.keys(r)}`);
    }

    // 2. Nova's query as it is, ties in whatever order its plan gave
    if (nova.length !== pinned.length) fail(`${key}: Nova's query returns ${nova.length} rows, the cache ${pinned.length}`);
    const members = new Map(); // rank -> user ids of the whole group
    for (const r of all) {
      if (!members.has(r.rank)) members.set(r.rank, new Set());
      members.get(r.rank).add(r.user_id);
    }
    let cutTie = false;
    for (let i = 0; i < nova.length; i++) {
      if (nova[i].rank !== pinned[i].rank || nova[i].total_points !== pinned[i].total_points)
        fail(`${key}: position ${i}: Nova (${nova[i].total_points}, ${nova[i].rank}) vs cache (${pinned[i].total_points}, ${pinned[i].rank})`);
      if (!members.get(nova[i].rank).has(nova[i].user_id)) fail(`${key}: user ${nova[i].user_id} is not of rank ${nova[i].rank}`);
    }
    for (const [rank, ids] of members) {
      const inNova = nova.filter((r) => r.rank === rank).map((r) => r.user_id).sort((a, b) => a - b);
      const inCache = pinned.filter((r) => r.rank === rank).map((r) => r.user_id).sort((a, b) => a - b);
      if (inNova.length !== inCache.length) fail(`${key}: rank ${rank}: ${inNova.length} users in Nova's list, ${inCache.length} cached`);
      if (inNova.length > 0 && inNova.length < ids.size) cutTie = true;
      if (inNova.length === ids.size && inNova.join() !== inCache.join()) fail(`${key}: rank ${rank}: users ${inNova} vs ${inCache}`);
    }
    out[period] = { rows: pinned.length, cut_tie: cutTie, groups: all.length };
  }
  await pg.end();
  redis.disconnect();
  console.log(JSON.stringify(out));
}

main().catch((e) => fail(e.stack || e));
