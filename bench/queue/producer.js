// producer.js - adds no-op jobs at a steady rate for the latency part of the
// queue benchmark. Each job carries its enqueue instant in data.return
// (CLOCK_MONOTONIC, microseconds: process.hrtime is system-wide on Linux,
// so the observer process can subtract it from its own clock); both workers
// return data.return, so the `completed` event brings it back.
//
// It also times each add's own round trip, from the stamp to the reply of
// Queue.add: no worker is involved in it, so its tail is the part of the
// end-to-end tail that the machine (scheduling of the producer and Redis)
// puts there before any worker can act.
//
// usage: node producer.js PORT QUEUE RATE SECONDS
// Prints one JSON line {"sent":N,"seconds":S,"lateMaxMs":L,"addP50Ms":..,
// "addP99Ms":..} and exits 0.
'use strict';

const { Queue } = require('bullmq');

const [port, queueName, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
if (!port || !queueName || !(rate > 0) || !(seconds > 0)) {
  process.stderr.write('usage: node producer.js PORT QUEUE RATE SECONDS\n');
  process.exit(2);
}

const nowUs = () => Number(process.hrtime.bigint()) / 1000;

async function main() {
  const queue = new Queue(queueName, { connection: { host: '127.0.0.1', port: Number(port) } });
  await queue.waitUntilReady();
  const total = Math.round(rate * seconds);
  const pending = new Set();
  const addUs = [];
  let sent = 0;
  let lateMaxMs = 0; // how far the tick loop fell behind its schedule
  const start = nowUs();
  await new Promise((resolve) => {
    // A 1 ms tick adds the jobs due so far: the rate stays steady at 1 ms
    // granularity without spinning a core the worker and Redis need.
    const tick = () => {
      const elapsedMs = (nowUs() - start) / 1000;
      const due = Math.min(total, Math.floor((elapsedMs * rate) / 1000) + 1);
      if (due - sent > 1) lateMaxMs = Math.max(lateMaxMs, ((due - sent - 1) * 1000) / rate);
      while (sent < due) {
        const stamp = nowUs();
        const p = queue.add('lat', { return: stamp }, { removeOnComplete: false });
        p.then(() => addUs.push(nowUs() - stamp), () => {});
        pending.add(p);
        p.finally(() => pending.delete(p)).catch(() => {});
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all([...pending]);
  const took = (nowUs() - start) / 1e6;
  await queue.close();
  addUs.sort((a, b) => a - b);
  const pct = (q) => addUs[Math.min(addUs.length - 1, Math.max(0, Math.ceil(q * addUs.length) - 1))] / 1000;
  process.stdout.write(`${JSON.stringify({ sent, seconds: took, lateMaxMs, addP50Ms: pct(0.5), addP99Ms: pct(0.99) })}\n`);
}

main().catch((err) => {
  process.stderr.write(`producer: ${err.stack || err.message}\n`);
  process.exit(1);
});
