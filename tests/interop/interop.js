// interop.js - the real bullmq 5.81.x npm package against nova-worker's
// queue engine (driven by engine_runner with the echo plugin).
//
// Node produces (Queue.add with the options Nova uses) and observes
// (QueueEvents, Job.fromId, getJobCounts, getWorkers); the C engine
// processes. Then the C engine produces (enqueue) and a Node Worker
// processes. Exits non-zero with a message on the first mismatch.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Queue, QueueEvents, Worker, Job } = require('bullmq');

const RUNNER = process.env.RUNNER;
const ECHO_SO = process.env.ECHO_SO;
const REDIS_SERVER = process.env.NOVA_REDIS_SERVER || 'redis-server';

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

async function startRedis(dir) {
  const sock = path.join(dir, 'redis.sock');
  const proc = spawn(REDIS_SERVER, ['--port', '0', '--unixsocket', sock, '--dir', dir,
    '--save', '', '--appendonly', 'no', '--logfile', path.join(dir, 'redis.log')],
  { stdio: 'ignore' });
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(50);
  assert.ok(fs.existsSync(sock), 'redis-server did not start');
  return { proc, sock };
}

const children = [];

function startRunner(url, queue, extra = []) {
  const child = spawn(RUNNER, ['work', url, ECHO_SO, queue, '1', '--name', 'cworker',
    '--lock-ms', '5000', '--stalled-ms', '5000', ...extra],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const ready = new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (l) => { if (l === 'READY') resolve(); });
    child.on('exit', (code) => reject(new Error(`engine_runner exited early (${code})`)));
  });
  return { child, ready };
}

// Collects QueueEvents by name and job id.
function recorder(qe, names) {
  const seen = [];
  for (const n of names) qe.on(n, (args) => seen.push({ event: n, ...args }));
  return {
    seen,
    count: (event, jobId) => seen.filter((e) => e.event === event && (!jobId || e.jobId === jobId)).length,
    wait: async (pred, what, ms = 10000) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (pred()) return;
        await sleep(20);
      }
      throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(seen)}`);
    },
  };
}

async function nodeToC(connection, url) {
  const name = 'interop';
  const queue = new Queue(name, { connection });
  const qe = new QueueEvents(name, { connection });
  await qe.waitUntilReady();
  const ev = recorder(qe, ['completed', 'failed', 'delayed', 'retries-exhausted', 'progress',
    'active', 'waiting']);
  await queue.waitUntilReady();

  const runner = startRunner(url, name);
  await withTimeout(runner.ready, 10000, 'engine_runner READY');

  // getWorkers sees the C worker's blocking connection.
  let workers = [];
  for (let i = 0; i < 50 && workers.length === 0; i++) {
    workers = await queue.getWorkers();
    if (!workers.length) await sleep(50);
  }
  assert.ok(workers.some((w) => w.rawname === `bull:${Buffer.from(name).toString('base64')}:w:cworker`),
    `getWorkers: ${JSON.stringify(workers)}`);

  const ok = await queue.add('ok', { return: { x: 1, path: 'a/b' }, progress: { pct: 50 } },
    { attempts: 2, removeOnFail: 5 });
  const flaky = await queue.add('flaky', { fail: 'boom' },
    { attempts: 3, backoff: { type: 'exponential', delay: 100 } });
  const fatal = await queue.add('fatal', { fatal: 'nope' }, { attempts: 3, backoff: 50 });
  const t0 = Date.now();
  const delayed = await queue.add('later', { return: 4 }, { delay: 600 });
  const gone = await queue.add('gone', { return: 'bye' }, { jobId: 'custom-1', removeOnComplete: true });

  await ev.wait(() => ev.count('completed', ok.id), 'ok completed');
  const okEvent = ev.seen.find((e) => e.event === 'completed' && e.jobId === ok.id);
  assert.deepEqual(okEvent.returnvalue, { x: 1, path: 'a/b' });
  assert.equal(ev.count('progress', ok.id), 1);
  assert.deepEqual(ev.seen.find((e) => e.event === 'progress').data, { pct: 50 });

  await ev.wait(() => ev.count('failed', flaky.id), 'flaky failed');
  assert.equal(ev.count('delayed', flaky.id), 2, 'two backoff delays');
  assert.equal(ev.count('failed', flaky.id), 1, 'only the final failure is an event');
  const exhausted = ev.seen.find((e) => e.event === 'retries-exhausted' && e.jobId === flaky.id);
  assert.ok(exhausted, 'retries-exhausted for flaky');
  assert.equal(Number(exhausted.attemptsMade), 3);

  await ev.wait(() => ev.count('failed', fatal.id), 'fatal failed');
  assert.equal(ev.count('retries-exhausted', fatal.id), 0);
  assert.equal(ev.seen.find((e) => e.event === 'failed' && e.jobId === fatal.id).failedReason, 'nope');

  await ev.wait(() => ev.count('completed', delayed.id), 'delayed completed');
  const dEvent = ev.seen.find((e) => e.event === 'delayed' && e.jobId === delayed.id);
  assert.ok(dEvent && Number(dEvent.delay) >= t0 + 600, 'delayed event carries the due time');
  await ev.wait(() => ev.count('completed', 'custom-1'), 'custom-1 completed');

  // Job.fromId sees what a Node worker would have left.
  const j1 = await Job.fromId(queue, ok.id);
  assert.equal(j1.attemptsMade, 1);
  assert.deepEqual(j1.returnvalue, { x: 1, path: 'a/b' });
  assert.ok(j1.processedOn >= j1.timestamp && j1.finishedOn >= j1.processedOn);
  assert.deepEqual(j1.progress, { pct: 50 });
  assert.equal(j1.processedBy, 'cworker');
  assert.equal(await j1.getState(), 'completed');

  const j2 = await Job.fromId(queue, flaky.id);
  assert.equal(j2.attemptsMade, 3);
  assert.equal(j2.failedReason, 'boom');
  assert.equal(j2.stacktrace.length, 3);
  assert.ok(j2.finishedOn > 0);
  assert.equal(await j2.getState(), 'failed');

  const j3 = await Job.fromId(queue, fatal.id);
  assert.equal(j3.attemptsMade, 1);
  assert.equal(j3.failedReason, 'nope');

  const j4 = await Job.fromId(queue, delayed.id);
  assert.ok(j4.processedOn >= t0 + 600, 'delayed job did not run early');
  assert.equal(j4.returnvalue, 4);

  assert.equal(await Job.fromId(queue, 'custom-1'), undefined, 'removeOnComplete: true removed it');

  // Priorities: plain wait first, then by priority; all on the C worker.
  const order = [];
  qe.on('active', ({ jobId }) => order.push(jobId));
  await queue.pause();
  const p3 = await queue.add('p', { sleep_ms: 5 }, { priority: 3 });
  const p1 = await queue.add('p', { sleep_ms: 5 }, { priority: 1 });
  const plain = await queue.add('p', { sleep_ms: 5 });
  await queue.resume();
  await ev.wait(() => ev.count('completed', p3.id), 'priority jobs done');
  assert.deepEqual(order, [plain.id, p1.id, p3.id]);

  // lifo jumps the line; deduplication keys are released on completion;
  // removeOnComplete as {count} keeps only the newest.
  order.length = 0;
  await queue.pause();
  const first = await queue.add('l', { sleep_ms: 5 });
  const dedup = await queue.add('l', { sleep_ms: 5 }, { deduplication: { id: 'd1' } });
  const dup = await queue.add('l', { sleep_ms: 5 }, { deduplication: { id: 'd1' } });
  assert.equal(dup.id, dedup.id, 'Node dedups while the owner is waiting');
  const jumper = await queue.add('l', { sleep_ms: 5 }, { lifo: true, removeOnComplete: { count: 1 } });
  await queue.resume();
  await ev.wait(() => ev.count('completed', dedup.id) && ev.count('completed', first.id) &&
    ev.count('completed', jumper.id), 'lifo/dedup jobs done');
  assert.equal(order[0], jumper.id, `lifo first: ${order}`);
  const client = await queue.client;
  assert.equal(await client.exists(`bull:${name}:de:d1`), 0, 'dedup key released');
  // The lifo job ran first and kept only itself among the completed jobs.
  assert.equal(await Job.fromId(queue, ok.id), undefined, 'pruned by removeOnComplete {count:1}');
  assert.ok(await Job.fromId(queue, first.id), 'completed after the pruning job');
  const again = await queue.add('l', { return: 'again' }, { deduplication: { id: 'd1' } });
  assert.notEqual(again.id, dedup.id, 'dedup id is free again');
  await ev.wait(() => ev.count('completed', again.id), 'dedup id reused');

  const counts = await queue.getJobCounts();
  assert.equal(counts.completed, 4, JSON.stringify(counts));
  assert.equal(counts.failed, 2, JSON.stringify(counts));
  assert.equal(counts.active, 0);
  assert.equal(counts.waiting, 0);
  assert.equal(counts.delayed, 0);
  assert.equal(counts.prioritized, 0);

  runner.child.kill('SIGTERM');
  const code = await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000,
    'engine_runner exit');
  assert.equal(code, 0, 'engine_runner drained and exited cleanly');
  assert.equal((await queue.getWorkers()).length, 0);
  await qe.close();
  await queue.close();
}

async function cToNode(connection, url) {
  const name = 'from-c';
  const out = execFileSync(RUNNER, ['enqueue', url, name, 'dead-letter', '{"reward":7}',
    '--job-id', 'dl-1', '--attempts', '2', '--backoff', 'fixed', '50', '--priority', '2'])
    .toString().trim();
  assert.equal(out, 'dl-1');
  const seen = [];
  const worker = new Worker(name, async (job) => {
    seen.push({ name: job.name, data: job.data, attemptsMade: job.attemptsMade });
    if (seen.length === 1) throw new Error('first try fails');
    return 'ok';
  }, { connection });
  const queue = new Queue(name, { connection });
  const end = Date.now() + 10000;
  let job;
  while (Date.now() < end) {
    job = await Job.fromId(queue, 'dl-1');
    if (job && job.finishedOn) break;
    await sleep(50);
  }
  assert.ok(job && job.finishedOn, 'Node worker finished the C-produced job');
  assert.equal(job.returnvalue, 'ok');
  assert.equal(job.attemptsMade, 2);
  assert.equal(job.opts.attempts, 2);
  assert.deepEqual(job.opts.backoff, { type: 'fixed', delay: 50 });
  assert.equal(job.opts.priority, 2);
  assert.deepEqual(seen[0], { name: 'dead-letter', data: { reward: 7 }, attemptsMade: 0 });
  await worker.close();
  await queue.close();
}

// A Node worker dies mid-job; the C engine's stall sweep recovers the job
// and QueueEvents sees the BullMQ `stalled` event.
async function nodeStallsCRecovers(connection, url) {
  const name = 'stall';
  const queue = new Queue(name, { connection });
  const qe = new QueueEvents(name, { connection });
  await qe.waitUntilReady();
  const ev = recorder(qe, ['stalled', 'completed', 'active']);
  let started;
  const gotJob = new Promise((r) => { started = r; });
  const worker = new Worker(name, async () => {
    started();
    await new Promise(() => {}); // hangs forever, like a crashed process
  }, { connection, lockDuration: 1000, stalledInterval: 300 });
  const job = await queue.add('s', { return: 'recovered' });
  await withTimeout(gotJob, 5000, 'node worker picking the job');
  await worker.close(true); // no more lock renewals from here
  const runner = startRunner(url, name, ['--stalled-ms', '400']);
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  await ev.wait(() => ev.count('completed', job.id), 'stalled job completed by C', 15000);
  assert.equal(ev.count('stalled', job.id), 1);
  const done = await Job.fromId(queue, job.id);
  assert.equal(done.returnvalue, 'recovered');
  assert.equal(done.stalledCounter, 1);
  assert.equal(done.attemptsMade, 1);
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000, 'runner exit');
  await qe.close();
  await queue.close();
}

async function main() {
  assert.ok(RUNNER && ECHO_SO, 'RUNNER and ECHO_SO must be set');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nova-interop-'));
  const redis = await startRedis(dir);
  const connection = { path: redis.sock, maxRetriesPerRequest: null };
  const url = `unix://${redis.sock}`;
  try {
    await withTimeout(nodeToC(connection, url), 40000, 'Node -> C scenario');
    await withTimeout(cToNode(connection, url), 20000, 'C -> Node scenario');
    await withTimeout(nodeStallsCRecovers(connection, url), 30000, 'Node stall -> C recovery');
    console.log('interop: ok');
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    redis.proc.kill('SIGTERM');
    await sleep(100);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`interop: FAILED: ${err.stack || err}`);
  process.exit(1);
});
