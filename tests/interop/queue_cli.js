// queue_cli.js - `nova-worker queue` against the real bullmq 5.81.x npm
// package: every state change the command makes must leave exactly what
// Node's own call leaves. Two queues are filled identically by Node; one
// is changed by Node (Queue.pause/resume, Job.promote/remove, Queue.clean),
// the other by the command (pause/resume/promote/remove/clean), and after
// each step both queues' keys are compared (timestamps aside), the events
// each step appended too. Node's Queue.getJobCounts/isPaused/getJob/getJobs
// and QueueEvents must see the change, a promoted job must be run by a
// Node Worker, and `queue replay` must turn dead letters into the
// issue-reward jobs Nova's API would add (name, data, options), which a
// Node Worker then runs, the dead-letter queue emptied only as they go.
// Exits non-zero with a message on the first mismatch.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Queue, QueueEvents, Worker, Job } = require('bullmq');

const BIN = path.join(process.env.NOVA_BUILDDIR, 'nova-worker');
const REDIS_SERVER = process.env.NOVA_REDIS_SERVER || 'redis-server';

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let conf;
// The command, -c FILE after it (or before it: `before`). Returns stdout;
// a non-zero exit throws unless `status` says which one to expect.
function cli(args, { status = 0, before = false } = {}) {
  const argv = before ? ['-c', conf, 'queue', ...args] : ['queue', ...args, '-c', conf];
  const r = spawnSync(BIN, argv, { encoding: 'utf8' });
  assert.equal(r.status, status, `nova-worker ${argv.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

// Collects QueueEvents.
function recorder(qe, names) {
  const seen = [];
  for (const n of names) qe.on(n, (args) => seen.push({ event: n, ...args }));
  return {
    seen,
    wait: async (pred, what, ms = 10000) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (seen.some(pred)) return;
        await sleep(20);
      }
      throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(seen)}`);
    },
  };
}

// A queue's keys as comparable data: the queue's name replaced, times
// (timestamp, processedOn, finishedOn, delayed scores, due times) left
// out, and without what workers' timing decides (marker, stalled,
// stalled-check) or what is compared apart (events).
async function dump(redis, q) {
  const pre = `bull:${q}:`;
  const keys = (await redis.keys(`${pre}*`)).sort();
  const out = {};
  const times = new Set(['timestamp', 'processedOn', 'finishedOn']);
  for (const k of keys) {
    const rest = k.slice(pre.length);
    if (['events', 'marker', 'stalled', 'stalled-check'].includes(rest)) continue;
    const t = await redis.type(k);
    let v;
    if (t === 'list') v = await redis.lrange(k, 0, -1);
    else if (t === 'zset') {
      const z = await redis.zrange(k, 0, -1, 'WITHSCORES');
      v = [];
      for (let i = 0; i < z.length; i += 2)
        v.push(rest === 'prioritized' ? `${z[i]}@${z[i + 1]}` : z[i]);
    } else if (t === 'hash') {
      v = await redis.hgetall(k);
      for (const f of Object.keys(v)) if (times.has(f)) v[f] = 'T';
      if (v.opts) v.opts = JSON.parse(v.opts);
    } else if (t === 'string') v = await redis.get(k);
    else if (t === 'set') v = (await redis.smembers(k)).sort();
    else v = t;
    out[`Q:${rest}`] = v;
  }
  return out;
}

// The events appended since `from` (an entry id), times left out.
async function eventsSince(redis, q, from) {
  const entries = await redis.xrange(`bull:${q}:events`, `(${from}`, '+');
  return entries.map(([, f]) => {
    const e = [];
    for (let i = 0; i < f.length; i += 2) e.push(`${f[i]}=${f[i] === 'delay' ? 'T' : f[i + 1]}`);
    return e.join(' ');
  });
}

async function lastEventId(redis, q) {
  const last = await redis.xrevrange(`bull:${q}:events`, '+', '-', 'COUNT', 1);
  return last.length ? last[0][0] : '0-0';
}

// Fills a queue the same way each time: two completed jobs, one failed,
// three waiting (one with log lines), one prioritized, two delayed.
async function fill(connection, name) {
  const q = new Queue(name, { connection });
  await q.add('ok', { n: 1 }, { jobId: 'ok1' });
  await q.add('ok', { n: 2 }, { jobId: 'ok2' });
  await q.add('bad', { n: 3 }, { jobId: 'bad1', attempts: 1 });
  const worker = new Worker(name, null, { connection, autorun: false });
  for (const outcome of ['done', 'done', 'fail']) {
    const job = await worker.getNextJob('tok');
    if (outcome === 'done') await job.moveToCompleted({ ok: true }, 'tok', false);
    else {
      const err = new Error('boom');
      err.stack = 'Error: boom\n    at fill';
      await job.moveToFailed(err, 'tok', false);
    }
  }
  await worker.close();
  await q.add('w', { n: 4 }, { jobId: 'w1' });
  const w2 = await q.add('w', { n: 5 }, { jobId: 'w2' });
  await w2.log('a log line');
  await q.add('w', { n: 6 }, { jobId: 'w3', deduplication: { id: 'dd' } });
  await q.add('p', { n: 7 }, { jobId: 'p1', priority: 3 });
  await q.add('d', { n: 8 }, { jobId: 'd1', delay: 60000 });
  await q.add('d', { n: 9 }, { jobId: 'd2', delay: 60000, priority: 2 });
  await q.add('d', { n: 10 }, { jobId: 'd3', delay: 60000 });
  await q.add('d', { n: 11 }, { jobId: 'd4', delay: 90000 });
  await q.add('p', { n: 12 }, { jobId: 'p2', priority: 1 });
  return q;
}

// One step done by Node on qn and by the command on qc; then both
// queues must hold the same keys and have appended the same events.
async function step(redis, what, nodeOp, cliOp) {
  for (const q of ['qn', 'qc']) await redis.del(`bull:${q}:marker`);
  const fromN = await lastEventId(redis, 'qn');
  const fromC = await lastEventId(redis, 'qc');
  await nodeOp();
  const out = cliOp();
  assert.deepEqual(await dump(redis, 'qc'), await dump(redis, 'qn'), `${what}: keys differ from Node's`);
  assert.deepEqual(await eventsSince(redis, 'qc', fromC), await eventsSince(redis, 'qn', fromN),
    `${what}: events differ from Node's`);
  const markers = await Promise.all(['qn', 'qc'].map((q) => redis.zrange(`bull:${q}:marker`, 0, -1, 'WITHSCORES')));
  assert.deepEqual(markers[1].map((v, i) => (i % 2 && v !== '0' ? 'T' : v)),
    markers[0].map((v, i) => (i % 2 && v !== '0' ? 'T' : v)), `${what}: marker differs from Node's`);
  return out;
}

// A Node Worker waiting on an idle queue: the command's pause keeps it
// from a new job, resume and promote wake it.
async function workerSeesIt(connection) {
  const q = new Queue('qw', { connection });
  const qe = new QueueEvents('qw', { connection });
  await qe.waitUntilReady();
  const ev = recorder(qe, ['completed', 'waiting']);
  const ran = [];
  const w = new Worker('qw', async (job) => { ran.push(job.id); return 1; }, { connection });
  await w.waitUntilReady();
  await q.add('later', {}, { jobId: 'x1', delay: 600000 });
  cli(['pause', 'qw']);
  await q.add('now', {}, { jobId: 'x2' });
  await sleep(1500);
  assert.deepEqual(ran, [], 'a paused queue gave a job to a worker');
  cli(['resume', 'qw']);
  await ev.wait((e) => e.event === 'completed' && e.jobId === 'x2', 'x2 run after resume');
  cli(['promote', 'x1']);
  await ev.wait((e) => e.event === 'completed' && e.jobId === 'x1', 'promoted x1 run by a Node Worker', 5000);
  assert.deepEqual(ran, ['x2', 'x1']);
  await w.close();
  await qe.close();
  await q.close();
}

async function sameAsNode(connection, redis) {
  const qn = await fill(connection, 'qn');
  const qc = await fill(connection, 'qc');
  assert.deepEqual(await dump(redis, 'qc'), await dump(redis, 'qn'), 'the two queues start equal');
  const qe = new QueueEvents('qc', { connection });
  await qe.waitUntilReady();
  const ev = recorder(qe, ['paused', 'resumed', 'waiting', 'removed', 'cleaned', 'added', 'completed']);

  // read commands agree with Node's getters
  const stats = JSON.parse(cli(['stats', 'qc', '--json'])).qc;
  const counts = await qc.getJobCounts();
  for (const s of Object.keys(counts)) assert.equal(stats[s], counts[s], `stats ${s}`);
  const listed = JSON.parse(cli(['list', 'qc', 'completed', '--json']));
  assert.deepEqual(listed.jobs.map((j) => j.id), (await qc.getJobs(['completed'])).map((j) => j.id));
  const waiting = JSON.parse(cli(['list', 'qc', 'waiting', '--limit', '2', '--json']));
  assert.deepEqual(waiting.jobs.map((j) => j.id), (await qc.getJobs(['waiting'], 0, 1)).map((j) => j.id));
  assert.equal(waiting.total, 3);
  const delayed = JSON.parse(cli(['list', 'qc', 'delayed', '--json']));
  assert.deepEqual(delayed.jobs.map((j) => j.id), (await qc.getJobs(['delayed'])).map((j) => j.id));
  const prio = JSON.parse(cli(['list', 'qc', 'prioritized', '--json']));
  assert.deepEqual(prio.jobs.map((j) => j.id), (await qc.getJobs(['prioritized'])).map((j) => j.id));
  const shown = JSON.parse(cli(['show', 'qc', 'bad1', '--json'], { before: true }));
  const bad1 = await Job.fromId(qc, 'bad1');
  assert.equal(shown.state, await bad1.getState());
  assert.equal(shown.failedReason, bad1.failedReason);
  assert.deepEqual(shown.stacktrace, bad1.stacktrace);
  assert.equal(shown.attemptsMade, bad1.attemptsMade);
  assert.equal(shown.finishedOn, new Date(bad1.finishedOn).toISOString());
  assert.deepEqual(shown.data, bad1.data);
  const ok1 = JSON.parse(cli(['show', 'ok1', '--queue', 'qc', '--json']));
  assert.deepEqual(ok1.returnvalue, { ok: true });

  await step(redis, 'pause', () => qn.pause(), () => cli(['pause', 'qc']));
  assert.equal(await qc.isPaused(), true);
  await ev.wait((e) => e.event === 'paused', 'paused');
  for (const q of [qn, qc]) await q.add('late', { n: 10 }, { jobId: 'late1' });
  assert.deepEqual(await dump(redis, 'qc'), await dump(redis, 'qn'), 'add while paused');
  assert.equal((await qc.getJobCounts()).paused, 4);

  await step(redis, 'resume', () => qn.resume(), () => cli(['resume', 'qc', '--json']));
  assert.equal(await qc.isPaused(), false);
  await ev.wait((e) => e.event === 'resumed', 'resumed');

  await step(redis, 'promote',
    async () => (await Job.fromId(qn, 'd1')).promote(),
    () => cli(['promote', 'qc', 'd1'], { before: true }));
  await step(redis, 'promote with priority',
    async () => (await Job.fromId(qn, 'd2')).promote(),
    () => cli(['promote', 'd2', '--queue', 'qc']));
  await ev.wait((e) => e.event === 'waiting' && e.jobId === 'd1' && e.prev === 'delayed', 'waiting d1 prev=delayed');
  assert.equal(await (await Job.fromId(qc, 'd1')).getState(), 'waiting');
  assert.equal((await Job.fromId(qc, 'd1')).delay, 0);
  // promoting a job that is not delayed is refused, as Node refuses it
  await assert.rejects((await Job.fromId(qn, 'w1')).promote());
  cli(['promote', 'qc', 'w1'], { status: 1 });

  for (const id of ['w2', 'p1', 'w3', 'bad1', 'ok2', 'd3']) {
    await step(redis, `remove ${id}`,
      async () => (await Job.fromId(qn, id)).remove(),
      () => cli(['remove', 'qc', id]));
    assert.equal(await Job.fromId(qc, id), undefined);
  }
  await ev.wait((e) => e.event === 'removed' && e.jobId === 'p1' && e.prev === 'prioritized', 'removed p1');
  await ev.wait((e) => e.event === 'removed' && e.jobId === 'bad1' && e.prev === 'failed', 'removed bad1');

  // clean: the rest of the completed jobs, then every waiting job
  await step(redis, 'clean completed',
    () => qn.clean(0, 1000, 'completed'),
    () => cli(['clean', 'qc', 'completed', '--older-than', '0']));
  await ev.wait((e) => e.event === 'cleaned' && e.count === '1', 'cleaned count=1');
  await ev.wait((e) => e.event === 'removed' && e.jobId === 'd3' && e.prev === 'delayed', 'removed d3');
  for (const state of ['delayed', 'prioritized']) {
    await step(redis, `clean ${state}`,
      () => qn.clean(0, 1000, state),
      () => cli(['clean', 'qc', state, '--older-than', '0', '--json']));
  }
  assert.equal((await qc.getJobCounts()).delayed, 0);
  assert.equal((await qc.getJobCounts()).prioritized, 0);
  const before = await qc.getJobCounts();
  await step(redis, 'clean paused (none)',
    () => qn.clean(0, 1000, 'paused'),
    () => cli(['clean', 'qc', 'paused', '--older-than', '0']));
  assert.deepEqual(await qc.getJobCounts(), before);

  await step(redis, 'clean waiting',
    () => qn.clean(0, 1000, 'wait'),
    () => cli(['clean', 'qc', 'waiting', '--older-than', '0']));
  await qe.close();
  await qn.close();
  await qc.close();
}

// The options Nova's API gives reward issuances (jobs/queues.js defaults).
const NOVA_OPTS = {
  attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: false,
};

async function replay(connection, redis) {
  const dlq = new Queue('nova-dlq', { connection });
  const ref = new Queue('ref', { connection, defaultJobOptions: NOVA_OPTS });
  const target = new Queue('nova', { connection });
  const qeT = new QueueEvents('nova', { connection });
  const qeD = new QueueEvents('nova-dlq', { connection });
  await Promise.all([qeT.waitUntilReady(), qeD.waitUntilReady()]);
  const evT = recorder(qeT, ['added', 'waiting']);
  const evD = recorder(qeD, ['removed']);
  const originals = [];
  for (let i = 1; i <= 120; i++) {
    const data = { issuanceId: i, idempotencyKey: `k${i}`, campaignId: 1, walletAddress: `GW${i}`, amount: i % 2 ? '1.5' : 2.25 };
    if (i === 3) delete data.amount;
    originals.push(data);
    // as the reward_issuance plugin (and Nova's Node worker) dead-letter them
    await dlq.add('dead-letter', { ...data, failedReason: `no_trustline: ${i}` });
  }
  await dlq.add('not-a-dead-letter', {});

  const dry = cli(['replay', 'nova-dlq', '--all', '--dry-run']);
  assert.equal(dry.trim().split('\n').length, 120);
  assert.match(dry, /^1 -> 1-replay-1 \{"issuanceId":1,/);
  assert.equal((await dlq.getJobCounts()).waiting, 121, 'dry run changed nothing');
  assert.equal(await redis.exists('bull:nova:id'), 0);

  // one by id, the rest with --all
  const one = cli(['replay', 'nova-dlq', '--to', 'nova', '2']);
  assert.equal(one, '2 -> 2-replay-1\n');
  const all = JSON.parse(cli(['replay', 'nova-dlq', '--all', '--json']));
  assert.equal(all.replayed.length, 119);
  assert.equal(all.errors.length, 0);
  assert.equal(all.dryRun, false);
  const counts = await dlq.getJobCounts();
  assert.equal(counts.waiting, 1, 'only the job that is no dead letter stays');
  assert.equal((await target.getJobCounts()).waiting, 120);
  await evD.wait((e) => e.event === 'removed' && e.jobId === '120' && e.prev === 'wait', 'removed from the DLQ');
  await evT.wait((e) => e.event === 'added' && e.jobId === '120-replay-1' && e.name === 'issue-reward', 'added');

  // each replacement is the job Nova's API would have added
  for (let i = 1; i <= 120; i++) {
    const id = `${i}-replay-1`;
    await ref.add('issue-reward', originals[i - 1], { jobId: id });
    const mine = await redis.hgetall(`bull:nova:${id}`);
    const node = await redis.hgetall(`bull:ref:${id}`);
    for (const h of [mine, node]) {
      h.timestamp = 'T';
      h.opts = JSON.parse(h.opts);
    }
    assert.deepEqual(mine, node, `replayed ${id}`);
    const job = await Job.fromId(target, id);
    assert.equal(job.name, 'issue-reward');
    assert.deepEqual(job.data, originals[i - 1]);
  }
  const fromT = await lastEventId(redis, 'nova');
  const fromR = await lastEventId(redis, 'ref');
  await dlq.add('dead-letter', { ...originals[0], failedReason: 'again' });
  await ref.add('issue-reward', originals[0], { jobId: '122-replay-1' });
  assert.equal(cli(['replay', 'nova-dlq', '122']), '122 -> 122-replay-1\n');
  assert.deepEqual(await eventsSince(redis, 'nova', fromT), await eventsSince(redis, 'ref', fromR),
    'replay appends the events of Node\'s add');

  // a Node Worker runs them as issue-reward jobs with Nova's options
  const seen = new Map();
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`replayed jobs not run: ${seen.size}`)), 20000);
    const w = new Worker('nova', async (job) => {
      assert.equal(job.name, 'issue-reward');
      assert.equal(job.opts.attempts, 3);
      assert.deepEqual(job.opts.backoff, { type: 'exponential', delay: 1000 });
      seen.set(job.id, job.data);
      return { confirmed: true };
    }, { connection, concurrency: 10 });
    w.on('completed', async () => {
      if (seen.size === 121) {
        clearTimeout(t);
        await w.close();
        resolve();
      }
    });
    w.on('failed', (job, err) => reject(err));
  });
  const after = await target.getJobCounts();
  assert.equal(after.completed, 0, 'removeOnComplete: true');
  assert.equal(after.waiting, 0);

  // errors: unknown id, not a dead letter; exit status 1
  cli(['replay', 'nova-dlq', '999'], { status: 1 });
  cli(['replay', 'nova-dlq', '121'], { status: 1 });
  cli(['replay', 'nova-dlq'], { status: 2 });
  await Promise.all([qeT.close(), qeD.close(), dlq.close(), ref.close(), target.close()]);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nova-qcli-'));
  const port = await freePort();
  const redisProc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  conf = path.join(dir, 'nova.conf');
  fs.writeFileSync(conf, `[redis]\nurl = redis://127.0.0.1:${port}\n`);
  const connection = { host: '127.0.0.1', port };
  const IORedis = require('ioredis');
  let redis;
  try {
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' });
        break;
      } catch {
        await sleep(50);
      }
    }
    redis = new IORedis(port, '127.0.0.1');
    await sameAsNode(connection, redis);
    console.log('queue_cli: pause, resume, promote, remove and clean leave what Node leaves');
    await workerSeesIt(connection);
    console.log('queue_cli: a Node Worker stops on pause, runs on resume and runs a promoted job');
    await replay(connection, redis);
    console.log('queue_cli: replay adds the jobs Nova\'s API adds; Node runs them');
  } finally {
    if (redis) redis.disconnect();
    redisProc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err) => {
  console.error('queue_cli: FAIL:', err && err.stack ? err.stack : err);
  process.exit(1);
});
