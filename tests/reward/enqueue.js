// Enqueues reward issuances exactly as Nova's API does
// (services/rewardIssuanceService.js enqueueRewardIssuance): queue
// reward-issuance, job issue-reward, jobId = idempotency key, attempts 3,
// exponential backoff 1 s, removeOnComplete, keep failed. Reads one JSON
// object per line on stdin (the job data) and prints the number enqueued.
//
// usage: node enqueue.js REDIS_URL [--queue Q] [--name N] [--attempts N]
//        [--backoff MS] [--suffix S]   (S appended to job ids: DLQ replays)
'use strict';
const { Queue } = require('bullmq');

const args = process.argv.slice(2);
const url = new URL(args.shift());
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const queueName = opt('--queue', 'reward-issuance');
const jobName = opt('--name', 'issue-reward');
const attempts = Number(opt('--attempts', '3'));
const backoff = Number(opt('--backoff', '1000'));
const suffix = opt('--suffix', '');

async function main() {
  const input = require('fs').readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const queue = new Queue(queueName, {
    connection: { host: url.hostname, port: Number(url.port) },
    defaultJobOptions: {
      attempts,
      backoff: { type: 'exponential', delay: backoff },
      removeOnComplete: true,
      removeOnFail: false,
    },
  });
  let n = 0;
  for (const line of input) {
    const data = JSON.parse(line);
    // The API leaves userId out when it has none.
    if (data.userId === null) delete data.userId;
    const jobId = data.idempotencyKey ? data.idempotencyKey + suffix : undefined;
    await queue.add(jobName, data, jobId ? { jobId } : {});
    n++;
  }
  await queue.close();
  console.log(n);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
