// Runs of the contract_events indexer through the real bullmq: add "index"
// jobs, wait for them, read what the runs returned, list the schedulers.
//
// usage: node jobs.js REDIS_URL COMMAND [--queue contract-events]
//   add N              add N "index" jobs at once; prints their ids
//   wait ID... [--timeout MS]
//                      until each job finished; prints {id, state, returnvalue|failedReason}
//   results            every finished run: [{id, name, state, returnvalue, failedReason,
//                      processedOn, finishedOn}], oldest first
//   idle [--timeout MS]
//                      until no run waits, is active or delayed
//   schedulers         Queue.getJobSchedulers(): [{key, name, every, pattern, next}]
'use strict';
const { Queue } = require('bullmq');

const args = process.argv.slice(2);
const url = new URL(args.shift());
const cmd = args.shift();
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const queueName = opt('--queue', 'contract-events');
const timeout = Number(opt('--timeout', '60000'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function finished(queue, id) {
  const job = await queue.getJob(id);
  if (!job) return { id, state: 'missing' };
  const state = await job.getState();
  if (state !== 'completed' && state !== 'failed') return null;
  return { id, state, returnvalue: job.returnvalue, failedReason: job.failedReason };
}

async function main() {
  const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    switch (cmd) {
      case 'add': {
        const n = Number(args[0] || '1');
        const jobs = await Promise.all(Array.from({ length: n }, () => queue.add('index', {})));
        console.log(jobs.map((j) => j.id).join(' '));
        break;
      }
      case 'wait': {
        const out = [];
        const deadline = Date.now() + timeout;
        for (const id of args) {
          let r = null;
          while (!(r = await finished(queue, id))) {
            if (Date.now() > deadline) throw new Error(`job ${id} did not finish in ${timeout} ms`);
            await sleep(50);
          }
          out.push(r);
        }
        console.log(JSON.stringify(out));
        break;
      }
      case 'results': {
        const jobs = [...(await queue.getJobs(['completed'])), ...(await queue.getJobs(['failed']))];
        const out = [];
        for (const j of jobs) {
          out.push({
            id: j.id,
            name: j.name,
            state: j.finishedOn && !j.failedReason ? 'completed' : 'failed',
            returnvalue: j.returnvalue,
            failedReason: j.failedReason,
            processedOn: j.processedOn,
            finishedOn: j.finishedOn,
          });
        }
        out.sort((a, b) => (a.processedOn || 0) - (b.processedOn || 0));
        console.log(JSON.stringify(out));
        break;
      }
      case 'idle': {
        const deadline = Date.now() + timeout;
        for (;;) {
          const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
          if (c.wait + c.active + c.delayed + c.prioritized === 0) break;
          if (Date.now() > deadline) throw new Error(`not idle after ${timeout} ms: ${JSON.stringify(c)}`);
          await sleep(50);
        }
        break;
      }
      case 'schedulers': {
        const s = await queue.getJobSchedulers();
        console.log(JSON.stringify(s.map((x) => ({ key: x.key, name: x.name, every: x.every, pattern: x.pattern, next: x.next }))));
        break;
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  } finally {
    await queue.close();
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
