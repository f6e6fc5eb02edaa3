#!/usr/bin/env node
'use strict';
// Local test double of Stellar Horizon and Soroban RPC for nova-worker.
// Validates what it receives with @stellar/stellar-base (an implementation
// independent of the C worker), keeps accounts/ledgers/transactions in
// memory, and lets tests inject faults through an admin API.
// Usage and JSON shapes: README.md in this directory.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { Keypair, StrKey, extractBaseAddress } = require('@stellar/stellar-base');
const { Network, BASE_FEE, BASE_RESERVE } = require('./lib/ledger');
const { parseAmount, formatAmount } = require('./lib/amount');
const { toScValB64 } = require('./lib/scval');
const rpc = require('./lib/rpc');
const { resultXdr } = require('./lib/codes');

const USAGE = `usage: node server.js --port P [options]
  --port P                 TCP port on 127.0.0.1 (0 = pick a free one)
  --ledger-close-ms N      close a ledger every N ms (default 5000; 0 = only POST /_admin/close-ledger)
  --passphrase TEXT        network passphrase (default "Test SDF Network ; September 2015")
  --state FILE             load state from FILE if it exists; save it there after every change
  --submit-wait MODE       close (default): POST /transactions answers when the tx's ledger closes
                           none: answer as soon as the tx is applied
  --submit-timeout-ms N    answer 504 transaction_submission_timeout after N ms waiting for the
                           ledger close (default 30000; the tx stays applied)
  --start-ledger N         sequence of the genesis ledger (default 1000)
  --clock-start UNIX       start the network clock at this unix time (then it runs with the wall
                           clock); ignored when --state loads a saved clock
  --retention-ledgers N    RPC history window in ledgers (default 120960)
  --history-retention-ledgers R
                           Horizon keeps history (transactions, ledgers) of the last R ledgers
                           only: history_elder_ledger = max(genesis, H - R + 1) (default 0 = all)
  --replica-lag N          with --replica-probability: Horizon GETs may be answered by a replica
  --replica-probability P  N ledgers behind (height max(genesis, latest closed - N)), each with
                           probability P in [0,1] (default: replica mode off)
  --replica-seed S         seed (integer) of the replica choice, for reproducible runs
  --one-tx-per-source      like stellar-core, accept one tx per source account per ledger:
                           a second one is TRY_AGAIN_LATER (async 503; sync 504 after the timeout)
  --exit-on-stdin-eof      exit when stdin is closed (the parent test died)
  --verbose                log each request on stderr
Prints one line {"ready":true,"port":P,...} on stdout once listening.`;

function parseArgs(argv) {
  const o = {
    port: null,
    ledgerCloseMs: 5000,
    passphrase: 'Test SDF Network ; September 2015',
    state: null,
    submitWait: 'close',
    submitTimeoutMs: 30000,
    startLedger: 1000,
    clockStart: null,
    retention: 120960,
    historyRetention: 0,
    replicaLag: null,
    replicaProbability: null,
    replicaSeed: null,
    exitOnStdinEof: false,
    oneTxPerSource: false,
    verbose: false,
  };
  const int = (name, v, min) => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name} needs an integer >= ${min}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--port':
        o.port = int(a, next(), 0);
        if (o.port > 65535) throw new Error('--port must be <= 65535');
        break;
      case '--ledger-close-ms':
        o.ledgerCloseMs = int(a, next(), 0);
        break;
      case '--passphrase':
        o.passphrase = next();
        if (!o.passphrase) throw new Error('--passphrase needs a value');
        break;
      case '--state':
        o.state = next();
        if (!o.state) throw new Error('--state needs a file name');
        break;
      case '--submit-wait':
        o.submitWait = next();
        if (o.submitWait !== 'close' && o.submitWait !== 'none') throw new Error('--submit-wait must be close or none');
        break;
      case '--submit-timeout-ms':
        o.submitTimeoutMs = int(a, next(), 1);
        break;
      case '--start-ledger':
        o.startLedger = int(a, next(), 2);
        break;
      case '--clock-start':
        o.clockStart = int(a, next(), 0);
        break;
      case '--retention-ledgers':
        o.retention = int(a, next(), 1);
        break;
      case '--history-retention-ledgers':
        o.historyRetention = int(a, next(), 0);
        break;
      case '--replica-lag':
        o.replicaLag = int(a, next(), 0);
        break;
      case '--replica-probability': {
        const v = next();
        if (v === undefined || !/^(\d+(\.\d*)?|\.\d+)$/.test(v) || Number(v) > 1) {
          throw new Error('--replica-probability needs a number between 0 and 1');
        }
        o.replicaProbability = Number(v);
        break;
      }
      case '--replica-seed':
        o.replicaSeed = int(a, next(), 0);
        break;
      case '--one-tx-per-source':
        o.oneTxPerSource = true;
        break;
      case '--exit-on-stdin-eof':
        o.exitOnStdinEof = true;
        break;
      case '--verbose':
        o.verbose = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.port === null) throw new Error('--port is required');
  if ((o.replicaLag === null) !== (o.replicaProbability === null)) {
    throw new Error('--replica-lag and --replica-probability go together');
  }
  if (o.replicaSeed !== null && o.replicaLag === null) throw new Error('--replica-seed needs --replica-lag and --replica-probability');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`server.js: ${e.message}\n${USAGE}\n`);
  process.exit(2);
}

const net = new Network({
  passphrase: opts.passphrase,
  startLedger: opts.startLedger,
  retention: opts.retention,
  clockOffset: opts.clockStart === null ? 0 : opts.clockStart - Math.floor(Date.now() / 1000),
});
net.oneTxPerSource = opts.oneTxPerSource;
if (opts.state && fs.existsSync(opts.state) && fs.statSync(opts.state).size > 0) {
  try {
    net.loadJSON(JSON.parse(fs.readFileSync(opts.state, 'utf8')));
  } catch (e) {
    process.stderr.write(`server.js: cannot load state ${opts.state}: ${e.message}\n`);
    process.exit(2);
  }
}

// ---- persistence: coalesce all changes of one tick into one write ---------

let saveQueued = false;
function saveNow() {
  saveQueued = false;
  if (!opts.state) return;
  const tmp = `${opts.state}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(net.toJSON()));
  fs.renameSync(tmp, opts.state);
}
net.onChange = () => {
  if (opts.state && !saveQueued) {
    saveQueued = true;
    setImmediate(saveNow);
  }
};

// ---- faults -------------------------------------------------------------

const SUBMIT_ONLY = new Set([
  'timeout_applied',
  'timeout_not_applied',
  'bad_seq',
  'op_no_trust',
  'op_underfunded',
  'op_line_full',
  'op_no_destination',
  'op_not_authorized',
]);
const ANY_TARGET = new Set(['rate_limit', 'status', 'delay', 'disconnect']);
const TARGETS = new Set(['submit', 'horizon', 'rpc', 'any']);
let faults = [];

function addFault(f, i) {
  const where = `faults[${i}]`;
  if (!f || typeof f !== 'object') throw new Error(`${where} must be an object`);
  const kind = f.kind;
  if (!SUBMIT_ONLY.has(kind) && !ANY_TARGET.has(kind) && kind !== 'rpc_error' && kind !== 'lagging_read') {
    throw new Error(`${where}.kind: unknown fault kind ${JSON.stringify(kind)}`);
  }
  const target = f.target || (kind === 'rpc_error' ? 'rpc' : kind === 'lagging_read' ? 'horizon' : 'submit');
  if (!TARGETS.has(target)) throw new Error(`${where}.target must be submit, horizon, rpc or any`);
  if (SUBMIT_ONLY.has(kind) && target !== 'submit') throw new Error(`${where}: ${kind} only applies to target "submit"`);
  if (kind === 'rpc_error' && target !== 'rpc') throw new Error(`${where}: rpc_error only applies to target "rpc"`);
  if (kind === 'lagging_read' && target !== 'horizon') throw new Error(`${where}: lagging_read only applies to target "horizon"`);
  const count = f.count === undefined ? 1 : f.count;
  if (!Number.isInteger(count) || count < 1) throw new Error(`${where}.count must be a positive integer`);
  const out = { kind, target, count };
  if (f.path !== undefined) {
    if (typeof f.path !== 'string' || f.path === '') throw new Error(`${where}.path must be a non-empty string`);
    out.path = f.path;
  }
  if (kind === 'lagging_read') {
    if (!Number.isInteger(f.lag_ledgers) || f.lag_ledgers < 0) throw new Error(`${where}.lag_ledgers must be a non-negative integer`);
    out.lag_ledgers = f.lag_ledgers;
  }
  if (f.delay_ms !== undefined) {
    if (!Number.isInteger(f.delay_ms) || f.delay_ms < 0) throw new Error(`${where}.delay_ms must be a non-negative integer`);
    out.delay_ms = f.delay_ms;
  }
  if (kind === 'delay' && out.delay_ms === undefined) throw new Error(`${where}: delay needs delay_ms`);
  if (kind === 'rate_limit') {
    out.retry_after = f.retry_after === undefined ? 1 : f.retry_after;
    if (!Number.isInteger(out.retry_after) || out.retry_after < 0) throw new Error(`${where}.retry_after must be a non-negative integer`);
  }
  if (kind === 'status') {
    if (!Number.isInteger(f.status) || f.status < 400 || f.status > 599) throw new Error(`${where}.status must be an HTTP error status`);
    out.status = f.status;
    if (f.body !== undefined) out.body = String(f.body);
  }
  if (kind === 'disconnect') out.apply = !!f.apply;
  if (kind.startsWith('op_')) out.op_index = Number.isInteger(f.op_index) ? f.op_index : 0;
  if (kind === 'rpc_error') {
    out.code = Number.isInteger(f.code) ? f.code : -32603;
    out.message = f.message || 'injected error';
  }
  return out;
}

// The first pending fault that matches the request takes one count.
// category: 'submit' | 'horizon' | 'rpc'; pathname: the request path (no
// query) for the `path` substring filter; read: a Horizon GET (the only
// requests a lagging_read fault matches).
function takeFault(category, pathname, read) {
  const idx = faults.findIndex(
    (f) =>
      (f.target === 'any' || f.target === category || (f.target === 'horizon' && category === 'submit')) &&
      (f.path === undefined || pathname.includes(f.path)) &&
      (f.kind !== 'lagging_read' || read),
  );
  if (idx < 0) return null;
  const f = faults[idx];
  f.count -= 1;
  if (f.count === 0) faults.splice(idx, 1);
  return { ...f };
}

// ---- Horizon replicas and history retention -------------------------------
//
// Every Horizon answer comes from a "view": the up-to-date one (current
// state, including the effects of txs in the open ledger; height = latest
// closed ledger) or a lagging replica at height H that knows ledgers <= H
// only. Both keep history (transactions, ledgers) of [elder, height] only,
// elder = max(genesis, height - R + 1) with R = history retention (0 = all).

const horizon = {
  retention: opts.historyRetention,
  // null = replica mode off, else {lag_ledgers, probability, seed}
  replicas:
    opts.replicaLag === null
      ? null
      : { lag_ledgers: opts.replicaLag, probability: opts.replicaProbability, seed: opts.replicaSeed },
  draws: 0, // replica choices made since the mode was set (seeded PRNG position)
  counters: { lagged: 0, forced: 0, up_to_date: 0 },
};

// A number in [0, 1): seeded = sha256(seed ":" n) for the n-th draw, so a run
// with the same seed and the same requests makes the same choices.
function replicaDraw() {
  const r = horizon.replicas;
  const n = horizon.draws++;
  if (r.seed === null) return Math.random();
  const d = crypto.createHash('sha256').update(`${r.seed}:${n}`).digest();
  return d.readUIntBE(0, 6) / 2 ** 48;
}

function elderFor(height) {
  const g = net.genesis();
  return horizon.retention === 0 ? g : Math.max(g, height - horizon.retention + 1);
}

function upToDateView() {
  const L = net.latest().sequence;
  return { lagging: false, height: L, elder: elderFor(L) };
}

function laggingView(lag) {
  const H = Math.max(net.genesis(), net.latest().sequence - lag);
  return { lagging: true, height: H, elder: elderFor(H) };
}

// The view that answers one Horizon GET: a lagging_read fault forces a
// replica; otherwise, in replica mode, a lagging one with the probability.
function chooseReadView(fault) {
  let lag = null;
  if (fault && fault.kind === 'lagging_read') {
    lag = fault.lag_ledgers;
    horizon.counters.forced++;
  } else if (horizon.replicas && replicaDraw() < horizon.replicas.probability) {
    lag = horizon.replicas.lag_ledgers;
  }
  if (lag === null) {
    horizon.counters.up_to_date++;
    return upToDateView();
  }
  horizon.counters.lagged++;
  return laggingView(lag);
}

// Is an included transaction part of the view's history?
function txVisible(view, t) {
  return t.ledger >= view.elder && (!view.lagging || t.ledger <= view.height);
}

function replicaInfo() {
  const r = horizon.replicas;
  return {
    enabled: !!r,
    lag_ledgers: r ? r.lag_ledgers : null,
    probability: r ? r.probability : 0,
    seed: r ? r.seed : null,
    counters: { ...horizon.counters },
  };
}

function retentionInfo() {
  const v = upToDateView();
  return { ledgers: horizon.retention, history_elder_ledger: v.elder, history_latest_ledger: v.height };
}

// ---- HTTP helpers -------------------------------------------------------

let baseUrl = '';
const submissions = [];
const waiters = new Map(); // ledger sequence -> [fn]

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function iso(unix) {
  return rpc.rfc3339(unix);
}

// Latest-Ledger of a Horizon answer (res.horizonView is set for Horizon
// requests only): the lagging replica's height, or for the up-to-date view
// the latest closed ledger when the answer is written (a sync submission
// answers after its ledger closed).
function latestLedgerHeader(res) {
  const v = res.horizonView;
  if (!v) return {};
  return { 'Latest-Ledger': String(v.lagging ? v.height : net.latest().sequence) };
}

function send(res, status, obj, headers = {}) {
  if (res.writableEnded || res.destroyed) return;
  const body = JSON.stringify(obj, null, 2) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...latestLedgerHeader(res),
    ...headers,
  });
  res.end(body);
}

// Titles follow Horizon's problem names; the details are this double's own.
const PROBLEMS = {
  bad_request: ['Bad Request', 'The request is invalid; extras.invalid_field names the field.'],
  not_found: ['Resource Missing', 'Nothing is known at this URL (unknown account, hash or ledger).'],
  transaction_failed: ['Transaction Failed', 'The transaction was rejected or failed in a ledger; extras.result_codes tells why.'],
  transaction_malformed: ['Transaction Malformed', 'The tx field does not decode to a TransactionEnvelope.'],
  transaction_submission_timeout: ['Transaction Submission Timeout', 'No outcome in time. The transaction may still be applied: look up extras.hash with GET /transactions/{hash} before resubmitting.'],
  rate_limit_exceeded: ['Rate Limit Exceeded', 'Too many requests; retry after the Retry-After delay (seconds).'],
  unsupported_media_type: ['Unsupported Media Type', 'Send the form as application/x-www-form-urlencoded.'],
  service_unavailable: ['Service Unavailable', 'Unavailable right now (injected fault).'],
  timeout: ['Timeout', 'Timed out (injected fault).'],
  server_error: ['Internal Server Error', 'Internal error (injected fault or a bug in the double).'],
  method_not_allowed: ['Method Not Allowed', 'This resource does not support the request method.'],
};

function problem(res, status, name, { detail, extras, headers } = {}) {
  if (res.writableEnded || res.destroyed) return;
  const [title, defDetail] = PROBLEMS[name] || ['Error', 'Error'];
  const p = { type: `https://stellar.org/horizon-errors/${name}`, title, status, detail: detail || defDetail };
  if (extras) p.extras = extras;
  const body = JSON.stringify(p, null, 2) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/problem+json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...latestLedgerHeader(res),
    ...headers,
  });
  res.end(body);
}

function statusProblemName(status) {
  if (status === 429) return 'rate_limit_exceeded';
  if (status === 503) return 'service_unavailable';
  if (status === 504) return 'timeout';
  if (status === 400) return 'bad_request';
  if (status === 404) return 'not_found';
  return 'server_error';
}

function readBody(req, max) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > max) {
        reject(Object.assign(new Error(`request body larger than ${max} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonBody(text) {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw Object.assign(new Error(`body is not valid JSON: ${e.message}`), { status: 400 });
  }
}

// ---- Horizon resources ----------------------------------------------------

function toid(ledger, order) {
  return ((BigInt(ledger) << 32n) | (BigInt(order) << 12n)).toString();
}

function renderAccount(a) {
  const balances = [...a.trustlines.values()].map((t) => ({
    balance: formatAmount(t.balance),
    limit: formatAmount(t.limit),
    buying_liabilities: '0.0000000',
    selling_liabilities: '0.0000000',
    last_modified_ledger: a.last_modified_ledger,
    is_authorized: t.authorized,
    is_authorized_to_maintain_liabilities: t.authorized,
    is_clawback_enabled: false,
    asset_type: t.code.length <= 4 ? 'credit_alphanum4' : 'credit_alphanum12',
    asset_code: t.code,
    asset_issuer: t.issuer,
  }));
  // Horizon lists the native balance last.
  balances.push({
    balance: formatAmount(a.balance),
    buying_liabilities: '0.0000000',
    selling_liabilities: '0.0000000',
    asset_type: 'native',
  });
  return {
    _links: {
      self: { href: `${baseUrl}/accounts/${a.id}` },
      transactions: { href: `${baseUrl}/accounts/${a.id}/transactions{?cursor,limit,order}`, templated: true },
    },
    id: a.id,
    account_id: a.id,
    sequence: a.sequence.toString(),
    subentry_count: a.trustlines.size,
    last_modified_ledger: a.last_modified_ledger,
    thresholds: { low_threshold: 0, med_threshold: 0, high_threshold: 0 },
    flags: { auth_required: false, auth_revocable: false, auth_immutable: false, auth_clawback_enabled: false },
    balances,
    signers: [{ weight: 1, key: a.id, type: 'ed25519_public_key' }],
    data: {},
    num_sponsoring: 0,
    num_sponsored: 0,
    paging_token: a.id,
  };
}

// requested: the hash the client asked for; for a fee bump fetched by its
// inner hash, id/hash/signatures are the inner transaction's (as Horizon).
function renderTx(t, requested = t.hash) {
  const created = t.created_at === null || t.created_at === undefined ? t.applied_at : t.created_at;
  const byInner = !!t.inner_transaction && requested === t.inner_transaction.hash;
  const r = {
    _links: {
      self: { href: `${baseUrl}/transactions/${t.hash}` },
      account: { href: `${baseUrl}/accounts/${t.source_account}` },
      ledger: { href: `${baseUrl}/ledgers/${t.ledger}` },
    },
    id: requested,
    paging_token: toid(t.ledger, t.application_order),
    successful: t.successful,
    hash: requested,
    ledger: t.ledger,
    created_at: iso(created),
    source_account: t.source_account,
    source_account_sequence: t.source_account_sequence,
    fee_account: t.fee_account || t.source_account,
    fee_charged: t.fee_charged,
    max_fee: t.max_fee,
    operation_count: t.operation_count,
    envelope_xdr: t.envelope_xdr,
    result_xdr: t.result_xdr,
    result_meta_xdr: '',
    fee_meta_xdr: '',
    memo_type: t.memo_type,
    signatures: byInner ? t.inner_transaction.signatures : t.signatures,
  };
  if (t.memo !== undefined) r.memo = t.memo;
  if (t.fee_bump_transaction) {
    r.fee_bump_transaction = t.fee_bump_transaction;
    r.inner_transaction = t.inner_transaction;
  }
  if (t.time_bounds) {
    r.valid_after = iso(Number(t.time_bounds.min_time));
    if (t.time_bounds.max_time !== '0') r.valid_before = iso(Number(t.time_bounds.max_time));
    r.preconditions = { timebounds: { ...t.time_bounds } };
  }
  return r;
}

function renderLedger(l) {
  return {
    _links: { self: { href: `${baseUrl}/ledgers/${l.sequence}` } },
    id: l.hash,
    paging_token: toid(l.sequence, 0),
    hash: l.hash,
    prev_hash: l.prev_hash,
    sequence: l.sequence,
    successful_transaction_count: l.successful_transaction_count,
    failed_transaction_count: l.failed_transaction_count,
    operation_count: l.operation_count,
    tx_set_operation_count: l.operation_count,
    closed_at: iso(l.closed_at),
    total_coins: '100000000000.0000000',
    fee_pool: '0.0000000',
    base_fee_in_stroops: Number(BASE_FEE),
    base_reserve_in_stroops: Number(BASE_RESERVE),
    max_tx_set_size: 1000,
    protocol_version: 23,
  };
}

function renderRoot(view) {
  const latest = net.latest();
  const top = net.ledgerBySeq(view.height);
  return {
    _links: {
      account: { href: `${baseUrl}/accounts/{account_id}`, templated: true },
      ledger: { href: `${baseUrl}/ledgers/{sequence}`, templated: true },
      transaction: { href: `${baseUrl}/transactions/{hash}`, templated: true },
    },
    horizon_version: 'nova-testnet-double',
    core_version: 'nova-testnet-double',
    ingest_latest_ledger: top.sequence,
    history_latest_ledger: top.sequence,
    history_latest_ledger_closed_at: iso(top.closed_at),
    history_elder_ledger: view.elder,
    core_latest_ledger: latest.sequence,
    network_passphrase: net.passphrase,
    current_protocol_version: 23,
    supported_protocol_version: 23,
    core_supported_protocol_version: 23,
  };
}

function page(self, records) {
  return { _links: { self: { href: self } }, _embedded: { records } };
}

function listLedgers(q, view) {
  const order = q.get('order') || 'asc';
  if (order !== 'asc' && order !== 'desc') throw Object.assign(new Error('order must be asc or desc'), { field: 'order' });
  const limitS = q.get('limit') || '10';
  if (!/^\d+$/.test(limitS) || +limitS < 1 || +limitS > 200) throw Object.assign(new Error('limit must be 1..200'), { field: 'limit' });
  const limit = +limitS;
  const cursor = q.get('cursor');
  const g = net.genesis();
  let list = net.ledgers.slice(view.elder - g, view.height - g + 1);
  if (cursor && cursor !== 'now') {
    if (!/^\d+$/.test(cursor)) throw Object.assign(new Error('cursor must be a paging token'), { field: 'cursor' });
    const seq = Number(BigInt(cursor) >> 32n);
    list = list.filter((l) => (order === 'asc' ? l.sequence > seq : l.sequence < seq));
  } else if (cursor === 'now') {
    list = order === 'asc' ? [] : list;
  }
  list = order === 'asc' ? list.slice(0, limit) : list.slice(-limit).reverse();
  return list.map(renderLedger);
}

function pageArgs(q) {
  const order = q.get('order') || 'asc';
  if (order !== 'asc' && order !== 'desc') throw Object.assign(new Error('order must be asc or desc'), { field: 'order' });
  const limitS = q.get('limit') || '10';
  if (!/^\d+$/.test(limitS) || +limitS < 1 || +limitS > 200) throw Object.assign(new Error('limit must be 1..200'), { field: 'limit' });
  const cursor = q.get('cursor');
  if (cursor && !/^\d+$/.test(cursor)) throw Object.assign(new Error('cursor must be a paging token'), { field: 'cursor' });
  return { order, limit: +limitS, cursor: cursor ? BigInt(cursor) : null };
}

// GET /accounts/{G}/transactions: included txs (successful and failed)
// whose source account is G, in ledger order; paging_token cursors.
function listAccountTxs(id, q, view) {
  if (!StrKey.isValidEd25519PublicKey(id)) throw Object.assign(new Error('invalid account id'), { field: 'account_id' });
  const { order, limit, cursor } = pageArgs(q);
  let list = [...net.txs.values()]
    .filter((t) => (t.source_account === id || extractBaseAddress(t.source_account) === id) && txVisible(view, t))
    .map((t) => ({ t, tok: BigInt(toid(t.ledger, t.application_order)) }))
    .sort((a, b) => (a.tok < b.tok ? -1 : a.tok > b.tok ? 1 : 0));
  if (order === 'desc') list.reverse();
  if (cursor !== null) list = list.filter((x) => (order === 'asc' ? x.tok > cursor : x.tok < cursor));
  return list.slice(0, limit).map((x) => renderTx(x.t));
}

function feeStats(view) {
  const p = {};
  for (const k of ['max', 'min', 'mode', 'p10', 'p20', 'p30', 'p40', 'p50', 'p60', 'p70', 'p80', 'p90', 'p95', 'p99']) p[k] = net.feePerOp.toString();
  return {
    last_ledger: String(view.height),
    last_ledger_base_fee: String(BASE_FEE),
    ledger_capacity_usage: '0.01',
    fee_charged: { ...p },
    max_fee: { ...p },
  };
}

// ---- POST /transactions -------------------------------------------------

function txFailed(res, outcome, envelopeB64) {
  const codes = { transaction: outcome.txCode };
  if (outcome.innerCode) codes.inner_transaction = outcome.innerCode;
  if (outcome.opCodes) codes.operations = outcome.opCodes;
  problem(res, 400, 'transaction_failed', {
    extras: { envelope_xdr: envelopeB64, result_xdr: outcome.resultXdr, result_codes: codes },
  });
}

function answerIncluded(res, rec) {
  if (rec.successful) {
    send(res, 200, renderTx(rec));
  } else {
    problem(res, 400, 'transaction_failed', {
      extras: { envelope_xdr: rec.envelope_xdr, result_xdr: rec.result_xdr, result_codes: rec.result_codes },
    });
  }
}

function submissionTimeout(res, hash, b64) {
  problem(res, 504, 'transaction_submission_timeout', { extras: { hash, envelope_xdr: b64 } });
}

function waitForClose(seq, ms) {
  return new Promise((resolve) => {
    if (net.latest().sequence >= seq) return resolve(true);
    const list = waiters.get(seq) || [];
    const timer = setTimeout(() => {
      const l = waiters.get(seq) || [];
      const i = l.indexOf(done);
      if (i >= 0) l.splice(i, 1);
      resolve(false);
    }, ms);
    function done() {
      clearTimeout(timer);
      resolve(true);
    }
    list.push(done);
    waiters.set(seq, list);
  });
}

function closeLedger() {
  const l = net.closeLedger();
  for (const [seq, list] of waiters) {
    if (seq <= l.sequence) {
      waiters.delete(seq);
      for (const fn of list) fn();
    }
  }
  return l;
}

// POST /transactions (sync) and POST /transactions_async (asyncMode).
async function handleSubmit(req, res, fault, asyncMode) {
  const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const body = await readBody(req, 200 * 1024);
  if (ct !== 'application/x-www-form-urlencoded') {
    return problem(res, 415, 'unsupported_media_type', {
      detail: `Content-Type ${JSON.stringify(ct)} is not supported; send tx=<url-encoded base64> as application/x-www-form-urlencoded.`,
    });
  }
  const b64 = new URLSearchParams(body).get('tx');
  if (!b64) {
    return problem(res, 400, 'bad_request', { detail: 'The tx form field is missing.', extras: { invalid_field: 'tx', reason: 'missing' } });
  }
  const sub = {
    n: submissions.length + 1,
    endpoint: asyncMode ? 'transactions_async' : 'transactions',
    received_at: net.now(),
    hash: null,
    fault: fault ? fault.kind : null,
    status: null,
    result: null,
  };
  submissions.push(sub);
  const finish = (status, result) => {
    sub.status = status;
    sub.result = result;
  };

  if (fault && fault.kind === 'rate_limit') {
    finish(429, 'rate_limited');
    return problem(res, 429, 'rate_limit_exceeded', { headers: { 'Retry-After': String(fault.retry_after) } });
  }
  if (fault && fault.kind === 'status') {
    finish(fault.status, 'injected_status');
    if (fault.body !== undefined) {
      res.writeHead(fault.status, { 'Content-Type': 'text/plain' });
      return res.end(fault.body);
    }
    return problem(res, fault.status, statusProblemName(fault.status));
  }

  let parsed;
  try {
    parsed = net.parseEnvelope(b64);
  } catch (e) {
    finish(400, 'transaction_malformed');
    return problem(res, 400, 'transaction_malformed', { detail: e.message, extras: { envelope_xdr: b64 } });
  }
  const { tx, hash } = parsed;
  sub.hash = hash;
  sub.envelope_xdr = b64;

  // Answers of the async endpoint: core's verdict, no ledger wait.
  const asyncAnswer = (status, txStatus, errorXdr) => {
    const o = { tx_status: txStatus, hash };
    if (errorXdr) o.error_result_xdr = errorXdr;
    send(res, status, o);
  };
  const timeout = () => (asyncMode ? problem(res, 504, 'timeout') : submissionTimeout(res, hash, b64));

  if (fault && fault.kind === 'timeout_not_applied') {
    finish(504, 'timeout_not_applied');
    return timeout();
  }
  if (fault && fault.kind === 'disconnect' && !fault.apply) {
    finish(0, 'disconnected_not_applied');
    return req.socket.destroy();
  }
  if (fault && fault.kind === 'bad_seq') {
    finish(400, 'tx_bad_seq');
    if (asyncMode) return asyncAnswer(400, 'ERROR', resultXdr('tx_bad_seq', 0));
    return txFailed(res, { txCode: 'tx_bad_seq', resultXdr: resultXdr('tx_bad_seq', 0) }, b64);
  }

  // Horizon looks the hash up first: an already included transaction is
  // answered from history and never applied twice. History older than the
  // retention window is gone: core judges such a copy (tx_bad_seq).
  let outcome;
  let existing = net.findTx(hash);
  if (existing && !txVisible(upToDateView(), existing)) existing = null;
  if (existing) {
    outcome = { kind: 'included', rec: existing, duplicate: true };
  } else {
    const force = fault && fault.kind.startsWith('op_') ? { opCode: fault.kind, opIndex: fault.op_index } : null;
    outcome = net.submit(tx, hash, b64, force);
  }
  if (outcome.kind === 'try_again_later') {
    // stellar-core holds one pending tx per source account. The async
    // endpoint reports it; the sync one waits for a ledger that never
    // contains the tx and times out (Horizon treats TRY_AGAIN_LATER as
    // pending).
    finish(asyncMode ? 503 : 504, 'try_again_later');
    if (asyncMode) return asyncAnswer(503, 'TRY_AGAIN_LATER');
    await sleep(opts.submitTimeoutMs);
    return submissionTimeout(res, hash, b64);
  }
  const resultName =
    outcome.kind === 'rejected'
      ? outcome.txCode + (outcome.innerCode ? `:${outcome.innerCode}` : '')
      : (outcome.duplicate ? 'duplicate_' : '') + outcome.rec.result_codes.transaction;

  if (fault && fault.kind === 'timeout_applied') {
    finish(504, `timeout_applied:${resultName}`);
    return timeout();
  }
  if (fault && fault.kind === 'disconnect') {
    finish(0, `disconnected_applied:${resultName}`);
    return req.socket.destroy();
  }
  if (asyncMode) {
    // Unlike the sync endpoint there is no history lookup: a copy still in
    // the open ledger is core's DUPLICATE, an already closed one has used
    // its sequence number (core: ERROR tx_bad_seq).
    if (outcome.kind === 'rejected') {
      finish(400, resultName);
      return asyncAnswer(400, 'ERROR', outcome.resultXdr);
    }
    if (outcome.duplicate && outcome.rec.ledger > net.latest().sequence) {
      finish(409, resultName);
      return asyncAnswer(409, 'DUPLICATE');
    }
    if (outcome.duplicate) {
      finish(400, `${resultName}:tx_bad_seq`);
      return asyncAnswer(400, 'ERROR', resultXdr('tx_bad_seq', 0));
    }
    finish(201, resultName);
    return asyncAnswer(201, 'PENDING');
  }
  if (outcome.kind === 'rejected') {
    finish(400, resultName);
    return txFailed(res, outcome, b64);
  }
  if (opts.submitWait === 'close') {
    const closed = await waitForClose(outcome.rec.ledger, opts.submitTimeoutMs);
    if (!closed) {
      finish(504, `timeout_waiting_for_ledger:${resultName}`);
      return submissionTimeout(res, hash, b64);
    }
  }
  finish(outcome.rec.successful ? 200 : 400, resultName);
  return answerIncluded(res, outcome.rec);
}

// ---- admin API ------------------------------------------------------------

function adminError(message, status = 400) {
  return Object.assign(new Error(message), { status, admin: true });
}

// A topic or value given as {"raw_xdr": "..."}: any base64 text (even
// bytes that are no ScVal), stored and served as given.
function rawXdr(v, where) {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new Error(`${where}.raw_xdr must be a base64 string`);
  return v;
}

function amountField(v, name, dflt) {
  if (v === undefined) return dflt;
  try {
    return parseAmount(v, name);
  } catch (e) {
    throw adminError(e.message);
  }
}

function trustlineArgs(t, where) {
  if (!t || typeof t !== 'object') throw adminError(`${where} must be an object`);
  return {
    code: t.code,
    issuer: t.issuer,
    limit: amountField(t.limit, `${where}.limit`, undefined),
    balance: amountField(t.balance, `${where}.balance`, undefined),
    authorized: t.authorized,
    remove: t.remove,
  };
}

function wrapState(fn) {
  try {
    return fn();
  } catch (e) {
    throw adminError(e.message, e.status || 400);
  }
}

async function handleAdmin(req, res, url) {
  const p = url.pathname;
  const m = req.method;
  const json = async () => parseJsonBody(await readBody(req, 4 * 1024 * 1024));

  if (p === '/_admin/state' && m === 'GET') {
    return send(res, 200, {
      config: { ...opts, state: opts.state },
      now: net.now(),
      ...net.toJSON(),
      faults,
      submissions,
      replicas: replicaInfo(),
      history_retention: retentionInfo(),
    });
  }
  if (p === '/_admin/accounts' && m === 'POST') {
    const b = await json();
    let id = b.id;
    let secret = b.secret;
    if (secret !== undefined) {
      if (!StrKey.isValidEd25519SecretSeed(secret)) throw adminError('secret: not a valid S... seed');
      const kid = Keypair.fromSecret(secret).publicKey();
      if (id !== undefined && id !== kid) throw adminError('id does not match secret');
      id = kid;
    } else if (id === undefined) {
      const kp = Keypair.random();
      id = kp.publicKey();
      secret = kp.secret();
    }
    if (b.sequence !== undefined && (!/^\d{1,19}$/.test(String(b.sequence)) || BigInt(b.sequence) > 9223372036854775807n)) {
      throw adminError('sequence must be a decimal int64 string');
    }
    const trustlines = (b.trustlines || []).map((t, i) => trustlineArgs(t, `trustlines[${i}]`));
    const acct = wrapState(() =>
      net.createAccount({ id, balance: amountField(b.balance, 'balance', 10000n * 10000000n), sequence: b.sequence, trustlines }),
    );
    const out = { id, sequence: acct.sequence.toString(), account: renderAccount(acct) };
    if (secret !== undefined) out.secret = secret;
    return send(res, 201, out);
  }
  let mm = /^\/_admin\/accounts\/([A-Z0-9]+)$/.exec(p);
  if (mm && (m === 'POST' || m === 'DELETE')) {
    const acct = net.accounts.get(mm[1]);
    if (!acct) throw adminError(`account ${mm[1]} does not exist`, 404);
    if (m === 'DELETE') {
      net.deleteAccount(acct.id);
      return send(res, 200, { deleted: acct.id });
    }
    const b = await json();
    const balance = amountField(b.balance, 'balance', undefined);
    let sequence;
    if (b.sequence !== undefined) {
      if (!/^\d{1,19}$/.test(String(b.sequence)) || BigInt(b.sequence) > 9223372036854775807n) {
        throw adminError('sequence must be a decimal int64 string');
      }
      sequence = BigInt(b.sequence);
    }
    return send(res, 200, renderAccount(net.updateAccount(acct.id, { balance, sequence })));
  }
  if (p === '/_admin/trustlines' && m === 'POST') {
    const b = await json();
    const args = trustlineArgs(b, 'body');
    const acct = wrapState(() => net.setTrustline({ account: b.account, ...args }));
    return send(res, 200, renderAccount(acct));
  }
  if (p === '/_admin/events' && m === 'POST') {
    const b = await json();
    if (!Array.isArray(b.events) || b.events.length === 0) throw adminError('events must be a non-empty array');
    const list = b.events.map((e, i) => {
      const where = `events[${i}]`;
      if (!e || typeof e !== 'object') throw adminError(`${where} must be an object`);
      const type = e.type || 'contract';
      if (type !== 'contract' && type !== 'system') throw adminError(`${where}.type must be contract or system`);
      const contractId = e.contractId === undefined ? '' : e.contractId;
      if (type === 'contract' && !StrKey.isValidContract(contractId)) throw adminError(`${where}.contractId must be a C... contract id`);
      if (!Array.isArray(e.topic) || e.topic.length > 4) throw adminError(`${where}.topic must be an array of at most 4 ScVals`);
      // {"raw_xdr": "<base64>"} is served as given, never checked: the way
      // to test an indexer against XDR it cannot decode.
      const enc = (v, w) =>
        v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'raw_xdr' in v
          ? rawXdr(v.raw_xdr, w)
          : toScValB64(v, w);
      try {
        return {
          type,
          contractId,
          topic: e.topic.map((t, j) => enc(t, `${where}.topic[${j}]`)),
          value: enc(e.value === undefined ? { void: null } : e.value, `${where}.value`),
        };
      } catch (err) {
        throw adminError(err.message);
      }
    });
    if (b.tx_hash !== undefined && !/^[0-9a-f]{64}$/.test(b.tx_hash)) throw adminError('tx_hash must be 64 lower-case hex digits');
    const added = wrapState(() => net.addEvents(list, { ledger: b.ledger, txHash: b.tx_hash }));
    let closed = null;
    if (b.close_ledger) closed = closeLedger();
    return send(res, 201, { events: added.map(({ toid: _t, eventIndex: _e, ...ev }) => ev), closed_ledger: closed ? closed.sequence : null });
  }
  if (p === '/_admin/events' && m === 'GET') {
    return send(res, 200, { events: net.events });
  }
  if (p === '/_admin/payments' && m === 'GET') {
    let list = net.payments;
    for (const k of ['tx_hash', 'destination', 'source', 'asset', 'memo']) {
      const v = url.searchParams.get(k);
      if (v !== null) list = list.filter((x) => x[k] === v);
    }
    return send(res, 200, { payments: list });
  }
  if (p === '/_admin/submissions' && m === 'GET') {
    return send(res, 200, { submissions });
  }
  if (p === '/_admin/faults') {
    if (m === 'GET') return send(res, 200, { faults });
    if (m === 'DELETE') {
      faults = [];
      return send(res, 200, { faults });
    }
    if (m === 'POST') {
      const b = await json();
      const list = Array.isArray(b.faults) ? b.faults : [b];
      let added;
      try {
        added = list.map((f, i) => addFault(f, i));
      } catch (e) {
        throw adminError(e.message);
      }
      faults.push(...added);
      return send(res, 200, { faults });
    }
  }
  if (p === '/_admin/replicas') {
    if (m === 'GET') return send(res, 200, replicaInfo());
    if (m === 'DELETE') {
      horizon.replicas = null;
      return send(res, 200, replicaInfo());
    }
    if (m === 'POST') {
      const b = await json();
      if (!Number.isInteger(b.lag_ledgers) || b.lag_ledgers < 0) throw adminError('lag_ledgers must be a non-negative integer');
      if (typeof b.probability !== 'number' || !(b.probability >= 0 && b.probability <= 1)) {
        throw adminError('probability must be a number between 0 and 1');
      }
      const seed = b.seed === undefined ? null : b.seed;
      if (seed !== null && !(Number.isSafeInteger(seed) && seed >= 0) && !(typeof seed === 'string' && seed !== '')) {
        throw adminError('seed must be a non-negative integer or a non-empty string');
      }
      horizon.replicas = { lag_ledgers: b.lag_ledgers, probability: b.probability, seed };
      horizon.draws = 0;
      horizon.counters = { lagged: 0, forced: 0, up_to_date: 0 };
      return send(res, 200, replicaInfo());
    }
  }
  if (p === '/_admin/retention') {
    if (m === 'GET') return send(res, 200, retentionInfo());
    if (m === 'POST') {
      const b = await json();
      if (!Number.isInteger(b.ledgers) || b.ledgers < 0) throw adminError('ledgers must be a non-negative integer (0 = unlimited)');
      horizon.retention = b.ledgers;
      return send(res, 200, retentionInfo());
    }
  }
  if (p === '/_admin/close-ledger' && m === 'POST') {
    const b = await json();
    const count = b.count === undefined ? 1 : b.count;
    if (!Number.isInteger(count) || count < 1 || count > 10000) throw adminError('count must be 1..10000');
    let l;
    for (let i = 0; i < count; i++) l = closeLedger();
    return send(res, 200, { ledger: l.sequence, closed_at: l.closed_at, open_ledger: net.open.sequence });
  }
  if (p === '/_admin/clock' && m === 'POST') {
    const b = await json();
    if (!Number.isInteger(b.advance_seconds) || b.advance_seconds < 0) throw adminError('advance_seconds must be a non-negative integer');
    net.clockOffset += b.advance_seconds;
    net.onChange();
    return send(res, 200, { now: net.now(), clock_offset: net.clockOffset });
  }
  if (p === '/_admin/fee' && m === 'POST') {
    const b = await json();
    if (!Number.isInteger(b.fee_per_op) || b.fee_per_op < 100 || b.fee_per_op > 0xffffffff) {
      throw adminError('fee_per_op must be an integer >= 100 (stroops)');
    }
    net.feePerOp = BigInt(b.fee_per_op);
    net.onChange();
    return send(res, 200, { fee_per_op: b.fee_per_op });
  }
  if (p === '/_admin/keypair' && m === 'GET') {
    const label = url.searchParams.get('label');
    const kp =
      label !== null ? Keypair.fromRawEd25519Seed(crypto.createHash('sha256').update(label).digest()) : Keypair.random();
    return send(res, 200, { public: kp.publicKey(), secret: kp.secret() });
  }
  throw adminError(`no admin route ${m} ${p}`, 404);
}

// ---- router -----------------------------------------------------------------

async function route(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const p = url.pathname.replace(/\/+$/, '') || '/';
  const m = req.method;

  if (p.startsWith('/_admin/')) {
    try {
      return await handleAdmin(req, res, url);
    } catch (e) {
      return send(res, e.status || 500, { error: e.message });
    }
  }

  if (p === '/soroban/rpc' || p === '/rpc') {
    if (m !== 'POST') return send(res, 405, { error: 'JSON-RPC needs POST' }, { Allow: 'POST' });
    const fault = takeFault('rpc', url.pathname, false);
    if (fault && fault.delay_ms) await sleep(fault.delay_ms);
    const text = await readBody(req, 1024 * 1024);
    if (fault) {
      if (fault.kind === 'rate_limit') return send(res, 429, { error: 'rate limited' }, { 'Retry-After': String(fault.retry_after) });
      if (fault.kind === 'status') {
        res.writeHead(fault.status, { 'Content-Type': 'text/plain' });
        return res.end(fault.body !== undefined ? fault.body : `injected ${fault.status}\n`);
      }
      if (fault.kind === 'disconnect') return req.socket.destroy();
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return send(res, 200, { jsonrpc: '2.0', id: null, error: { code: -32700, message: `parse error: ${e.message}` } });
    }
    if (fault && fault.kind === 'rpc_error') {
      return send(res, 200, { jsonrpc: '2.0', id: body && body.id !== undefined ? body.id : null, error: { code: fault.code, message: fault.message } });
    }
    return send(res, 200, rpc.handle(net, body));
  }

  // Horizon. Submissions go to core: always the up-to-date view.
  const isSubmit = (p === '/transactions' || p === '/transactions_async') && m === 'POST';
  res.horizonView = upToDateView();
  const fault = takeFault(isSubmit ? 'submit' : 'horizon', url.pathname, !isSubmit && m === 'GET');
  if (fault && fault.delay_ms) await sleep(fault.delay_ms);
  if (isSubmit) return handleSubmit(req, res, fault, p === '/transactions_async');
  if (fault) {
    if (fault.kind === 'rate_limit') {
      return problem(res, 429, 'rate_limit_exceeded', { headers: { 'Retry-After': String(fault.retry_after) } });
    }
    if (fault.kind === 'status') {
      if (fault.body !== undefined) {
        res.writeHead(fault.status, { 'Content-Type': 'text/plain' });
        return res.end(fault.body);
      }
      return problem(res, fault.status, statusProblemName(fault.status));
    }
    if (fault.kind === 'disconnect') return req.socket.destroy();
  }
  if (m !== 'GET') return problem(res, 405, 'method_not_allowed');
  const view = chooseReadView(fault);
  res.horizonView = view;

  if (p === '/') return send(res, 200, renderRoot(view));
  let mm = /^\/accounts\/([^/]+)$/.exec(p);
  if (mm) {
    if (!StrKey.isValidEd25519PublicKey(mm[1])) {
      return problem(res, 400, 'bad_request', {
        extras: { invalid_field: 'account_id', reason: 'not a valid G... account id (StrKey)' },
      });
    }
    // Account state is current state: retention does not apply, a lagging
    // replica shows the account as of the end of its ledger.
    const a = view.lagging ? net.accountAsOf(mm[1], view.height) : net.accounts.get(mm[1]);
    if (!a) return problem(res, 404, 'not_found');
    return send(res, 200, renderAccount(a));
  }
  mm = /^\/accounts\/([^/]+)\/transactions$/.exec(p);
  if (mm) {
    try {
      return send(res, 200, page(`${baseUrl}${req.url}`, listAccountTxs(mm[1], url.searchParams, view)));
    } catch (e) {
      return problem(res, 400, 'bad_request', { detail: e.message, extras: { invalid_field: e.field } });
    }
  }
  mm = /^\/transactions\/([^/]+)$/.exec(p);
  if (mm) {
    if (!/^[0-9a-fA-F]{64}$/.test(mm[1])) {
      return problem(res, 400, 'bad_request', { extras: { invalid_field: 'tx_id', reason: 'expected 64 hex digits (a SHA-256 transaction hash)' } });
    }
    const t = net.findTx(mm[1]);
    if (!t || !txVisible(view, t)) return problem(res, 404, 'not_found');
    return send(res, 200, renderTx(t, mm[1].toLowerCase()));
  }
  if (p === '/ledgers') {
    try {
      return send(res, 200, page(`${baseUrl}${req.url}`, listLedgers(url.searchParams, view)));
    } catch (e) {
      return problem(res, 400, 'bad_request', { detail: e.message, extras: { invalid_field: e.field } });
    }
  }
  mm = /^\/ledgers\/(\d+)$/.exec(p);
  if (mm) {
    const seq = Number(mm[1]);
    const l = seq >= view.elder && seq <= view.height ? net.ledgerBySeq(seq) : null;
    if (!l) return problem(res, 404, 'not_found');
    return send(res, 200, renderLedger(l));
  }
  if (p === '/fee_stats') return send(res, 200, feeStats(view));
  return problem(res, 404, 'not_found');
}

const server = http.createServer((req, res) => {
  if (opts.verbose) process.stderr.write(`${new Date().toISOString()} ${req.method} ${req.url}\n`);
  // Every Horizon response carries the rate-limit headers.
  res.setHeader('X-RateLimit-Limit', '3600');
  res.setHeader('X-RateLimit-Remaining', '3599');
  res.setHeader('X-RateLimit-Reset', '1');
  route(req, res).catch((e) => {
    if (e.status === 413) return problem(res, 413, 'bad_request', { detail: e.message });
    process.stderr.write(`server.js: internal error on ${req.method} ${req.url}: ${e.stack}\n`);
    if (!res.headersSent) problem(res, 500, 'server_error', { detail: e.message });
    else res.destroy();
  });
});

let ledgerTimer = null;
function shutdown(code) {
  if (ledgerTimer) clearInterval(ledgerTimer);
  try {
    saveNow();
  } catch (e) {
    process.stderr.write(`server.js: cannot save state: ${e.message}\n`);
  }
  server.close();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
if (opts.exitOnStdinEof) {
  process.stdin.on('end', () => shutdown(0));
  process.stdin.on('error', () => shutdown(0));
  process.stdin.resume();
}

server.on('error', (e) => {
  process.stderr.write(`server.js: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.port, '127.0.0.1', () => {
  const port = server.address().port;
  baseUrl = `http://127.0.0.1:${port}`;
  if (opts.ledgerCloseMs > 0) ledgerTimer = setInterval(closeLedger, opts.ledgerCloseMs);
  if (opts.state) saveNow();
  process.stdout.write(
    JSON.stringify({
      ready: true,
      port,
      horizon_url: baseUrl,
      rpc_url: `${baseUrl}/soroban/rpc`,
      network_passphrase: net.passphrase,
      state: opts.state ? path.resolve(opts.state) : null,
    }) + '\n',
  );
});
