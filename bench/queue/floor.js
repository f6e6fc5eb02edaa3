// floor.js - the latency floor of the machine for the shape of the latency
// benchmark, without any queue logic: a producer process pushes a stamp
// (CLOCK_MONOTONIC µs) on the same 1 ms tick as producer.js, a relay
// process pops it (BLPOP) and appends it to a stream (XADD), and an
// observer process reads the stream (XREAD BLOCK, as QueueEvents does) and
// subtracts the stamp from its own clock. Same hops as enqueue -> worker ->
// `completed` event (three processes and Redis, each hop a wake-up), one
// round trip each, no scripts.
//
// usage: node floor.js PORT RATE SECONDS [RELAY]
//   RELAY: node (default), or the path of a C relay binary taking PORT
//   (bench/queue/floor_relay.c: cc -O2 floor_relay.c -lhiredis).
// Prints one JSON line: {"n":N,"p50Ms":..,"p99Ms":..,"maxMs":..}.
// Roles (run by the driver itself): floor.js --producer|--relay|--observer.
'use strict';

const { spawn } = require('node:child_process');
const Redis = require('ioredis');

const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const Q = 'floor:q';
const EV = 'floor:ev';

async function producer(port, rate, seconds) {
  const r = new Redis({ host: '127.0.0.1', port });
  const total = Math.round(rate * seconds);
  let sent = 0;
  const start = nowUs();
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((nowUs() - start) / 1000) * rate / 1000) + 1);
      while (sent < due) {
        r.lpush(Q, String(nowUs()));
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await r.quit();
}

async function relay(port) {
  const r = new Redis({ host: '127.0.0.1', port });
  for (;;) {
    const [, v] = await r.blpop(Q, 0);
    if (v === 'end') break;
    await r.xadd(EV, '*', 'v', v);
  }
  await r.quit();
}

async function observer(port, n) {
  const r = new Redis({ host: '127.0.0.1', port });
  const lat = [];
  let id = '$';
  process.stdout.write('ready\n');
  while (lat.length < n) {
    const res = await r.xread('BLOCK', 0, 'STREAMS', EV, id);
    const now = nowUs();
    for (const [, entries] of res) {
      for (const [eid, fields] of entries) {
        lat.push(now - Number(fields[1]));
        id = eid;
      }
    }
  }
  await r.quit();
  lat.sort((a, b) => a - b);
  const pct = (q) => lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] / 1000;
  process.stdout.write(`${JSON.stringify({ n: lat.length, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: lat[lat.length - 1] / 1000 })}\n`);
}

function child(args, out) {
  const p = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', out ? 'pipe' : 'ignore', 'inherit'] });
  p.done = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  return p;
}

async function main() {
  const a = process.argv.slice(2);
  if (a[0] === '--producer') return producer(Number(a[1]), Number(a[2]), Number(a[3]));
  if (a[0] === '--relay') return relay(Number(a[1]));
  if (a[0] === '--observer') return observer(Number(a[1]), Number(a[2]));
  const [port, rate, seconds, relayKind = 'node'] = a;
  if (!(Number(port) > 0) || !(Number(rate) > 0) || !(Number(seconds) > 0)) {
    process.stderr.write('usage: node floor.js PORT RATE SECONDS [node|RELAY_BINARY]\n');
    process.exit(2);
  }
  const r = new Redis({ host: '127.0.0.1', port: Number(port) });
  await r.del(Q, EV);
  const n = Math.round(Number(rate) * Number(seconds));
  const rel = relayKind === 'node' ? child(['--relay', port])
    : Object.assign(spawn(relayKind, [port], { stdio: 'inherit' }), {});
  if (!rel.done) rel.done = new Promise((resolve) => rel.on('exit', resolve));
  const obs = child(['--observer', port, String(n)], true);
  let result = '';
  let ready;
  const isReady = new Promise((resolve) => { ready = resolve; });
  obs.stdout.on('data', (d) => {
    result += d;
    if (result.includes('ready\n')) ready();
  });
  await isReady;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const prod = child(['--producer', port, rate, seconds]);
  await prod.done;
  await obs.done;
  await r.lpush(Q, 'end');
  await rel.done;
  await r.quit();
  process.stdout.write(result.split('\n').find((l) => l.startsWith('{')) + '\n');
}

main().catch((err) => {
  process.stderr.write(`floor: ${err.stack || err.message}\n`);
  process.exit(1);
});
