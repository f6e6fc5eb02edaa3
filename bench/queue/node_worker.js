// node_worker.js - the Node side of the queue benchmark: a stock BullMQ
// Worker with a no-op processor that returns job.data.return (what the echo
// plugin answers), so both workers leave the same thing in Redis.
//
// usage: node node_worker.js PORT QUEUE CONCURRENCY
// Prints READY once the worker is connected; SIGTERM closes it (waiting for
// jobs in flight, as a deploy would) and exits 0.
'use strict';

const { Worker } = require('bullmq');

const [port, queue, concurrency] = process.argv.slice(2);
if (!port || !queue || !(Number(concurrency) >= 1)) {
  process.stderr.write('usage: node node_worker.js PORT QUEUE CONCURRENCY\n');
  process.exit(2);
}

const worker = new Worker(queue, async (job) => job.data.return, {
  connection: { host: '127.0.0.1', port: Number(port) },
  concurrency: Number(concurrency),
  name: 'nodeworker',
});

worker.on('error', (err) => process.stderr.write(`node worker error: ${err.message}\n`));
worker.on('failed', (job, err) => process.stderr.write(`job ${job && job.id} failed: ${err.message}\n`));

let closing = false;
async function stop() {
  if (closing) return;
  closing = true;
  try {
    await worker.close();
    process.exit(0);
  } catch (err) {
    process.stderr.write(`close failed: ${err.message}\n`);
    process.exit(1);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

worker.waitUntilReady().then(() => process.stdout.write('READY\n'), (err) => {
  process.stderr.write(`node worker could not connect: ${err.message}\n`);
  process.exit(1);
});
