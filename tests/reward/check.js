// Exactly-once check: every payment the test network applied matches one
// confirmed nova_worker_payments row (tx hash, op index, destination,
// amount), every confirmed row was paid once, and every confirmed issuance
// is backed by one confirmed payment. Prints a summary; exit 1 on any
// violation.
//
// usage: node check.js HORIZON_URL DB_JSON [--expect-confirmed N]
//        [--expect-failed N] [--quiet]
'use strict';
const fs = require('fs');

const [horizon, dbFile, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : undefined;
};
const quiet = rest.includes('--quiet');

async function main() {
  const db = JSON.parse(fs.readFileSync(dbFile, 'utf8'));
  const res = await fetch(`${horizon}/_admin/payments`);
  const { payments } = await res.json();
  const problems = [];

  const rowsByOp = new Map();
  for (const p of db.payments) {
    if (p.status === 'confirmed') rowsByOp.set(`${p.tx_hash}/${p.op_index}`, p);
  }
  const paidOps = new Map();
  for (const pay of payments) {
    const key = `${pay.tx_hash}/${pay.op_index}`;
    paidOps.set(key, (paidOps.get(key) || 0) + 1);
    const row = rowsByOp.get(key);
    if (!row) {
      problems.push(`network payment ${key} to ${pay.destination} has no confirmed row`);
      continue;
    }
    if (row.dest !== pay.destination) problems.push(`${key}: destination differs`);
    if (Number(row.amount).toFixed(7) !== pay.amount) problems.push(`${key}: amount ${row.amount} != ${pay.amount}`);
  }
  for (const [key, row] of rowsByOp) {
    if (paidOps.get(key) !== 1) problems.push(`row ${row.reference} (${key}) paid ${paidOps.get(key) || 0} times`);
  }
  // one payment row per issuance (unique reference), confirmed iff issuance confirmed
  const payByRef = new Map(db.payments.map((p) => [p.reference, p]));
  const count = { confirmed: 0, failed: 0, pending: 0 };
  const reasons = {};
  for (const i of db.issuances) {
    count[i.status] = (count[i.status] || 0) + 1;
    const p = payByRef.get(`issuance:${i.id}`);
    if (i.status === 'confirmed') {
      if (!p || p.status !== 'confirmed') problems.push(`issuance ${i.id} confirmed without a confirmed payment`);
      else if (p.tx_hash !== i.tx_hash) problems.push(`issuance ${i.id}: tx hash ${i.tx_hash} != ${p.tx_hash}`);
    } else if (p && p.status === 'confirmed') {
      problems.push(`issuance ${i.id} is ${i.status} but its payment was confirmed`);
    }
    if (i.status === 'failed') reasons[i.error] = (reasons[i.error] || 0) + 1;
  }
  const ec = opt('--expect-confirmed');
  const ef = opt('--expect-failed');
  if (ec !== undefined && count.confirmed !== ec) problems.push(`confirmed ${count.confirmed}, expected ${ec}`);
  if (ef !== undefined && count.failed !== ef) problems.push(`failed ${count.failed}, expected ${ef}`);
  const txs = new Set(payments.map((p) => p.tx_hash));
  if (!quiet || problems.length) {
    console.log(`issuances: ${db.issuances.length} (confirmed ${count.confirmed}, failed ${count.failed}, pending ${count.pending || 0})`);
    console.log(`network: ${payments.length} payment(s) in ${txs.size} transaction(s)`);
    for (const [r, n] of Object.entries(reasons)) console.log(`  failed ${n}: ${r}`);
  }
  if (problems.length) {
    console.log(`EXACTLY-ONCE VIOLATIONS (${problems.length}):`);
    for (const p of problems.slice(0, 30)) console.log(`  ${p}`);
    process.exit(1);
  }
  if (!quiet) console.log('exactly once: ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
