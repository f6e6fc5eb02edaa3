// Adds and waits for jobs through the real bullmq, as Nova's API or the
// runtime's scheduler would.
//
// usage: node jobs.js REDIS_URL add QUEUE NAME DATA_JSON [--id ID]
//            prints the job id
//        node jobs.js REDIS_URL wait QUEUE ID [--timeout MS]
//            waits until the job completed or failed; prints
//            {"state":..., "returnvalue":..., "failedReason":...}
//        node jobs.js REDIS_URL run QUEUE NAME DATA_JSON [--id ID] [--timeout MS]
//            add, then wait
//        node jobs.js REDIS_URL finished QUEUE
//            one line per completed or failed job: {"id", "state",
//            "returnvalue", "failedReason"}
// A job id of the form repeat:<scheduler>:<slot ms> is the id the
// runtime's scheduler gives the job of a slot (bullmq accepts that shape).
'use strict';
const { Queue, Job } = require('bullmq');

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
const id = opt('--id', undefined);
const timeout = Number(opt('--timeout', '60000'));

async function wait(queue, jobId) {
  const deadline = Date.now() + timeout;
  for (;;) {
    // the state first, then the job: a job read before it finished would
    // carry no result
    const state = await queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') {
      const job = await Job.fromId(queue, jobId);
      return { state, returnvalue: job.returnvalue, failedReason: job.failedReason || null };
    }
    if (Date.now() > deadline) throw new Error(`job ${jobId} not finished after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const queue = new Queue(args[0], { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    if (cmd === 'add' || cmd === 'run') {
      const job = await queue.add(args[1], JSON.parse(args[2]), id ? { jobId: id } : {});
      if (cmd === 'add') console.log(job.id);
      else console.log(JSON.stringify(await wait(queue, job.id)));
    } else if (cmd === 'wait') {
      console.log(JSON.stringify(await wait(queue, args[1])));
    } else if (cmd === 'finished') {
      for (const state of ['completed', 'failed'])
        for (const job of await queue.getJobs([state], 0, -1))
          console.log(JSON.stringify({ id: job.id, state, returnvalue: job.returnvalue, failedReason: job.failedReason || null }));
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
  } finally {
    await queue.close();
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
