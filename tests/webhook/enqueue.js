// Enqueues inbound actions exactly as Nova's POST /api/webhooks/actions
// does: queue webhook-delivery, job process-inbound-action, and no job
// options at all (the route builds its own Queue without defaults, so
// attempts 1 and jobs kept forever). Reads one JSON object per line on
// stdin: the job data {action, userId, details, timestamp}, with an
// optional "_jobId" (custom job id) and "_name" (another job name).
// Prints the job ids, one per line.
//
// usage: node enqueue.js REDIS_URL [--queue Q] [--attempts N]
'use strict';
const { Queue } = require('bullmq');

const args = process.argv.slice(2);
const url = new URL(args.shift());
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const queueName = opt('--queue', 'webhook-delivery');
const attempts = opt('--attempts', null);

async function main() {
  const input = require('fs')
    .readFileSync(0, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port) } });
  for (const line of input) {
    const data = JSON.parse(line);
    const opts = {};
    if (data._jobId) opts.jobId = data._jobId;
    if (attempts) opts.attempts = Number(attempts);
    const name = data._name || 'process-inbound-action';
    delete data._jobId;
    delete data._name;
    const job = await queue.add(name, data, opts);
    console.log(job.id);
  }
  await queue.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
