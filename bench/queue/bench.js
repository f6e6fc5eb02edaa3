// bench.js - the queue benchmark proper: nova-worker (C daemon + echo plugin)
// against a stock BullMQ Worker, same Redis, same queue layout, one after the
// other for each configuration. Started by run.sh, which owns redis-server
// and the temp dir; this script owns the worker, producer and observer
// processes and kills them on any exit.
//
// Measures, per worker:
//   drain    N pre-filled no-op jobs at each concurrency, removeOnComplete
//            true and false: jobs/s from first fetch to last completion,
//            CPU us/job of the worker and of redis-server (/proc/PID/stat),
//            worker peak RSS (VmHWM), Redis commands per job (INFO
//            commandstats delta / N), both as client calls and as every
//            command executed (Lua included).
//   latency  a producer adding jobs at a steady rate; enqueue-to-completion
//            p50/p99 from the `completed` event (QueueEvents) against the
//            producer's clock, plus finishedOn - timestamp from the hashes.
//   idle     RSS of a worker with nothing to do.
// Prints the markdown report on stdout; progress goes to stderr.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Queue, QueueEvents } = require('bullmq');
const Redis = require('ioredis');

const HERE = __dirname;

function parseArgs(argv) {
  const o = {
    port: 0, redisPid: 0, builddir: '', tmp: '', jobs: 100000, concurrency: [1, 10, 100],
    rates: [1000, 5000], seconds: 5, latConcurrency: 10, workers: ['c', 'node'], idleSeconds: 5,
    command: '', json: '', clkTck: 100, profile: '', parts: ['drain', 'latency', 'idle'],
    floorRelay: '',
  };
  const list = (v) => v.split(',').filter(Boolean).map(Number);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const need = () => {
      if (v === undefined) throw new Error(`${a} needs a value`);
      i++;
      return v;
    };
    switch (a) {
      case '--port': o.port = Number(need()); break;
      case '--redis-pid': o.redisPid = Number(need()); break;
      case '--builddir': o.builddir = need(); break;
      case '--tmp': o.tmp = need(); break;
      case '--jobs': o.jobs = Number(need()); break;
      case '--concurrency': o.concurrency = list(need()); break;
      case '--rates': o.rates = list(need()); break;
      case '--seconds': o.seconds = Number(need()); break;
      case '--lat-concurrency': o.latConcurrency = Number(need()); break;
      case '--workers': o.workers = need().split(',').filter(Boolean); break;
      case '--idle-seconds': o.idleSeconds = Number(need()); break;
      case '--command': o.command = need(); break;
      case '--json': o.json = need(); break;
      case '--clk-tck': o.clkTck = Number(need()); break;
      case '--profile': o.profile = need(); break;
      case '--parts': o.parts = need().split(',').filter(Boolean); break;
      case '--floor-relay': o.floorRelay = need(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!(o.port > 0) || !(o.redisPid > 0) || !o.builddir || !o.tmp) {
    throw new Error('--port, --redis-pid, --builddir and --tmp are required');
  }
  if (!(o.jobs >= 100)) throw new Error('--jobs must be at least 100');
  for (const p of o.parts) {
    if (!['drain', 'latency', 'idle'].includes(p)) throw new Error(`unknown part '${p}' (drain, latency, idle)`);
  }
  for (const w of o.workers) {
    if (w !== 'c' && w !== 'node') throw new Error(`unknown worker '${w}' (c or node)`);
  }
  if (o.concurrency.some((c) => !(c >= 1 && c <= 10000))) throw new Error('bad --concurrency');
  if (o.rates.some((r) => !(r > 0))) throw new Error('bad --rates');
  return o;
}

let opt;
try {
  opt = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench.js: ${err.message}\n`);
  process.exit(2);
}
const QUEUE = 'bench';
const connection = { host: '127.0.0.1', port: opt.port };
const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// ---- child processes: tracked so that any exit kills them -----------------

const children = new Set();
const pidDir = path.join(opt.tmp, 'pids');
fs.mkdirSync(pidDir, { recursive: true });

function track(child, what) {
  children.add(child);
  // run.sh's trap kills what is listed here if this process dies first.
  fs.writeFileSync(path.join(pidDir, String(child.pid)), what);
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      children.delete(child);
      fs.rmSync(path.join(pidDir, String(child.pid)), { force: true });
      resolve({ code, sig });
    });
  });
  return child;
}

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    killAll();
    process.exit(130);
  });
}

function tail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---- /proc ---------------------------------------------------------------------

// utime + stime of a process (all its threads), in microseconds.
function cpuUs(pid) {
  return cpuSplitUs(pid).total;
}

// {user, sys, total} in microseconds (fields 14 and 15 of /proc/PID/stat).
function cpuSplitUs(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const user = (Number(f[11]) * 1e6) / opt.clkTck;
  const sys = (Number(f[12]) * 1e6) / opt.clkTck;
  return { user, sys, total: user + sys };
}

// VmHWM, VmRSS, RssAnon, RssFile in KiB, plus Pss and Private (clean +
// dirty) from smaps_rollup: RSS counts shared library pages in full.
function memKiB(pid) {
  const out = {};
  try {
    let priv = 0;
    for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
      const m = /^(Pss|Private_Clean|Private_Dirty):\s+(\d+) kB/.exec(line);
      if (m && m[1] === 'Pss') out.Pss = Number(m[2]);
      else if (m) priv += Number(m[2]);
    }
    out.Private = priv;
  } catch { /* kernels without smaps_rollup: reported as n/a */ }
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// ---- Redis helpers -------------------------------------------------------------

// {name: {calls, usec}}. Redis counts a command run by a script in its own
// entry as well as in the script's EVALSHA (whose usec includes it).
async function commandStats(r) {
  const out = {};
  for (const line of (await r.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return out;
}

// Commands a client sends itself; everything else in these runs is only
// ever called from inside a script (EVALSHA of BullMQ's or nova-worker's Lua).
const CLIENT_COMMANDS = /^(eval|evalsha|eval_ro|evalsha_ro|fcall|bzpopmin|bzpopmax|xread|info|client\|.*|script\|.*|hello|select|ping|auth|multi|exec|command.*|config\|.*)$/;

const SCRIPT_COMMANDS = /^(eval|evalsha|eval_ro|evalsha_ro|fcall)$/;

function commandDelta(before, after, harness) {
  const d = {};
  let total = 0;
  let calls = 0;
  let scriptUs = 0;
  let nestedUs = 0;
  for (const [k, v] of Object.entries(after)) {
    const b = before[k] || { calls: 0, usec: 0 };
    const n = v.calls - b.calls - (harness[k] || 0);
    if (n <= 0) continue;
    d[k] = n;
    total += n;
    if (SCRIPT_COMMANDS.test(k)) scriptUs += v.usec - b.usec;
    if (CLIENT_COMMANDS.test(k)) calls += n;
    else nestedUs += v.usec - b.usec;
  }
  return { total, calls, scriptUs, nestedUs, byCommand: d };
}

// ---- workers ---------------------------------------------------------------------

const WORKER_NAME = { c: 'cworker', node: 'nodeworker' };
const LABEL = { c: 'nova-worker (C)', node: 'BullMQ Worker (Node)' };
let seq = 0;

function cleanEnv() {
  const env = { ...process.env };
  // Nova's environment fallbacks must not reach the daemon's config.
  for (const k of ['REDIS_URL', 'DATABASE_URL', 'HORIZON_URL', 'STELLAR_NETWORK', 'ISSUER_PUBLIC',
    'DISTRIBUTION_SECRET', 'LOG_LEVEL', 'NOVA_PLUGIN_DIR', 'CREDENTIALS_DIRECTORY']) delete env[k];
  return env;
}

function startWorker(kind, concurrency) {
  const tag = `${kind}-${++seq}`;
  const logFile = path.join(opt.tmp, `${tag}.log`);
  const logFd = fs.openSync(logFile, 'w');
  let child;
  if (kind === 'c') {
    const conf = path.join(opt.tmp, `${tag}.conf`);
    fs.writeFileSync(conf, [
      '[worker]', `name = ${WORKER_NAME.c}`, 'log_level = warn',
      `plugin_dir = ${path.join(opt.builddir, 'plugins/echo/.libs')}`,
      '[redis]', `url = redis://127.0.0.1:${opt.port}`,
      '[http]', 'listen =',
      '[plugin echo]', 'enabled = yes', `queue = ${QUEUE}`, `concurrency = ${concurrency}`, '',
    ].join('\n'));
    child = spawn(path.join(opt.builddir, 'nova-worker'), ['run', '-c', conf],
      { stdio: ['ignore', logFd, logFd], env: cleanEnv() });
  } else {
    child = spawn(process.execPath, [path.join(HERE, 'node_worker.js'), String(opt.port), QUEUE,
      String(concurrency)], { stdio: ['ignore', logFd, logFd], env: process.env });
  }
  fs.closeSync(logFd);
  track(child, `${kind} worker`);
  return { kind, child, pid: child.pid, logFile, concurrency };
}

// Ready = the worker's blocking connection is parked on BZPOPMIN: it has
// connected, loaded its scripts, found nothing to do and is idle.
async function waitIdle(r, w, timeoutMs = 20000) {
  const name = `bull:${Buffer.from(QUEUE).toString('base64')}:w:${WORKER_NAME[w.kind]}`;
  const end = Date.now() + timeoutMs;
  let exited = null;
  w.child.exited.then((x) => { exited = x; });
  while (Date.now() < end) {
    if (exited) {
      throw new Error(`${LABEL[w.kind]} exited during start-up (${JSON.stringify(exited)}):\n${tail(w.logFile)}`);
    }
    const list = await r.client('LIST');
    if (list.split('\n').some((l) => l.includes(` name=${name} `) && /flags=\S*b/.test(l))) return;
    await sleep(20);
  }
  throw new Error(`${LABEL[w.kind]} not idle on BZPOPMIN after ${timeoutMs} ms:\n${tail(w.logFile)}`);
}

async function stopWorker(w) {
  if (w.child.exitCode !== null || w.child.signalCode !== null) {
    throw new Error(`${LABEL[w.kind]} died during the run:\n${tail(w.logFile)}`);
  }
  w.child.kill('SIGTERM');
  const res = await Promise.race([w.child.exited, sleep(15000).then(() => null)]);
  if (!res) {
    w.child.kill('SIGKILL');
    await w.child.exited;
    throw new Error(`${LABEL[w.kind]} did not exit within 15 s of SIGTERM:\n${tail(w.logFile)}`);
  }
  if (res.code !== 0) {
    throw new Error(`${LABEL[w.kind]} exited with ${JSON.stringify(res)}:\n${tail(w.logFile)}`);
  }
}

// ---- profiling (--profile DIR) ---------------------------------------------------

// perf record of the worker and of redis-server over the drain window, one
// file each, for `perf report -i FILE`. perf's own CPU is not in the worker's.
async function startPerf(w, concurrency, removeOnComplete) {
  const runs = [];
  for (const [who, pid] of [[w.kind, w.pid], ['redis', opt.redisPid]]) {
    const out = path.join(opt.profile, `perf-${who}-with-${w.kind}-c${concurrency}-roc${removeOnComplete}.data`);
    const errFile = `${out}.log`;
    const fd = fs.openSync(errFile, 'w');
    const p = track(spawn('perf', ['record', '-F', '999', '--call-graph', 'dwarf,16384', '-p', String(pid), '-o', out],
      { stdio: ['ignore', fd, fd] }), 'perf');
    fs.closeSync(fd);
    runs.push({ p, errFile });
  }
  await sleep(500); // perf attaches asynchronously
  for (const { p, errFile } of runs) {
    if (p.exitCode !== null) throw new Error(`perf record failed:\n${tail(errFile)}`);
  }
  return runs;
}

async function stopPerf(runs) {
  for (const { p } of runs) p.kill('SIGINT');
  for (const { p, errFile } of runs) {
    const res = await Promise.race([p.exited, sleep(30000).then(() => null)]);
    if (!res) throw new Error(`perf record did not stop:\n${tail(errFile)}`);
  }
}

// ---- drain -----------------------------------------------------------------------

async function fill(queue, n, removeOnComplete) {
  const chunk = 1000;
  for (let done = 0; done < n; done += chunk) {
    const jobs = [];
    for (let i = done; i < Math.min(n, done + chunk); i++) {
      jobs.push({ name: 'noop', data: {}, opts: { removeOnComplete } });
    }
    await queue.addBulk(jobs);
  }
}

async function drain(r, kind, concurrency, removeOnComplete) {
  const n = opt.jobs;
  await r.flushall();
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  // Paused while filling, so the clock starts when the worker is idle and
  // every job is in place; resume() is the start signal.
  await queue.pause();
  const t0 = Date.now();
  await fill(queue, n, removeOnComplete);
  const paused = await r.llen(`bull:${QUEUE}:paused`);
  if (paused !== n) throw new Error(`pre-fill left ${paused} jobs in paused, expected ${n}`);
  log(`  filled ${n} jobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const w = startWorker(kind, concurrency);
  try {
    await waitIdle(r, w);
    await sleep(300);
    const poll = new Redis({ ...connection, maxRetriesPerRequest: 1 });
    const waitKey = `bull:${QUEUE}:wait`;
    const activeKey = `bull:${QUEUE}:active`;
    const limitMs = Math.max(60000, (n / 200) * 1000);
    const perf = opt.profile ? await startPerf(w, concurrency, removeOnComplete) : null;
    const cs0 = await commandStats(r);
    const ws0 = cpuSplitUs(w.pid);
    const rc0 = cpuUs(opt.redisPid);
    await queue.resume();
    let polls = 0;
    let first = 0;
    let last = 0;
    const deadline = nowMs() + limitMs;
    // Poll both lists every ~1 ms: the first poll showing a job taken marks
    // the first fetch, the first showing both empty the last completion.
    // Both marks are late by up to one poll, so their difference is not.
    for (;;) {
      const sent = nowMs();
      const res = await poll.pipeline().llen(waitKey).llen(activeKey).exec();
      polls++;
      const wait = res[0][1];
      const active = res[1][1];
      if (!first && (wait < n || active > 0)) first = sent;
      if (first && wait === 0 && active === 0) {
        last = sent;
        break;
      }
      if (w.child.exitCode !== null || w.child.signalCode !== null) {
        throw new Error(`${LABEL[kind]} died during the drain (exit ${w.child.exitCode}, ` +
          `signal ${w.child.signalCode}):\n${tail(w.logFile)}`);
      }
      if (sent > deadline) {
        throw new Error(`${LABEL[kind]} did not drain ${n} jobs in ${limitMs / 1000} s ` +
          `(wait=${wait}, active=${active}):\n${tail(w.logFile)}`);
      }
      await sleep(1);
    }
    const ws1 = cpuSplitUs(w.pid);
    const rc1 = cpuUs(opt.redisPid);
    const cs1 = await commandStats(r);
    const mem = memKiB(w.pid);
    if (perf) await stopPerf(perf);
    await poll.quit();
    // Harness commands inside the window: the polls and the first INFO.
    const cmds = commandDelta(cs0, cs1, { llen: 2 * polls, info: 1 });
    const completed = await r.zcard(`bull:${QUEUE}:completed`);
    const failed = await r.zcard(`bull:${QUEUE}:failed`);
    const expectCompleted = removeOnComplete ? 0 : n;
    if (completed !== expectCompleted || failed !== 0) {
      throw new Error(`${LABEL[kind]}: completed=${completed} (expected ${expectCompleted}), failed=${failed}`);
    }
    if (removeOnComplete && (await r.exists(`bull:${QUEUE}:1`))) {
      throw new Error(`${LABEL[kind]}: job 1 still exists although removeOnComplete is true`);
    }
    await stopWorker(w);
    await queue.close();
    const secs = (last - first) / 1000;
    return {
      kind, concurrency, removeOnComplete, jobs: n, seconds: secs, rate: n / secs,
      workerCpuUs: (ws1.total - ws0.total) / n, workerSysUs: (ws1.sys - ws0.sys) / n,
      redisCpuUs: (rc1 - rc0) / n,
      peakRssKiB: mem.VmHWM, callsPerJob: cmds.calls / n, cmdsPerJob: cmds.total / n,
      scriptUsPerJob: cmds.scriptUs / n, nestedUsPerJob: cmds.nestedUs / n,
      byCommand: Object.fromEntries(Object.entries(cmds.byCommand)
        .sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +(v / n).toFixed(3)])),
    };
  } catch (err) {
    w.child.kill('SIGKILL');
    await queue.close().catch(() => {});
    throw err;
  }
}

// ---- latency ---------------------------------------------------------------------

function pct(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// Runs one of the harness's Node scripts (args[0], in this directory) for
// the producer's duration, stderr to LOG in the temp dir, and returns the
// last line it printed on stdout, parsed as JSON.
async function runForJson(what, log, args) {
  const logFile = path.join(opt.tmp, log);
  const errFd = fs.openSync(logFile, 'w');
  const child = track(spawn(process.execPath, [path.join(HERE, args[0]), ...args.slice(1)],
    { stdio: ['ignore', 'pipe', errFd] }), what);
  fs.closeSync(errFd);
  let line = '';
  readline.createInterface({ input: child.stdout }).on('line', (l) => { if (l.startsWith('{')) line = l; });
  const res = await Promise.race([child.exited, sleep(opt.seconds * 1000 + 30000).then(() => null)]);
  if (!res) {
    child.kill('SIGKILL');
    throw new Error(`${what} did not finish:\n${tail(logFile)}`);
  }
  if (res.code !== 0 || !line) throw new Error(`${what} failed (${JSON.stringify(res)}):\n${tail(logFile)}`);
  return JSON.parse(line);
}

async function latency(r, kind, rate) {
  await r.flushall();
  const concurrency = opt.latConcurrency;
  const w = startWorker(kind, concurrency);
  const qe = new QueueEvents(QUEUE, { connection });
  try {
    await waitIdle(r, w);
    await qe.waitUntilReady();
    await sleep(300);
    const lat = [];
    const ids = [];
    qe.on('completed', ({ jobId, returnvalue }) => {
      lat.push(nowUs() - Number(returnvalue));
      ids.push(jobId);
    });
    const wc0 = cpuUs(w.pid);
    const rc0 = cpuUs(opt.redisPid);
    const p = await runForJson('producer', `producer-${kind}-${rate}.log`,
      ['producer.js', String(opt.port), QUEUE, String(rate), String(opt.seconds)]);
    const end = Date.now() + 30000;
    while (lat.length < p.sent && Date.now() < end && w.child.exitCode === null &&
      w.child.signalCode === null) await sleep(10);
    if (lat.length < p.sent) {
      throw new Error(`${LABEL[kind]}: only ${lat.length} of ${p.sent} completions seen in 30 s:\n${tail(w.logFile)}`);
    }
    const wc1 = cpuUs(w.pid);
    const rc1 = cpuUs(opt.redisPid);
    // The coarse view from the job hashes (1 ms stamps, both taken in a
    // client before its call reaches Redis).
    const pipe = r.pipeline();
    for (const id of ids) pipe.hmget(`bull:${QUEUE}:${id}`, 'timestamp', 'finishedOn');
    const hashMs = (await pipe.exec()).map(([, v]) => Number(v[1]) - Number(v[0])).sort((a, b) => a - b);
    await stopWorker(w);
    await qe.close();
    lat.sort((a, b) => a - b);
    return {
      kind, rate, concurrency, jobs: p.sent, achievedRate: p.sent / p.seconds,
      producerLateMaxMs: p.lateMaxMs, addP50Ms: p.addP50Ms, addP99Ms: p.addP99Ms,
      p50Ms: pct(lat, 0.5) / 1000, p99Ms: pct(lat, 0.99) / 1000, maxMs: lat[lat.length - 1] / 1000,
      hashP50Ms: pct(hashMs, 0.5), hashP99Ms: pct(hashMs, 0.99),
      workerCpuUs: (wc1 - wc0) / p.sent, redisCpuUs: (rc1 - rc0) / p.sent,
    };
  } catch (err) {
    w.child.kill('SIGKILL');
    await qe.close().catch(() => {});
    throw err;
  }
}

// ---- idle ------------------------------------------------------------------------

async function idle(r, kind) {
  await r.flushall();
  const w = startWorker(kind, 10);
  try {
    await waitIdle(r, w);
    await sleep(1000);
    const c0 = cpuUs(w.pid);
    await sleep(opt.idleSeconds * 1000);
    const c1 = cpuUs(w.pid);
    const mem = memKiB(w.pid);
    await stopWorker(w);
    return { kind, ...mem, idleCpuMsPerMin: ((c1 - c0) / 1000) * (60 / opt.idleSeconds) };
  } catch (err) {
    w.child.kill('SIGKILL');
    throw err;
  }
}

// ---- report ----------------------------------------------------------------------

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const mib = (k) => (k / 1024).toFixed(1);
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a');

function machine() {
  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/^model name\s*:\s*(.*)$/m.exec(cpu) || [])[1] || 'unknown';
  const mhz = (/^cpu MHz\s*:\s*(.*)$/m.exec(cpu) || [])[1];
  const memTotal = (/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8')) || [])[1];
  return {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    model: mhz ? `${model} (${Number(mhz).toFixed(0)} MHz)` : model,
    memGiB: memTotal ? (Number(memTotal) / 1048576).toFixed(1) : '?',
    kernel: os.release(),
  };
}

function versions() {
  const bullmq = require('bullmq/package.json').version;
  const redis = execFileSync('redis-server', ['--version']).toString().match(/v=(\S+)/)[1];
  let nova = 'unknown';
  try {
    nova = execFileSync(path.join(opt.builddir, 'nova-worker'), ['--version']).toString().trim();
  } catch { /* reported as unknown */ }
  return { bullmq, node: process.version, redis, nova };
}

function render(res) {
  const L = [];
  const m = res.machine;
  const v = res.versions;
  L.push(`Run ${res.date} (${res.quick ? 'quick' : 'full'} mode).`);
  L.push('');
  L.push(`- Machine: ${m.nproc} CPUs, ${m.model}, ${m.memGiB} GiB RAM, Linux ${m.kernel}`);
  L.push(`- Load average (1/5/15 min): ${res.loadStart.map(f2).join(' ')} at start, ` +
    `${res.loadEnd.map(f2).join(' ')} at end`);
  L.push(`- Versions: ${v.nova}; bullmq ${v.bullmq}; node ${v.node}; redis-server ${v.redis}`);
  L.push(`- Command: \`${res.command}\``);
  L.push(`- Redis: 127.0.0.1 TCP, no persistence, one server shared by the worker, the harness and ` +
    'the producer. Workers run one at a time, C then Node for each row.');
  L.push('');

  if (res.drain.length) {
    L.push(`### Drain: ${res.jobs} pre-filled no-op jobs`);
    L.push('');
    L.push('| worker | conc | removeOnComplete | jobs/s | worker CPU µs/job (of it system) | redis CPU µs/job | ' +
      'worker peak RSS MiB | Redis calls/job | Redis cmds/job (incl. Lua) | ' +
      'Redis µs/job in scripts (in their commands) |');
    L.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const d of res.drain) {
      L.push(`| ${LABEL[d.kind]} | ${d.concurrency} | ${d.removeOnComplete} | ${f0(d.rate)} | ` +
        `${f1(d.workerCpuUs)} (${f1(d.workerSysUs)}) | ${f1(d.redisCpuUs)} | ${mib(d.peakRssKiB)} | ${f2(d.callsPerJob)} | ` +
        `${f1(d.cmdsPerJob)} | ${f1(d.scriptUsPerJob)} (${f1(d.nestedUsPerJob)}) |`);
    }
    L.push('');
    const pairs = [];
    for (const c of res.drain.filter((d) => d.kind === 'c')) {
      const n = res.drain.find((d) => d.kind === 'node' && d.concurrency === c.concurrency &&
        d.removeOnComplete === c.removeOnComplete);
      if (n) pairs.push([c, n]);
    }
    if (pairs.length) {
      L.push('Ratios C/Node (throughput: higher is better for C; the others: lower is better for C):');
      L.push('');
      L.push('| conc | removeOnComplete | jobs/s | worker CPU/job | redis CPU/job | peak RSS | cmds/job |');
      L.push('|---:|---|---:|---:|---:|---:|---:|');
      for (const [c, n] of pairs) {
        L.push(`| ${c.concurrency} | ${c.removeOnComplete} | ${ratio(c.rate, n.rate)} | ` +
          `${ratio(c.workerCpuUs, n.workerCpuUs)} | ${ratio(c.redisCpuUs, n.redisCpuUs)} | ` +
          `${ratio(c.peakRssKiB, n.peakRssKiB)} | ${ratio(c.cmdsPerJob, n.cmdsPerJob)} |`);
      }
      L.push('');
    }
    L.push('Redis commands per job by command (INFO commandstats delta / N), removeOnComplete true, ' +
      `highest concurrency:`);
    L.push('');
    const top = Math.max(...res.drain.map((d) => d.concurrency));
    for (const d of res.drain.filter((x) => x.concurrency === top && x.removeOnComplete)) {
      L.push(`- ${LABEL[d.kind]}: ${Object.entries(d.byCommand).map(([k, x]) => `${k} ${x}`).join(', ')}`);
    }
    L.push('');
  }

  if (res.latency.length) {
    L.push(`### Latency: steady producer for ${res.seconds} s, worker concurrency ${res.latConcurrency}`);
    L.push('');
    L.push('| worker | target jobs/s | achieved jobs/s | jobs | p50 ms | p99 ms | max ms | ' +
      'p50/p99 ms (finishedOn − timestamp) | producer\'s add round trip p50/p99 ms | ' +
      'worker CPU µs/job | redis CPU µs/job |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const l of res.latency) {
      L.push(`| ${LABEL[l.kind]} | ${l.rate} | ${f0(l.achievedRate)} | ${l.jobs} | ${f2(l.p50Ms)} | ` +
        `${f2(l.p99Ms)} | ${f2(l.maxMs)} | ${l.hashP50Ms} / ${l.hashP99Ms} | ` +
        `${f2(l.addP50Ms)} / ${f2(l.addP99Ms)} | ${f1(l.workerCpuUs)} | ${f1(l.redisCpuUs)} |`);
    }
    L.push('');
    const lr = [];
    for (const c of res.latency.filter((l) => l.kind === 'c')) {
      const n = res.latency.find((l) => l.kind === 'node' && l.rate === c.rate);
      if (n) lr.push(`${c.rate} jobs/s: p50 ${ratio(c.p50Ms, n.p50Ms)}, p99 ${ratio(c.p99Ms, n.p99Ms)}, ` +
        `worker CPU ${ratio(c.workerCpuUs, n.workerCpuUs)}`);
    }
    if (lr.length) L.push(`Ratios C/Node (lower is better for C): ${lr.join('; ')}.`, '');
    if (res.floor.length) {
      L.push('Floor of this machine for the same shape without any queue (`floor.js`: the ' +
        'producer\'s tick, a C relay doing `BLPOP` then `XADD`, an `XREAD` observer): ' +
        `${res.floor.map((f) => `${f.rate}/s p50 ${f2(f.p50Ms)}, p99 ${f2(f.p99Ms)}, max ${f2(f.maxMs)} ms`).join('; ')}.`, '');
    }
  }

  if (res.idle.length) {
    L.push(`### Idle worker (nothing to do, concurrency 10)`);
    L.push('');
    L.push('| worker | VmRSS MiB | RssAnon MiB | RssFile MiB | PSS MiB | private MiB | CPU ms/min idle |');
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const i of res.idle) {
      L.push(`| ${LABEL[i.kind]} | ${mib(i.VmRSS)} | ${mib(i.RssAnon)} | ${mib(i.RssFile)} | ` +
        `${i.Pss === undefined ? 'n/a' : mib(i.Pss)} | ${i.Private === undefined ? 'n/a' : mib(i.Private)} | ` +
        `${f0(i.idleCpuMsPerMin)} |`);
    }
    L.push('');
    const ci = res.idle.find((i) => i.kind === 'c');
    const ni = res.idle.find((i) => i.kind === 'node');
    if (ci && ni) {
      L.push(`Ratios C/Node: VmRSS ${ratio(ci.VmRSS, ni.VmRSS)}, PSS ${ratio(ci.Pss, ni.Pss)}, ` +
        `private ${ratio(ci.Private, ni.Private)}.`, '');
    }
  }

  L.push('### Targets');
  L.push('');
  L.push('| target | measured | met? |');
  L.push('|---|---|---|');
  const top = Math.max(...opt.concurrency);
  const at = (k) => res.drain.filter((d) => d.kind === k && d.concurrency === top);
  const cT = at('c');
  const nT = at('node');
  if (cT.length && nT.length) {
    const rs = cT.map((c) => c.rate / nT.find((n) => n.removeOnComplete === c.removeOnComplete).rate);
    L.push(`| ≥ 2x Node's throughput at concurrency ${top} | ` +
      `${rs.map((x) => `${x.toFixed(2)}x`).join(' / ')} (removeOnComplete ${cT.map((c) => c.removeOnComplete).join(' / ')}) | ` +
      `${rs.every((x) => x >= 2) ? 'yes' : 'no'} |`);
  }
  const cAll = res.drain.filter((d) => d.kind === 'c');
  if (cAll.length) {
    // Per concurrency, the worse of removeOnComplete true and false.
    const per = opt.concurrency.map((c) => [c, Math.max(...cAll.filter((d) => d.concurrency === c)
      .map((d) => d.workerCpuUs))]);
    const ok = per.filter(([, v]) => v < 3).length;
    L.push(`| < 3 µs worker CPU per job | ${per.map(([c, v]) => `${f1(v)} µs at concurrency ${c}`).join(', ')} | ` +
      `${ok === per.length ? 'yes' : ok ? 'partly' : 'no'} |`);
  }
  const cIdle = res.idle.find((i) => i.kind === 'c');
  if (cIdle) {
    L.push(`| idle RSS < 8 MiB | VmRSS ${mib(cIdle.VmRSS)} MiB: ${mib(cIdle.RssAnon)} MiB anonymous, ` +
      `${mib(cIdle.RssFile)} MiB mapped files (PSS ${cIdle.Pss === undefined ? 'n/a' : mib(cIdle.Pss)} MiB) | ` +
      `${cIdle.VmRSS < 8192 ? 'yes' : 'no'} |`);
  }
  const cLat = res.latency.find((l) => l.kind === 'c' && l.rate === 1000);
  if (cLat) {
    const fl = res.floor.find((f) => f.rate === 1000);
    L.push(`| p99 < 1 ms at 1,000 jobs/s | ${f2(cLat.p99Ms)} ms` +
      `${fl ? ` (floor of this machine without a queue: ${f2(fl.p99Ms)} ms)` : ''} | ` +
      `${cLat.p99Ms < 1 ? 'yes' : 'no'} |`);
  }
  L.push('');
  return L.join('\n');
}

// ---- floor -----------------------------------------------------------------------

// The same shape as a latency run (the producer's tick, three processes and
// Redis, an XREAD observer) with no queue at all: floor.js with the C relay
// (BLPOP -> XADD). No worker can have a lower p99 on this machine.
async function floor(r, rate) {
  await r.flushall();
  const f = await runForJson('floor.js', `floor-${rate}.log`,
    ['floor.js', String(opt.port), String(rate), String(opt.seconds), opt.floorRelay]);
  return { rate, ...f };
}

// ---- main ------------------------------------------------------------------------

async function main() {
  const r = new Redis({ ...connection, maxRetriesPerRequest: 1 });
  await r.ping();
  const res = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), quick: opt.jobs < 100000,
    machine: machine(), versions: versions(), loadStart: os.loadavg(), command: opt.command,
    jobs: opt.jobs, seconds: opt.seconds, latConcurrency: opt.latConcurrency,
    drain: [], latency: [], idle: [], floor: [],
  };
  for (const roc of opt.parts.includes('drain') ? [true, false] : []) {
    for (const c of opt.concurrency) {
      for (const k of opt.workers) {
        log(`drain ${LABEL[k]} concurrency ${c} removeOnComplete ${roc}`);
        const d = await drain(r, k, c, roc);
        log(`  ${f0(d.rate)} jobs/s, worker ${f1(d.workerCpuUs)} µs/job, redis ${f1(d.redisCpuUs)} µs/job, ` +
          `${f2(d.callsPerJob)} calls/job, ${f1(d.cmdsPerJob)} cmds/job`);
        res.drain.push(d);
      }
    }
  }
  for (const rate of opt.parts.includes('latency') ? opt.rates : []) {
    for (const k of opt.workers) {
      log(`latency ${LABEL[k]} at ${rate} jobs/s`);
      const l = await latency(r, k, rate);
      log(`  p50 ${f2(l.p50Ms)} ms, p99 ${f2(l.p99Ms)} ms (achieved ${f0(l.achievedRate)} jobs/s)`);
      res.latency.push(l);
    }
    // Above ~1,000/s the relay's two round trips per message make it the
    // bottleneck, and its queueing is no longer a floor for anything.
    if (opt.floorRelay && rate <= 1000) {
      log(`floor (no queue: producer, C relay, observer) at ${rate}/s`);
      const f = await floor(r, rate);
      log(`  p50 ${f2(f.p50Ms)} ms, p99 ${f2(f.p99Ms)} ms`);
      res.floor.push(f);
    }
  }
  for (const k of opt.parts.includes('idle') ? opt.workers : []) {
    log(`idle ${LABEL[k]}`);
    const i = await idle(r, k);
    log(`  VmRSS ${mib(i.VmRSS)} MiB`);
    res.idle.push(i);
  }
  res.loadEnd = os.loadavg();
  await r.quit();
  if (opt.json) fs.writeFileSync(opt.json, `${JSON.stringify(res, null, 2)}\n`);
  process.stdout.write(`${render(res)}\n`);
}

main().catch((err) => {
  log(`error: ${err.message}`);
  killAll();
  process.exit(1);
});
