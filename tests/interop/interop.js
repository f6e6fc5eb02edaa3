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
const { Queue, QueueEvents, Worker, Job, FlowProducer, WaitingError } = require('bullmq');

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

// A Node FlowProducer's children run on the C engine; the last one moves
// the parent out of waiting-children and a Node worker sees the results.
async function flowChildrenOnC(connection, url) {
  const runner = startRunner(url, 'flow-children');
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  const fp = new FlowProducer({ connection });
  const tree = await fp.add({
    name: 'parent', queueName: 'flow-parent', data: {},
    children: [
      { name: 'c', queueName: 'flow-children', data: { return: { n: 1 } } },
      { name: 'c', queueName: 'flow-children', data: { return: 'two' }, opts: { removeOnComplete: true } },
    ],
  });
  let childValues;
  const worker = new Worker('flow-parent', async (job) => {
    childValues = await job.getChildrenValues();
    return 'parent-done';
  }, { connection });
  const queue = new Queue('flow-parent', { connection });
  const end = Date.now() + 10000;
  let parent;
  while (Date.now() < end) {
    parent = await Job.fromId(queue, tree.job.id);
    if (parent && parent.finishedOn) break;
    await sleep(50);
  }
  assert.ok(parent && parent.finishedOn, 'parent ran once its C-processed children completed');
  assert.equal(parent.returnvalue, 'parent-done');
  const want = {};
  want[`bull:flow-children:${tree.children[0].job.id}`] = { n: 1 };
  want[`bull:flow-children:${tree.children[1].job.id}`] = 'two';
  assert.deepEqual(childValues, want);
  await worker.close();
  await queue.close();
  await fp.close();
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000, 'runner exit');
}

// Node's job schedulers keep running when only C workers take their jobs:
// the C worker makes each next slot's job as a Node Worker does (every and
// cron, the cron one in a time zone).
async function nodeSchedulersOnC(connection, url) {
  const name = 'node-sched';
  const queue = new Queue(name, { connection });
  await queue.upsertJobScheduler('every-300', { every: 300 }, { name: 'tick', data: { k: 'every' } });
  await queue.upsertJobScheduler('cron-1s', { pattern: '* * * * * *', tz: 'Europe/Paris' },
    { name: 'tock', data: { k: 'cron' } });
  const runner = startRunner(url, name);
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  const end = Date.now() + 15000;
  let ticks = 0, tocks = 0;
  while (Date.now() < end) {
    const done = await queue.getJobs(['completed'], 0, -1);
    ticks = done.filter((j) => j.name === 'tick').length;
    tocks = done.filter((j) => j.name === 'tock').length;
    if (ticks >= 8 && tocks >= 4) break;
    await sleep(100);
  }
  assert.ok(ticks >= 8, `every scheduler stopped after ${ticks} runs on C`);
  assert.ok(tocks >= 4, `cron scheduler stopped after ${tocks} runs on C`);
  const done = await queue.getJobs(['completed'], 0, -1);
  // one job per slot, slots on the schedule's grid, each run once
  for (const k of ['every-300', 'cron-1s']) {
    const slots = done.filter((j) => j.id.startsWith(`repeat:${k}:`)).map((j) => Number(j.id.split(':')[2]));
    assert.equal(new Set(slots).size, slots.length, `${k}: a slot ran twice`);
    const step = k === 'every-300' ? 300 : 1000;
    slots.sort((a, b) => a - b);
    for (let i = 1; i < slots.length; i++) assert.equal((slots[i] - slots[0]) % step, 0, `${k}: off-grid slot`);
    for (const j of done.filter((x) => x.id.startsWith(`repeat:${k}:`))) assert.equal(j.attemptsStarted, 1);
  }
  const scheds = await queue.getJobSchedulers();
  assert.equal(scheds.length, 2);
  for (const s of scheds) assert.ok(s.next > Date.now() - 2000, `${s.key} has a next run`);
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000, 'runner exit');
  await queue.removeJobScheduler('every-300');
  await queue.removeJobScheduler('cron-1s');
  await queue.close();
}

// A job failed by the stall limit (defa) can be retried with Job.retry()
// and then completes: failing it removes the deferred failure, as BullMQ does.
async function stalledFailureRetried(connection, url) {
  const name = 'stall-retry';
  const queue = new Queue(name, { connection });
  const job = await queue.add('s', { return: 'second life' });
  // as a stall sweep leaves a job that stalled too often: defa set
  const c = await queue.client;
  await c.hset(`bull:${name}:${job.id}`, 'defa', 'job stalled more than allowable limit');
  const runner = startRunner(url, name);
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  let j;
  for (let i = 0; i < 100; i++) {
    j = await Job.fromId(queue, job.id);
    if (j.finishedOn) break;
    await sleep(50);
  }
  assert.equal(await j.getState(), 'failed');
  assert.match(j.failedReason, /stalled more than allowable limit/);
  assert.equal(await c.hexists(`bull:${name}:${job.id}`, 'defa'), 0, 'defa left on a failed job');
  await j.retry();
  for (let i = 0; i < 100; i++) {
    if ((await queue.getJobState(job.id)) === 'completed') break;
    await sleep(50);
  }
  j = await Job.fromId(queue, job.id);
  assert.equal(await j.getState(), 'completed');
  assert.equal(j.returnvalue, 'second life');
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000, 'runner exit');
  await queue.close();
}

// One queue, two job names: a C worker handles "c-job" only, a Node worker
// "node-job" only. Every job completes, each on its own kind of worker,
// and none is failed for a missing handler.
async function splitByName(connection, url) {
  const name = 'split';
  const queue = new Queue(name, { connection });
  const runner = startRunner(url, name, ['--names', 'c-job']);
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  const nodeRan = new Set();
  // Node's idiom for a job it does not handle: back to wait, for the C worker
  const worker = new Worker(name, async (job, token) => {
    if (job.name !== 'node-job') {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    nodeRan.add(job.id);
    return 'node';
  }, { connection, concurrency: 2 });
  const ids = { c: [], node: [] };
  for (let i = 0; i < 20; i++) {
    ids.c.push((await queue.add('c-job', { return: 'c' })).id);
    ids.node.push((await queue.add('node-job', {})).id);
  }
  const end = Date.now() + 20000;
  let counts;
  while (Date.now() < end) {
    counts = await queue.getJobCounts();
    if (counts.completed === 40) break;
    await sleep(100);
  }
  assert.equal(counts.completed, 40, `completed ${JSON.stringify(counts)}`);
  assert.equal(counts.failed, 0);
  for (const id of ids.c) assert.equal((await Job.fromId(queue, id)).returnvalue, 'c');
  for (const id of ids.node) {
    assert.equal((await Job.fromId(queue, id)).returnvalue, 'node');
    assert.ok(nodeRan.has(id));
  }
  await worker.close();
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((r) => runner.child.on('exit', r)), 10000, 'runner exit');
  await queue.close();
}

// The flow failure policies, with the children failing on the C engine:
// Redis ends as BullMQ 5.81's own workers leave it.
async function flowFailurePolicies(connection, url) {
  const runner = startRunner(url, 'pol-children');
  await withTimeout(runner.ready, 10000, 'engine_runner READY');
  const fp = new FlowProducer({ connection });
  const c = await new Queue('pol-parent', { connection }).client;
  const results = {};
  for (const pol of ['failParentOnFailure', 'ignoreDependencyOnFailure', 'removeDependencyOnFailure',
    'continueParentOnFailure']) {
    const tree = await fp.add({ name: 'parent', queueName: 'pol-parent', data: {}, opts: { jobId: `p-${pol}` },
      children: [
        { name: 'bad', queueName: 'pol-children', data: { fatal: 'boom' }, opts: { [pol]: true, jobId: `bad-${pol}` } },
        { name: 'good', queueName: 'pol-children', data: { return: 'ok' }, opts: { jobId: `good-${pol}` } }] });
    const pk = `bull:pol-parent:${tree.job.id}`;
    let inWait = false;
    for (let i = 0; i < 100 && !inWait; i++) {
      inWait = (await c.lrange('bull:pol-parent:wait', 0, -1)).includes(tree.job.id);
      if (!inWait) await sleep(50);
    }
    results[pol] = { inWait, defa: await c.hget(pk, 'defa'), failed: await c.hgetall(`${pk}:failed`),
      unsuccessful: await c.zrange(`${pk}:unsuccessful`, 0, -1), deps: await c.smembers(`${pk}:dependencies`) };
  }
  const bad = (p) => `bull:pol-children:bad-${p}`;
  const r = results;
  assert.ok(r.failParentOnFailure.inWait);
  assert.equal(r.failParentOnFailure.defa, `child ${bad('failParentOnFailure')} failed`);
  assert.deepEqual(r.failParentOnFailure.unsuccessful, [bad('failParentOnFailure')]);
  for (const p of ['ignoreDependencyOnFailure', 'continueParentOnFailure']) {
    assert.ok(r[p].inWait, `${p}: parent not in wait`);
    assert.deepEqual(r[p].failed, { [bad(p)]: 'boom' });
    assert.equal(r[p].defa, null);
  }
  assert.ok(r.removeDependencyOnFailure.inWait);
  assert.deepEqual(r.removeDependencyOnFailure.failed, {});
  for (const p of Object.keys(r)) assert.deepEqual(r[p].deps, [], `${p}: dependencies left`);
  await fp.close();
  runner.child.kill('SIGTERM');
  await withTimeout(new Promise((res) => runner.child.on('exit', res)), 10000, 'runner exit');
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
    await withTimeout(flowChildrenOnC(connection, url), 30000, 'flow children on C');
    await withTimeout(nodeSchedulersOnC(connection, url), 30000, 'Node job schedulers on C');
    await withTimeout(stalledFailureRetried(connection, url), 20000, 'stalled failure retried');
    await withTimeout(splitByName(connection, url), 30000, 'a queue split by job name');
    await withTimeout(flowFailurePolicies(connection, url), 30000, 'flow failure policies');
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
