// Contract events on the Stellar test network (POST /_admin/events, ScVals
// from values.js, made with @stellar/stellar-base), and the check of what
// the contract_events indexer stored against what the network serves.
//
// usage: node events.js URL COMMAND ...   (URL: the test network)
//   contracts N [LABEL]   N contract ids (deterministic), comma-separated
//   emit --contracts C1,C2 --count N [--per-call K] [--seed S] [--skip-ledgers L]
//                         N events of Nova's families, round-robin over the
//                         contracts, K per call (one transaction, one ledger,
//                         closed at once; L more empty ledgers closed after
//                         each call). Prints {count, first_ledger, last_ledger}
//   emit-values --contract C
//                         one event per ScVal type (values.js everyType), type
//                         "values:<name>". Prints {count, ledger}
//   emit-raw --contract C --value B64 [--topic B64]...
//                         one event whose value (and topics) are raw base64,
//                         not checked: malformed XDR. Prints the event
//   check ROWS.json --contracts C1,C2 [--from-ledger L] [--failed ID,...]
//                         every event of those contracts the network serves
//                         (ledger >= L) is exactly one row, equal to it (type
//                         tag:name, value = scValToNative, raw XDR kept), and
//                         there is no other row; events listed in --failed
//                         must be rows with status failed. Prints a summary.
'use strict';
const V = require('./values.js');

const args = process.argv.slice(2);
const base = args.shift();
const cmd = args.shift();
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const opts = (name) => {
  const out = [];
  for (let v; (v = opt(name)) !== undefined; ) out.push(v);
  return out;
};

async function post(path, body) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${text}`);
  return JSON.parse(text);
}

async function get(path) {
  const r = await fetch(base + path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function emit() {
  const contracts = opt('--contracts').split(',');
  const count = Number(opt('--count'));
  const perCall = Number(opt('--per-call', '50'));
  const skip = Number(opt('--skip-ledgers', '0'));
  const rnd = V.prng(Number(opt('--seed', '1')));
  let first = null;
  let last = null;
  for (let done = 0, k = 0; done < count; ) {
    const n = Math.min(perCall, count - done);
    const events = [];
    for (let i = 0; i < n; i++, k++) events.push({ contractId: contracts[k % contracts.length], ...V.novaEvent(rnd) });
    const r = await post('/_admin/events', { events, close_ledger: true });
    if (first === null) first = r.events[0].ledger;
    last = r.events[0].ledger;
    done += n;
    if (skip > 0) await post('/_admin/close-ledger', { count: skip });
  }
  console.log(JSON.stringify({ count, first_ledger: first, last_ledger: last }));
}

async function emitValues() {
  const contract = opt('--contract');
  const events = V.everyType().map(([name, v]) => ({
    contractId: contract,
    topic: [V.b64(V.sym('values')), V.b64(V.sym(name))],
    value: V.b64(v),
  }));
  const r = await post('/_admin/events', { events, close_ledger: true });
  console.log(JSON.stringify({ count: events.length, ledger: r.events[0].ledger }));
}

async function emitRaw() {
  const contract = opt('--contract');
  const value = opt('--value');
  const topics = opts('--topic');
  const topic = topics.length ? topics.map((t) => ({ raw_xdr: t })) : [V.b64(V.sym('nova_rwd')), V.b64(V.sym('staked'))];
  const r = await post('/_admin/events', { events: [{ contractId: contract, topic, value: { raw_xdr: value } }], close_ledger: true });
  console.log(JSON.stringify(r.events[0]));
}

function typeOf(ev) {
  const { xdr } = require('@stellar/stellar-base');
  const s = (b64) => {
    try {
      const v = xdr.ScVal.fromXDR(b64, 'base64');
      return v.switch().name === 'scvSymbol' && v.sym().length > 0 ? v.sym().toString().toLowerCase() : null;
    } catch (e) {
      return null;
    }
  };
  const tag = ev.topic.length > 0 ? s(ev.topic[0]) : null;
  const name = tag !== null && ev.topic.length > 1 ? s(ev.topic[1]) : null;
  if (tag === null) return ev.type;
  return name === null ? tag : `${tag}:${name}`;
}

async function check() {
  const rows = JSON.parse(require('fs').readFileSync(args.shift(), 'utf8'));
  const contracts = new Set(opt('--contracts').split(','));
  const from = Number(opt('--from-ledger', '0'));
  const failed = new Set((opt('--failed', '') || '').split(',').filter(Boolean));
  const latest = (await get('/')).history_latest_ledger;
  const events = (await get('/_admin/events')).events.filter((e) => contracts.has(e.contractId) && e.ledger >= from && e.ledger <= latest);
  const problems = [];
  const byId = new Map();
  for (const r of rows) {
    if (byId.has(r.event_id)) problems.push(`event ${r.event_id}: ${byId.get(r.event_id).length + 1} rows`);
    byId.set(r.event_id, [...(byId.get(r.event_id) || []), r]);
  }
  const want = new Set(events.map((e) => e.id));
  for (const id of byId.keys()) if (!want.has(id)) problems.push(`row ${id}: no such event served`);
  const types = {};
  for (const ev of events) {
    const got = byId.get(ev.id);
    if (!got) {
      problems.push(`event ${ev.id} (ledger ${ev.ledger}): no row`);
      continue;
    }
    const r = got[0];
    const d = r.event_data;
    const bad = (what, a, b) => problems.push(`event ${ev.id}: ${what}: row ${V.canon(a)}, network ${V.canon(b)}`);
    if (r.contract_id !== ev.contractId) bad('contract_id', r.contract_id, ev.contractId);
    if (r.ledger_sequence !== ev.ledger) bad('ledger_sequence', r.ledger_sequence, ev.ledger);
    if (r.transaction_hash !== ev.txHash) bad('transaction_hash', r.transaction_hash, ev.txHash);
    if (d.xdr.value !== ev.value || V.canon(d.xdr.topics) !== V.canon(ev.topic)) bad('raw xdr', d.xdr, { topics: ev.topic, value: ev.value });
    if (d.id !== ev.id || d.ledger !== ev.ledger || d.contract_id !== ev.contractId) bad('event_data metadata', d, ev);
    if (failed.has(ev.id)) {
      if (r.status !== 'failed' || !r.error_message) bad('status', [r.status, r.error_message], 'failed with a reason');
      continue;
    }
    if (r.status !== 'processed') bad('status', [r.status, r.error_message], 'processed');
    if (r.event_type !== typeOf(ev)) bad('event_type', r.event_type, typeOf(ev));
    types[r.event_type] = (types[r.event_type] || 0) + 1;
    let value;
    let topics;
    try {
      value = V.expected(ev.value);
      topics = ev.topic.map((t) => V.expected(t));
    } catch (e) {
      problems.push(`event ${ev.id}: stellar-base cannot decode it: ${e.message}`);
      continue;
    }
    if (V.canon(d.value) !== V.canon(value)) bad('value', d.value, value);
    if (V.canon(d.topics) !== V.canon(topics)) bad('topics', d.topics, topics);
    if (Array.isArray(value) && typeof value[0] === 'number') {
      if (d.schema_version !== value[0] || V.canon(d.fields) !== V.canon(value.slice(1))) bad('schema_version/fields', [d.schema_version, d.fields], value);
    }
  }
  const out = { events: events.length, rows: rows.length, types, problems: problems.length };
  console.log(JSON.stringify(out));
  if (problems.length) {
    console.error(problems.slice(0, 20).join('\n'));
    process.exit(1);
  }
}

const commands = {
  contracts: async () => {
    const n = Number(args[0]);
    const label = args[1] || 'nova-test/contract';
    console.log(Array.from({ length: n }, (_, i) => V.contractId(`${label}-${i}`)).join(','));
  },
  emit,
  'emit-values': emitValues,
  'emit-raw': emitRaw,
  check,
};

(commands[cmd] || (() => Promise.reject(new Error(`unknown command ${cmd}`))))().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
