// producer.js - adds no-op jobs at a steady rate for the latency part of the
// queue benchmark. Each job carries its enqueue instant in data.return
// (CLOCK_MONOTONIC, microseconds: process.hrtime is system-wide on Linux,
// so the observer process can subtract it from its own clock); both workers
// return data.return, so the `completed` event brings it back.
//
// usage: node producer.js PORT QUEUE RATE SECONDS
// Prints one JSON line {"sent":N,"seconds":S,"lateMaxMs":L} and exits 0.
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
        const p = queue.add('lat', { return: nowUs() }, { removeOnComplete: false });
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
  process.stdout.write(`${JSON.stringify({ sent, seconds: took, lateMaxMs })}\n`);
}

main().catch((err) => {
  process.stderr.write(`producer: ${err.stack || err.message}\n`);
  process.exit(1);
});
