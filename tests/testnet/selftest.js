#!/usr/bin/env node
'use strict';
// Self-test of the Horizon / Soroban RPC test double. Transactions are
// built and signed here with @stellar/stellar-base (independent of the C
// worker) and sent over real HTTP to a real server.js child process.
// Exit status 0 = every check passed.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const sb = require('@stellar/stellar-base');
const { xdr, Keypair, TransactionBuilder, Operation, Asset, Account, Memo, Networks, StrKey } = sb;
const { resultXdr } = require('./lib/codes');
const { toScValB64 } = require('./lib/scval');

const HERE = __dirname;
const VECTORS = loadVectors();
const TESTNET = Networks.TESTNET;
const children = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nova-testnet-'));

function loadVectors() {
  // The shared reference vectors are the ground truth for the XDR the fake
  // produces; a copy lives next to this file so the test works in a tarball.
  for (const p of [path.join(__dirname, 'stellar-vectors.json'), '/work/shared/reference/stellar-vectors.json']) {
    if (fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8'));
  }
  throw new Error('stellar-vectors.json not found next to selftest.js');
}

// ---- process and HTTP helpers -------------------------------------------

function startServer(args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'server.js'), '--port', '0', ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    let buf = '';
    const timer = setTimeout(() => reject(new Error('server did not print its ready line within 10 s')), 10000);
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        const ready = JSON.parse(buf.slice(0, nl));
        if (ready.ready !== true || !Number.isInteger(ready.port)) return reject(new Error(`bad ready line ${buf}`));
        const url = `http://127.0.0.1:${ready.port}`;
        resolve({
          child,
          ready,
          url,
          stop: () =>
            new Promise((r) => {
              if (child.exitCode !== null) return r(child.exitCode);
              child.once('exit', (code) => r(code));
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!buf.includes('\n')) reject(new Error(`server exited with ${code} before it was ready`));
    });
  });
}

async function req(base, method, p, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (typeof body === 'string') init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const r = await fetch(base + p, init);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (_) {
    /* not JSON */
  }
  return { status: r.status, json, text, headers: r.headers };
}

const get = (s, p) => req(s.url, 'GET', p);
const admin = (s, p, body) => req(s.url, 'POST', p, body || {});

function submit(s, envelopeB64) {
  return req(s.url, 'POST', '/transactions', `tx=${encodeURIComponent(envelopeB64)}`, {
    'Content-Type': 'application/x-www-form-urlencoded',
  });
}

async function rpcCall(s, method, params, p = '/soroban/rpc') {
  const r = await req(s.url, 'POST', p, { jsonrpc: '2.0', id: 7, method, params });
  assert.equal(r.status, 200, `rpc ${method} HTTP ${r.status}: ${r.text}`);
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, 7);
  return r.json;
}

// ---- Stellar helpers (stellar-base only) ------------------------------------

async function account(s, id) {
  const r = await get(s, `/accounts/${id}`);
  assert.equal(r.status, 200, `GET /accounts/${id}: ${r.text}`);
  return r.json;
}

async function seqOf(s, id) {
  return BigInt((await account(s, id)).sequence);
}

function balanceOf(acct, code, issuer) {
  const b = acct.balances.find((x) =>
    code === 'native' ? x.asset_type === 'native' : x.asset_code === code && x.asset_issuer === issuer,
  );
  return b ? b.balance : null;
}

// Build and sign a transaction. payments: [{to, amount, asset?, source?}]
function buildTx({ source, seq, payments, signers, passphrase = TESTNET, fee = '100', memo, timebounds, asset }) {
  const acct = new Account(source, (BigInt(seq) - 1n).toString());
  const b = new TransactionBuilder(acct, { fee, networkPassphrase: passphrase });
  for (const p of payments) {
    b.addOperation(
      Operation.payment({ destination: p.to, asset: p.asset || asset, amount: p.amount, source: p.source }),
    );
  }
  if (memo) b.addMemo(Memo.text(memo));
  if (timebounds) b.setTimebounds(timebounds[0], timebounds[1]);
  else b.setTimeout(300);
  const tx = b.build();
  for (const kp of signers) tx.sign(kp);
  return { tx, b64: tx.toEnvelope().toXDR('base64'), hash: tx.hash().toString('hex') };
}

function decodeResult(b64) {
  const r = xdr.TransactionResult.fromXDR(b64, 'base64');
  const arm = r.result().switch().name;
  const ops =
    arm === 'txSuccess' || arm === 'txFailed'
      ? r
          .result()
          .results()
          .map((o) => (o.switch().name === 'opInner' ? o.tr().value().switch().name : o.switch().name))
      : null;
  return { fee: r.feeCharged().toString(), arm, ops };
}

function expectFailed(r, txCode, opCodes) {
  assert.equal(r.status, 400, `expected 400, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/transaction_failed');
  assert.equal(r.json.extras.result_codes.transaction, txCode);
  if (opCodes) assert.deepEqual(r.json.extras.result_codes.operations, opCodes);
  else assert.equal(r.json.extras.result_codes.operations, undefined);
  // The result XDR must decode with stellar-base to the same codes.
  const d = decodeResult(r.json.extras.result_xdr);
  assert.ok(d.arm, 'result_xdr decodes');
  assert.ok(typeof r.json.extras.envelope_xdr === 'string');
  return d;
}

// ---- the test list --------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

let S; // main server (fast ledgers)
let K; // keys written by setup.js
let NOVA;

test('result XDR builder reproduces the reference samples', async () => {
  for (const s of VECTORS.horizon_result_xdr_samples) {
    const fee = decodeResult(s.result_xdr).fee;
    const ops = s.result_codes.operations;
    assert.equal(resultXdr(s.result_codes.transaction, fee, ops), s.result_xdr, s.name);
  }
});

test('ScVal builder reproduces the reference ScVal vectors', async () => {
  const specs = {
    symbol_mint: { symbol: 'mint' },
    symbol_claim: { symbol: 'claim' },
    symbol_unstake: { symbol: 'unstake' },
    u32_42: { u32: 42 },
    i32_minus_1: { i32: -1 },
    u64_1e12: { u64: '1000000000000' },
    i128_125000000: { i128: '125000000' },
    i128_minus_5: { i128: '-5' },
    i128_2pow64_plus_1: { i128: '18446744073709551617' },
    u128_1: { u128: '1' },
    address_account_dest1: { address: VECTORS.keys.dest1.account_id },
    address_contract: { address: VECTORS.strkey.contract_ids[0].strkey },
    string_hello: { string: 'hello' },
    bool_true: { bool: true },
    void: { void: null },
    vec_symbol_address: { vec: [{ symbol: 'stake' }, { address: VECTORS.keys.dest2.account_id }] },
    map_amount_user: { map: { user: { address: VECTORS.keys.dest1.account_id }, amount: { i128: '125000000' } } },
  };
  let n = 0;
  for (const v of VECTORS.soroban.scvals) {
    if (!specs[v.name]) continue;
    assert.equal(toScValB64(specs[v.name]), v.xdr_base64, v.name);
    assert.equal(toScValB64(v.xdr_base64), v.xdr_base64, `${v.name} passthrough`);
    n++;
  }
  assert.equal(n, Object.keys(specs).length);
  assert.throws(() => toScValB64('AAAA!!'), /not a base64 ScVal/);
  assert.throws(() => toScValB64({ symbol: 'no spaces' }), /symbol/);
});

test('the reference vector envelopes are accepted byte for byte (same hashes, same balances)', async () => {
  // Clock inside both vectors' time bounds; accounts at the vectors' sequences.
  const V = await startServer(['--ledger-close-ms', '0', '--submit-wait', 'none', '--clock-start', '1735689700']);
  try {
    const k = VECTORS.keys;
    const [v1, v2, v3] = VECTORS.transactions;
    const nova = { code: 'NOVA', issuer: k.issuer.account_id };
    assert.equal((await admin(V, '/_admin/accounts', { id: k.issuer.account_id })).status, 201);
    const d = await admin(V, '/_admin/accounts', {
      secret: k.source.secret,
      sequence: v1.inputs.account_sequence,
      trustlines: [{ ...nova, balance: '1000' }],
    });
    assert.equal(d.status, 201, d.text);
    for (const n of ['dest1', 'dest2', 'dest3']) {
      assert.equal((await admin(V, '/_admin/accounts', { id: k[n].account_id, trustlines: [nova] })).status, 201);
    }
    // The Horizon form body exactly as the vectors spell it.
    for (const v of [v1, v2]) {
      const r = await req(V.url, 'POST', '/transactions', v.outputs.horizon_form_body, { 'Content-Type': 'application/x-www-form-urlencoded' });
      assert.equal(r.status, 200, `${v.name}: ${r.text}`);
      assert.equal(r.json.hash, v.outputs.tx_hash_hex);
      assert.equal(r.json.envelope_xdr, v.outputs.signed_envelope_xdr_base64);
      assert.equal(r.json.memo, v.inputs.memo_text);
      assert.equal(r.json.preconditions.timebounds.max_time, String(v.inputs.time_bounds.max_time));
    }
    const bal = async (n) => balanceOf(await account(V, k[n].account_id), 'NOVA', k.issuer.account_id);
    assert.equal(await bal('dest1'), '13.5000000');
    assert.equal(await bal('dest2'), '250.7500000');
    assert.equal(await bal('dest3'), '0.0000001');
    assert.equal(await bal('source'), '735.7499999');
    assert.equal((await account(V, k.source.account_id)).sequence, v2.inputs.tx_seq_num);
    // The public-network vector: wrong sequence first; at the right sequence
    // its signature (over the public network id) is tx_bad_auth here.
    expectFailed(await submit(V, v3.outputs.signed_envelope_xdr_base64), 'tx_bad_seq');
    await admin(V, `/_admin/accounts/${k.source.account_id}`, { sequence: v3.inputs.account_sequence });
    expectFailed(await submit(V, v3.outputs.signed_envelope_xdr_base64), 'tx_bad_auth');
  } finally {
    await V.stop();
  }
});

test('public-network vector: muxed destination and INT64_MAX stroops on a --passphrase PUBLIC double', async () => {
  const V = await startServer(['--ledger-close-ms', '0', '--submit-wait', 'none', '--clock-start', '1735689700', '--passphrase', Networks.PUBLIC]);
  try {
    const k = VECTORS.keys;
    const v3 = VECTORS.transactions[2];
    const nova = { code: 'NOVA', issuer: k.issuer.account_id };
    assert.equal((await get(V, '/')).json.network_passphrase, Networks.PUBLIC);
    await admin(V, '/_admin/accounts', { id: k.issuer.account_id });
    await admin(V, '/_admin/accounts', { id: k.source.account_id, sequence: v3.inputs.account_sequence, trustlines: [{ ...nova, balance: '922337203685.4775807' }] });
    await admin(V, '/_admin/accounts', { id: k.dest1.account_id, trustlines: [nova] });
    const r = await submit(V, v3.outputs.signed_envelope_xdr_base64);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.hash, v3.outputs.tx_hash_hex);
    assert.equal(r.json.memo_type, 'none');
    assert.equal(r.json.max_fee, '1000');
    const p = (await get(V, '/_admin/payments')).json.payments;
    assert.equal(p.length, 1);
    assert.equal(p[0].destination, k.dest1.account_id);
    assert.equal(p[0].destination_muxed, VECTORS.strkey.muxed_accounts[0].strkey);
    assert.equal(p[0].amount_stroops, '9223372036854775807');
    assert.equal(balanceOf(await account(V, k.dest1.account_id), 'NOVA', k.issuer.account_id), '922337203685.4775807');
  } finally {
    await V.stop();
  }
});

test('server starts, prints ready line, serves root and latest ledger', async () => {
  S = await startServer(['--ledger-close-ms', '150']);
  assert.equal(S.ready.horizon_url, S.url);
  const root = await get(S, '/');
  assert.equal(root.status, 200);
  assert.equal(root.json.network_passphrase, TESTNET);
  assert.ok(root.json.history_latest_ledger >= 1000);
  assert.equal(root.json.core_latest_ledger, root.json.history_latest_ledger);
  assert.match(root.json.history_latest_ledger_closed_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(root.headers.get('x-ratelimit-limit'));
  const l = await get(S, '/ledgers?order=desc&limit=1');
  assert.equal(l.status, 200);
  const rec = l.json._embedded.records;
  assert.equal(rec.length, 1);
  assert.ok(rec[0].sequence >= root.json.history_latest_ledger);
  assert.match(rec[0].hash, /^[0-9a-f]{64}$/);
  const fs_ = await get(S, '/fee_stats');
  assert.equal(fs_.json.last_ledger_base_fee, '100');
});

test('ledgers close automatically with non-decreasing close times; admin close-ledger', async () => {
  const a = (await get(S, '/')).json.history_latest_ledger;
  await new Promise((r) => setTimeout(r, 500));
  const b = (await get(S, '/')).json.history_latest_ledger;
  assert.ok(b >= a + 2, `ledger advanced ${a} -> ${b}`);
  const c = await admin(S, '/_admin/close-ledger', { count: 3 });
  assert.equal(c.status, 200);
  assert.ok(c.json.ledger >= b + 3);
  assert.equal(c.json.open_ledger, c.json.ledger + 1);
  const list = (await get(S, '/ledgers?order=asc&limit=200')).json._embedded.records;
  for (let i = 1; i < list.length; i++) {
    assert.equal(list[i].sequence, list[i - 1].sequence + 1);
    assert.equal(list[i].prev_hash, list[i - 1].hash);
    assert.ok(list[i].closed_at >= list[i - 1].closed_at);
  }
});

test('setup.js seeds issuer, distribution and recipients', async () => {
  const out = path.join(tmp, 'keys.json');
  await new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [path.join(HERE, 'setup.js'), '--url', S.url, '--out', out, '--recipients', '3', '--without-trust', '1', '--env', path.join(tmp, 'demo.env')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`setup.js exited ${code}`))));
  });
  K = JSON.parse(fs.readFileSync(out, 'utf8'));
  const env = fs.readFileSync(path.join(tmp, 'demo.env'), 'utf8');
  assert.match(env, new RegExp(`^HORIZON_URL='${S.url}'$`, 'm'));
  assert.match(env, new RegExp(`^DISTRIBUTION_SECRET='${K.distribution.secret}'$`, 'm'));
  assert.match(env, /^STELLAR_NETWORK='testnet'$/m);
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);
  assert.equal(K.issuer.public, VECTORS.keys.issuer.account_id, 'deterministic issuer key');
  assert.equal(K.distribution.public, VECTORS.keys.source.account_id, 'deterministic distribution key');
  assert.equal(K.recipients[0].public, VECTORS.keys.dest1.account_id);
  assert.equal(K.recipients.length, 3);
  assert.deepEqual(K.recipients.map((r) => r.trustline), [true, true, false]);
  assert.equal(K.network_passphrase, TESTNET);
  NOVA = new Asset(K.asset.code, K.asset.issuer);
  const d = await account(S, K.distribution.public);
  assert.equal(balanceOf(d, 'NOVA', K.asset.issuer), '1000000.0000000');
  assert.equal(balanceOf(d, 'native'), '10000.0000000');
  const r3 = await account(S, K.recipients[2].public);
  assert.equal(balanceOf(r3, 'NOVA', K.asset.issuer), null);
  const iss = await account(S, K.issuer.public);
  assert.equal(iss.balances.length, 1);
  // A second run against the same state is accepted and keeps balances.
  await new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [path.join(HERE, 'setup.js'), '--url', S.url, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`setup.js rerun exited ${code}`))));
  });
  assert.equal(balanceOf(await account(S, K.distribution.public), 'NOVA', K.asset.issuer), '1000000.0000000');
});

const dist = () => Keypair.fromSecret(K.distribution.secret);
const recip = (i) => K.recipients[i].public;

test('GET /accounts: 404 problem for unknown, 400 for malformed id', async () => {
  const r = await get(S, `/accounts/${Keypair.random().publicKey()}`);
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/not_found');
  assert.equal(r.json.status, 404);
  const b = await get(S, `/accounts/${K.distribution.secret}`);
  assert.equal(b.status, 400);
  assert.equal(b.json.extras.invalid_field, 'account_id');
  const t = await get(S, `/transactions/${'ab'.repeat(32)}`);
  assert.equal(t.status, 404);
});

let paidTx; // the successful 12.5 NOVA payment, reused by the duplicate test

test('successful payment: 200 after its ledger closed, balances, sequence, fee, payments log', async () => {
  const seq0 = await seqOf(S, K.distribution.public);
  const before = await account(S, K.distribution.public);
  const t = buildTx({ source: K.distribution.public, seq: seq0 + 1n, payments: [{ to: recip(0), amount: '12.5' }], asset: NOVA, signers: [dist()], memo: 'nova-reward-42' });
  const r = await submit(S, t.b64);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.hash, t.hash);
  assert.equal(r.json.id, t.hash);
  assert.equal(r.json.successful, true);
  assert.equal(r.json.envelope_xdr, t.b64);
  assert.equal(r.json.source_account_sequence, (seq0 + 1n).toString());
  assert.equal(r.json.fee_charged, '100');
  assert.equal(r.json.memo_type, 'text');
  assert.equal(r.json.memo, 'nova-reward-42');
  assert.deepEqual(decodeResult(r.json.result_xdr), { fee: '100', arm: 'txSuccess', ops: ['paymentSuccess'] });
  const root = (await get(S, '/')).json;
  assert.ok(root.history_latest_ledger >= r.json.ledger, 'answered only after the ledger closed');
  const after = await account(S, K.distribution.public);
  assert.equal(after.sequence, (seq0 + 1n).toString());
  assert.equal(balanceOf(after, 'NOVA', K.asset.issuer), '999987.5000000');
  assert.equal(balanceOf(after, 'native'), '9999.9999900');
  assert.equal(balanceOf(before, 'native'), '10000.0000000');
  assert.equal(balanceOf(await account(S, recip(0)), 'NOVA', K.asset.issuer), '12.5000000');
  const g = await get(S, `/transactions/${t.hash}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.ledger, r.json.ledger);
  assert.equal(g.json.successful, true);
  const p = (await get(S, `/_admin/payments?tx_hash=${t.hash}`)).json.payments;
  assert.equal(p.length, 1);
  assert.deepEqual(
    { src: p[0].source, dst: p[0].destination, asset: p[0].asset, amount: p[0].amount, stroops: p[0].amount_stroops, memo: p[0].memo },
    { src: K.distribution.public, dst: recip(0), asset: `NOVA:${K.asset.issuer}`, amount: '12.5000000', stroops: '125000000', memo: 'nova-reward-42' },
  );
  paidTx = t;
});

test('duplicate submission of an included transaction returns the original result, never re-applies', async () => {
  const before = (await get(S, '/_admin/payments')).json.payments.length;
  const bal = balanceOf(await account(S, recip(0)), 'NOVA', K.asset.issuer);
  const first = (await get(S, `/transactions/${paidTx.hash}`)).json;
  for (let i = 0; i < 2; i++) {
    const r = await submit(S, paidTx.b64);
    assert.equal(r.status, 200);
    assert.equal(r.json.hash, paidTx.hash);
    assert.equal(r.json.ledger, first.ledger);
    assert.equal(r.json.result_xdr, first.result_xdr);
  }
  assert.equal((await get(S, '/_admin/payments')).json.payments.length, before);
  assert.equal(balanceOf(await account(S, recip(0)), 'NOVA', K.asset.issuer), bal);
  const subs = (await get(S, '/_admin/submissions')).json.submissions.filter((x) => x.hash === paidTx.hash);
  assert.deepEqual(subs.map((x) => x.result), ['tx_success', 'duplicate_tx_success', 'duplicate_tx_success']);
});

test('bad signatures: wrong key, wrong network, extra signature -> not applied', async () => {
  const seq = (await seqOf(S, K.distribution.public)) + 1n;
  const base = { source: K.distribution.public, seq, payments: [{ to: recip(0), amount: '1' }], asset: NOVA };
  const wrong = buildTx({ ...base, signers: [Keypair.random()] });
  expectFailed(await submit(S, wrong.b64), 'tx_bad_auth');
  const none = buildTx({ ...base, signers: [] });
  expectFailed(await submit(S, none.b64), 'tx_bad_auth');
  // Signed for the public network: the hash differs on testnet.
  const pub = buildTx({ ...base, passphrase: Networks.PUBLIC, signers: [dist()] });
  expectFailed(await submit(S, pub.b64), 'tx_bad_auth');
  const extra = buildTx({ ...base, signers: [dist(), Keypair.random()] });
  expectFailed(await submit(S, extra.b64), 'tx_bad_auth_extra');
  // A signature whose hint matches but whose bytes are wrong.
  const forged = buildTx({ ...base, signers: [dist()] });
  const env = forged.tx.toEnvelope();
  const sig = env.v1().signatures()[0];
  const bytes = Buffer.from(sig.signature());
  bytes[0] ^= 0xff;
  env.v1().signatures()[0] = new xdr.DecoratedSignature({ hint: sig.hint(), signature: bytes });
  expectFailed(await submit(S, env.toXDR('base64')), 'tx_bad_auth');
  assert.equal(await seqOf(S, K.distribution.public), seq - 1n, 'sequence not consumed');
  for (const t of [wrong, pub, extra]) assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404);
});

test('bad sequence: tx_bad_seq with the canonical result XDR, sequence not consumed', async () => {
  const seq = await seqOf(S, K.distribution.public);
  for (const s of [seq + 2n, seq, seq - 5n]) {
    const t = buildTx({ source: K.distribution.public, seq: s, payments: [{ to: recip(0), amount: '1' }], asset: NOVA, signers: [dist()] });
    const r = await submit(S, t.b64);
    expectFailed(r, 'tx_bad_seq');
    assert.equal(r.json.extras.result_xdr, 'AAAAAAAAAAD////7AAAAAA==');
  }
  assert.equal(await seqOf(S, K.distribution.public), seq);
  const ok = buildTx({ source: K.distribution.public, seq: seq + 1n, payments: [{ to: recip(0), amount: '1' }], asset: NOVA, signers: [dist()] });
  assert.equal((await submit(S, ok.b64)).status, 200);
});

test('time bounds: tx_too_late, tx_too_early; fee below 100/op: tx_insufficient_fee', async () => {
  const seq = (await seqOf(S, K.distribution.public)) + 1n;
  const now = Math.floor(Date.now() / 1000);
  const base = { source: K.distribution.public, seq, payments: [{ to: recip(0), amount: '1' }], asset: NOVA, signers: [dist()] };
  const late = await submit(S, buildTx({ ...base, timebounds: [0, now - 10] }).b64);
  expectFailed(late, 'tx_too_late');
  assert.equal(late.json.extras.result_xdr, 'AAAAAAAAAAD////9AAAAAA==');
  expectFailed(await submit(S, buildTx({ ...base, timebounds: [now + 3600, 0] }).b64), 'tx_too_early');
  const cheap = await submit(S, buildTx({ ...base, fee: '99' }).b64);
  expectFailed(cheap, 'tx_insufficient_fee');
  assert.equal(cheap.json.extras.result_xdr, 'AAAAAAAAAGT////3AAAAAA==');
  assert.equal(await seqOf(S, K.distribution.public), seq - 1n);
});

// Apply-time failures consume the sequence and the fee, pay nobody, and
// are visible with successful:false.
async function expectInLedgerFailure(t, opCodes) {
  const seq = BigInt(t.tx.sequence);
  const xlmBefore = balanceOf(await account(S, t.tx.source), 'native');
  const nPay = (await get(S, '/_admin/payments')).json.payments.length;
  const r = await submit(S, t.b64);
  expectFailed(r, 'tx_failed', opCodes);
  assert.equal(await seqOf(S, t.tx.source), seq, 'sequence consumed');
  const fee = BigInt(100 * opCodes.length);
  const xlmAfter = balanceOf(await account(S, t.tx.source), 'native');
  assert.equal(BigInt(xlmBefore.replace('.', '')) - BigInt(xlmAfter.replace('.', '')), fee, 'fee charged');
  const g = await get(S, `/transactions/${t.hash}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.successful, false);
  assert.equal(g.json.result_xdr, r.json.extras.result_xdr);
  assert.equal((await get(S, '/_admin/payments')).json.payments.length, nPay, 'no payment recorded');
  return r;
}

test('op_no_trust, op_underfunded, op_no_destination, op_line_full: in ledger as failed', async () => {
  let seq = await seqOf(S, K.distribution.public);
  const mk = (payments) => buildTx({ source: K.distribution.public, seq: ++seq, payments, asset: NOVA, signers: [dist()] });
  await expectInLedgerFailure(mk([{ to: recip(2), amount: '1' }]), ['op_no_trust']);
  await expectInLedgerFailure(mk([{ to: recip(0), amount: '2000000' }]), ['op_underfunded']);
  await expectInLedgerFailure(mk([{ to: Keypair.random().publicKey(), amount: '1' }]), ['op_no_destination']);
  const lim = await admin(S, '/_admin/trustlines', { account: recip(1), code: 'NOVA', issuer: K.asset.issuer, limit: '5' });
  assert.equal(lim.status, 200, lim.text);
  await expectInLedgerFailure(mk([{ to: recip(1), amount: '6' }]), ['op_line_full']);
  await admin(S, '/_admin/trustlines', { account: recip(1), code: 'NOVA', issuer: K.asset.issuer, limit: '922337203685.4775807' });
  // A duplicate of a failed transaction answers the stored failure.
  const nt = mk([{ to: recip(2), amount: '3' }]);
  const r1 = await expectInLedgerFailure(nt, ['op_no_trust']);
  const r2 = await submit(S, nt.b64);
  expectFailed(r2, 'tx_failed', ['op_no_trust']);
  assert.equal(r2.json.extras.result_xdr, r1.json.extras.result_xdr);
  assert.equal(await seqOf(S, K.distribution.public), seq);
});

test('atomicity: 3-op tx with one bad op pays nobody; result XDR equals the reference sample', async () => {
  const seq = (await seqOf(S, K.distribution.public)) + 1n;
  const bal = async () => [
    balanceOf(await account(S, K.distribution.public), 'NOVA', K.asset.issuer),
    balanceOf(await account(S, recip(0)), 'NOVA', K.asset.issuer),
    balanceOf(await account(S, recip(1)), 'NOVA', K.asset.issuer),
  ];
  const b0 = await bal();
  const t = buildTx({
    source: K.distribution.public,
    seq,
    payments: [{ to: recip(0), amount: '1' }, { to: recip(2), amount: '250.75' }, { to: recip(1), amount: '0.0000001' }],
    asset: NOVA,
    signers: [dist()],
  });
  const r = await expectInLedgerFailure(t, ['op_success', 'op_no_trust', 'op_success']);
  const sample = VECTORS.horizon_result_xdr_samples.find((x) => x.name === 'tx_failed_second_op_no_trust');
  assert.equal(r.json.extras.result_xdr, sample.result_xdr);
  assert.deepEqual(await bal(), b0);
  // The same batch without the bad recipient succeeds, all three paid.
  const ok = buildTx({
    source: K.distribution.public,
    seq: seq + 1n,
    payments: [{ to: recip(0), amount: '1' }, { to: recip(1), amount: '250.75' }, { to: recip(1), amount: '0.0000001' }],
    asset: NOVA,
    signers: [dist()],
  });
  const r2 = await submit(S, ok.b64);
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.result_xdr, VECTORS.horizon_result_xdr_samples.find((x) => x.name === 'tx_success_3_payments').result_xdr);
  assert.equal((await get(S, `/_admin/payments?tx_hash=${ok.hash}`)).json.payments.length, 3);
});

test('channel account: op source = distribution needs both signatures', async () => {
  const ch = await admin(S, '/_admin/accounts', { balance: '100' });
  assert.equal(ch.status, 201);
  const chKp = Keypair.fromSecret(ch.json.secret);
  assert.equal(ch.json.id, chKp.publicKey());
  const seq = BigInt(ch.json.sequence) + 1n;
  const distSeq = await seqOf(S, K.distribution.public);
  const base = { source: chKp.publicKey(), seq, payments: [{ to: recip(0), amount: '2', source: K.distribution.public }], asset: NOVA };
  const only = buildTx({ ...base, signers: [chKp] });
  expectFailed(await submit(S, only.b64), 'tx_failed', ['op_bad_auth']);
  assert.equal(await seqOf(S, chKp.publicKey()), seq - 1n, 'rejected before the ledger');
  const both = buildTx({ ...base, signers: [chKp, dist()] });
  const r = await submit(S, both.b64);
  assert.equal(r.status, 200, r.text);
  assert.equal(await seqOf(S, chKp.publicKey()), seq);
  assert.equal(await seqOf(S, K.distribution.public), distSeq, 'distribution sequence untouched');
  const p = (await get(S, `/_admin/payments?tx_hash=${both.hash}`)).json.payments;
  assert.equal(p[0].source, K.distribution.public);
});

test('malformed submissions: garbage, unencoded +, missing tx, wrong content type', async () => {
  let r = await submit(S, 'AAAA');
  assert.equal(r.status, 400);
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/transaction_malformed');
  // Find an envelope whose base64 contains '+' and send it without encoding.
  let t;
  for (let i = 0; i < 200; i++) {
    t = buildTx({ source: K.distribution.public, seq: 1n, payments: [{ to: recip(0), amount: String(i + 1) }], asset: NOVA, signers: [dist()] });
    if (t.b64.includes('+')) break;
  }
  assert.ok(t.b64.includes('+'));
  r = await req(S.url, 'POST', '/transactions', `tx=${t.b64}`, { 'Content-Type': 'application/x-www-form-urlencoded' });
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/transaction_malformed');
  r = await req(S.url, 'POST', '/transactions', 'foo=bar', { 'Content-Type': 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 400);
  assert.equal(r.json.extras.invalid_field, 'tx');
  r = await req(S.url, 'POST', '/transactions', JSON.stringify({ tx: t.b64 }), { 'Content-Type': 'application/json' });
  assert.equal(r.status, 415);
});

// ---- fault injection ------------------------------------------------------

async function nextPayment(amount = '1', to = recip(0)) {
  const seq = (await seqOf(S, K.distribution.public)) + 1n;
  return buildTx({ source: K.distribution.public, seq, payments: [{ to, amount }], asset: NOVA, signers: [dist()] });
}

async function fault(f) {
  const r = await admin(S, '/_admin/faults', f);
  assert.equal(r.status, 200, r.text);
}

test('fault timeout_applied: 504 but the tx is in a ledger; resubmission is idempotent', async () => {
  await fault({ kind: 'timeout_applied' });
  const t = await nextPayment('3');
  const r = await submit(S, t.b64);
  assert.equal(r.status, 504);
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/transaction_submission_timeout');
  assert.equal(r.json.extras.hash, t.hash);
  const g = await get(S, `/transactions/${t.hash}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.successful, true);
  const again = await submit(S, t.b64);
  assert.equal(again.status, 200);
  assert.equal((await get(S, `/_admin/payments?tx_hash=${t.hash}`)).json.payments.length, 1, 'paid exactly once');
});

test('fault timeout_not_applied: 504, GET 404, sequence unchanged, resubmission applies', async () => {
  await fault({ kind: 'timeout_not_applied' });
  const t = await nextPayment('4');
  const seq = await seqOf(S, K.distribution.public);
  const r = await submit(S, t.b64);
  assert.equal(r.status, 504);
  assert.equal(r.json.extras.hash, t.hash);
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404);
  assert.equal(await seqOf(S, K.distribution.public), seq);
  assert.equal((await submit(S, t.b64)).status, 200);
  assert.equal((await get(S, `/_admin/payments?tx_hash=${t.hash}`)).json.payments.length, 1);
});

test('fault rate_limit: 429 with Retry-After on submit and on GET, not applied', async () => {
  const t = await nextPayment('1');
  await fault({ faults: [{ kind: 'rate_limit', retry_after: 7 }, { kind: 'rate_limit', target: 'horizon', retry_after: 2 }] });
  const r = await submit(S, t.b64);
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/rate_limit_exceeded');
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 429, 'second fault hits the next Horizon request');
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404, 'not applied');
  assert.equal((await submit(S, t.b64)).status, 200);
});

test('fault bad_seq: forced tx_bad_seq, nothing consumed', async () => {
  await fault({ kind: 'bad_seq' });
  const t = await nextPayment('1');
  const seq = await seqOf(S, K.distribution.public);
  const r = await submit(S, t.b64);
  expectFailed(r, 'tx_bad_seq');
  assert.equal(r.json.extras.result_xdr, 'AAAAAAAAAAD////7AAAAAA==');
  assert.equal(await seqOf(S, K.distribution.public), seq);
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404);
});

test('fault op_no_trust / op_underfunded (with op_index): forced in-ledger failures', async () => {
  await fault({ kind: 'op_no_trust' });
  await expectInLedgerFailure(await nextPayment('1'), ['op_no_trust']);
  await fault({ kind: 'op_underfunded', op_index: 1 });
  const seq = (await seqOf(S, K.distribution.public)) + 1n;
  const t = buildTx({ source: K.distribution.public, seq, payments: [{ to: recip(0), amount: '1' }, { to: recip(1), amount: '1' }], asset: NOVA, signers: [dist()] });
  await expectInLedgerFailure(t, ['op_success', 'op_underfunded']);
});

test('fault count, status 503, disconnect with apply, delay; faults list drains', async () => {
  await fault({ kind: 'status', status: 503, count: 2 });
  const t = await nextPayment('1');
  assert.equal((await submit(S, t.b64)).status, 503);
  const r = await submit(S, t.b64);
  assert.equal(r.status, 503);
  assert.equal(r.json.type, 'https://stellar.org/horizon-errors/service_unavailable');
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404);
  await fault({ kind: 'disconnect', apply: true });
  await assert.rejects(submit(S, t.b64), 'connection dropped');
  assert.equal((await get(S, `/transactions/${t.hash}`)).json.successful, true, 'applied despite the drop');
  await fault({ kind: 'delay', delay_ms: 400, target: 'horizon' });
  const t0 = Date.now();
  assert.equal((await get(S, '/')).status, 200);
  assert.ok(Date.now() - t0 >= 350);
  assert.deepEqual((await get(S, '/_admin/faults')).json.faults, []);
  const bad = await admin(S, '/_admin/faults', { kind: 'explode' });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /unknown fault kind/);
});

test('POST /transactions_async: PENDING, DUPLICATE, ERROR; GET /accounts/{id}/transactions', async () => {
  const M = await startServer(['--ledger-close-ms', '0']);
  try {
    const kp = Keypair.random();
    const dst = Keypair.random();
    const a = await admin(M, '/_admin/accounts', { secret: kp.secret(), balance: '50' });
    await admin(M, '/_admin/accounts', { id: dst.publicKey(), balance: '1' });
    const seq = BigInt(a.json.sequence) + 1n;
    const asyncSubmit = (b64) =>
      req(M.url, 'POST', '/transactions_async', `tx=${encodeURIComponent(b64)}`, { 'Content-Type': 'application/x-www-form-urlencoded' });
    const t = buildTx({ source: kp.publicKey(), seq, payments: [{ to: dst.publicKey(), amount: '5' }], asset: Asset.native(), signers: [kp], memo: 'batch-1' });
    let r = await asyncSubmit(t.b64);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { tx_status: 'PENDING', hash: t.hash });
    r = await asyncSubmit(t.b64);
    assert.equal(r.status, 409);
    assert.equal(r.json.tx_status, 'DUPLICATE');
    await admin(M, '/_admin/close-ledger');
    r = await asyncSubmit(t.b64);
    assert.equal(r.status, 400, 'an applied copy has used its sequence');
    assert.equal(r.json.tx_status, 'ERROR');
    assert.equal(r.json.error_result_xdr, 'AAAAAAAAAAD////7AAAAAA==');
    const bad = buildTx({ source: kp.publicKey(), seq: seq + 5n, payments: [{ to: dst.publicKey(), amount: '5' }], asset: Asset.native(), signers: [kp] });
    r = await asyncSubmit(bad.b64);
    assert.equal(r.status, 400);
    assert.equal(decodeResult(r.json.error_result_xdr).arm, 'txBadSeq');
    assert.equal((await get(M, '/_admin/payments')).json.payments.length, 1);
    // The source account's transaction history (reconciliation by memo).
    const t2 = buildTx({ source: kp.publicKey(), seq: seq + 1n, payments: [{ to: Keypair.random().publicKey(), amount: '1' }], asset: Asset.native(), signers: [kp], memo: 'batch-2' });
    assert.equal((await asyncSubmit(t2.b64)).status, 201);
    await admin(M, '/_admin/close-ledger');
    let h = await get(M, `/accounts/${kp.publicKey()}/transactions?order=desc&limit=10`);
    assert.equal(h.status, 200);
    assert.deepEqual(h.json._embedded.records.map((x) => [x.memo, x.successful]), [['batch-2', false], ['batch-1', true]]);
    h = await get(M, `/accounts/${kp.publicKey()}/transactions?cursor=${h.json._embedded.records[1].paging_token}`);
    assert.deepEqual(h.json._embedded.records.map((x) => x.memo), ['batch-2']);
  } finally {
    await M.stop();
  }
});

test('fee bump: outer pays, both hashes resolve, inner resubmission idempotent, inner failures', async () => {
  const M = await startServer(['--ledger-close-ms', '0', '--submit-wait', 'none']);
  try {
    const src = Keypair.random();
    const payer = Keypair.random();
    const dst = Keypair.random();
    const a = await admin(M, '/_admin/accounts', { secret: src.secret(), balance: '10' });
    await admin(M, '/_admin/accounts', { secret: payer.secret(), balance: '10' });
    await admin(M, '/_admin/accounts', { id: dst.publicKey(), balance: '1' });
    const seq = BigInt(a.json.sequence) + 1n;
    // Surge: 200 stroops per op needed; the inner bid of 100 is refused.
    assert.equal((await admin(M, '/_admin/fee', { fee_per_op: 200 })).status, 200);
    assert.equal((await get(M, '/fee_stats')).json.fee_charged.p50, '200');
    const inner = buildTx({ source: src.publicKey(), seq, payments: [{ to: dst.publicKey(), amount: '1' }], asset: Asset.native(), signers: [src] });
    const low = await submit(M, inner.b64);
    expectFailed(low, 'tx_insufficient_fee');
    assert.equal(decodeResult(low.json.extras.result_xdr).fee, '200');
    // Outer bid too low (150/op) -> refused; 300/op -> included.
    const fbLow = TransactionBuilder.buildFeeBumpTransaction(payer, '150', inner.tx, TESTNET);
    fbLow.sign(payer);
    expectFailed(await submit(M, fbLow.toEnvelope().toXDR('base64')), 'tx_insufficient_fee');
    const fb = TransactionBuilder.buildFeeBumpTransaction(payer, '300', inner.tx, TESTNET);
    const unsigned = fb.toEnvelope().toXDR('base64');
    expectFailed(await submit(M, unsigned), 'tx_bad_auth');
    fb.sign(payer);
    const fbHash = fb.hash().toString('hex');
    const r = await submit(M, fb.toEnvelope().toXDR('base64'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.hash, fbHash);
    assert.equal(r.json.fee_account, payer.publicKey());
    assert.equal(r.json.source_account, src.publicKey());
    assert.equal(r.json.max_fee, '600');
    assert.equal(r.json.fee_charged, '400');
    assert.equal(r.json.inner_transaction.hash, inner.hash);
    assert.equal(r.json.fee_bump_transaction.hash, fbHash);
    const res = xdr.TransactionResult.fromXDR(r.json.result_xdr, 'base64');
    assert.equal(res.result().switch().name, 'txFeeBumpInnerSuccess');
    assert.equal(res.result().innerResultPair().transactionHash().toString('hex'), inner.hash);
    const byInner = await get(M, `/transactions/${inner.hash}`);
    assert.equal(byInner.status, 200);
    assert.equal(byInner.json.hash, inner.hash);
    assert.deepEqual(byInner.json.signatures, byInner.json.inner_transaction.signatures);
    assert.equal(balanceOf(await account(M, payer.publicKey()), 'native'), '9.9999600');
    assert.equal(balanceOf(await account(M, src.publicKey()), 'native'), '9.0000000', 'inner source paid the 1 XLM but no fee');
    assert.equal(balanceOf(await account(M, dst.publicKey()), 'native'), '2.0000000');
    // Resubmitting the inner envelope alone is answered from history.
    const again = await submit(M, inner.b64);
    assert.equal(again.status, 200);
    assert.equal(again.json.hash, fbHash);
    assert.equal((await get(M, '/_admin/payments')).json.payments.length, 1);
    // Inner op failure and inner pre-ledger rejection carry inner_transaction.
    const inner2 = buildTx({ source: src.publicKey(), seq: seq + 1n, payments: [{ to: Keypair.random().publicKey(), amount: '1' }], asset: Asset.native(), signers: [src] });
    const fb2 = TransactionBuilder.buildFeeBumpTransaction(payer, '300', inner2.tx, TESTNET);
    fb2.sign(payer);
    const r2 = await submit(M, fb2.toEnvelope().toXDR('base64'));
    expectFailed(r2, 'tx_fee_bump_inner_failed', ['op_no_destination']);
    assert.equal(r2.json.extras.result_codes.inner_transaction, 'tx_failed');
    assert.equal((await get(M, `/transactions/${inner2.hash}`)).json.successful, false);
    const inner3 = buildTx({ source: src.publicKey(), seq: seq + 9n, payments: [{ to: dst.publicKey(), amount: '1' }], asset: Asset.native(), signers: [src] });
    const fb3 = TransactionBuilder.buildFeeBumpTransaction(payer, '300', inner3.tx, TESTNET);
    fb3.sign(payer);
    const r3 = await submit(M, fb3.toEnvelope().toXDR('base64'));
    expectFailed(r3, 'tx_fee_bump_inner_failed');
    assert.equal(r3.json.extras.result_codes.inner_transaction, 'tx_bad_seq');
    assert.equal((await get(M, `/transactions/${fb3.hash().toString('hex')}`)).status, 404);
  } finally {
    await M.stop();
  }
});

test('--one-tx-per-source: a second tx of the same source in one ledger is TRY_AGAIN_LATER', async () => {
  const M = await startServer(['--ledger-close-ms', '0', '--one-tx-per-source', '--submit-wait', 'none', '--submit-timeout-ms', '200']);
  try {
    const kp = Keypair.random();
    const a = await admin(M, '/_admin/accounts', { secret: kp.secret(), balance: '10' });
    const seq = BigInt(a.json.sequence) + 1n;
    const mk = (s) => buildTx({ source: kp.publicKey(), seq: s, payments: [{ to: kp.publicKey(), amount: '1' }], asset: Asset.native(), signers: [kp] });
    const t1 = mk(seq);
    const t2 = mk(seq + 1n);
    assert.equal((await submit(M, t1.b64)).status, 200);
    const r = await req(M.url, 'POST', '/transactions_async', `tx=${encodeURIComponent(t2.b64)}`, { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 503);
    assert.deepEqual(r.json, { tx_status: 'TRY_AGAIN_LATER', hash: t2.hash });
    const s = await submit(M, t2.b64);
    assert.equal(s.status, 504);
    assert.equal((await get(M, `/transactions/${t2.hash}`)).status, 404);
    await admin(M, '/_admin/close-ledger');
    assert.equal((await submit(M, t2.b64)).status, 200);
  } finally {
    await M.stop();
  }
});

test('admin API validation and garbage input never crash the server', async () => {
  const st = await get(S, '/_admin/state');
  assert.equal(st.status, 200);
  assert.ok(Array.isArray(st.json.accounts) && st.json.accounts.length >= 5);
  assert.equal(typeof st.json.accounts[0].sequence, 'string');
  const cases = [
    ['/_admin/accounts', '{bad json', 400, /not valid JSON/],
    ['/_admin/accounts', { id: K.distribution.public }, 409, /already exists/],
    ['/_admin/accounts', { id: 'GABC' }, 400, /valid G/],
    ['/_admin/accounts', { secret: 'SXYZ' }, 400, /secret/],
    ['/_admin/accounts', { balance: '1.123456789' }, 400, /7 decimals/],
    ['/_admin/accounts', { sequence: '99999999999999999999' }, 400, /int64/],
    ['/_admin/accounts', { id: '__NEW__', trustlines: [{ code: 'TOO-LONG-CODE!', issuer: K.asset.issuer }] }, 400, /asset code/],
    ['/_admin/trustlines', { account: Keypair.random().publicKey(), code: 'NOVA', issuer: K.asset.issuer }, 404, /does not exist/],
    ['/_admin/trustlines', { account: K.issuer.public, code: 'NOVA', issuer: K.asset.issuer }, 400, /own asset/],
    ['/_admin/trustlines', { account: recip(0), code: 'NOVA', issuer: K.asset.issuer, balance: '10', limit: '1' }, 400, /above its limit/],
    ['/_admin/events', { events: [] }, 400, /non-empty/],
    ['/_admin/events', { events: [{ contractId: 'CXYZ', topic: [] }] }, 400, /contract id/],
    ['/_admin/events', { events: [{ contractId: CA, topic: [{ symbol: 'a b' }] }] }, 400, /symbol/],
    ['/_admin/events', { events: [{ contractId: CA, topic: [{ nope: 1 }] }] }, 400, /unknown ScVal type/],
    ['/_admin/events', { events: [{ contractId: CA, topic: [] }], ledger: 1 }, 400, /ledger must be between/],
    ['/_admin/events', { events: [{ contractId: CA, topic: [], value: { raw_xdr: 'not base64!' } }] }, 400, /raw_xdr must be a base64 string/],
    ['/_admin/faults', { kind: 'bad_seq', target: 'rpc' }, 400, /only applies/],
    ['/_admin/faults', { kind: 'status', status: 200 }, 400, /status/],
    ['/_admin/close-ledger', { count: 0 }, 400, /count/],
    ['/_admin/clock', { advance_seconds: -1 }, 400, /advance_seconds/],
    ['/_admin/fee', { fee_per_op: 10 }, 400, /fee_per_op/],
    ['/_admin/nothing', {}, 404, /no admin route/],
  ];
  const fresh = Keypair.random().publicKey();
  for (const [p, body, status, re] of cases) {
    if (body.id === '__NEW__') body.id = fresh;
    const r = await req(S.url, 'POST', p, body);
    assert.equal(r.status, status, `${p} ${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error, re, p);
  }
  // Refused updates leave no trace: no half-created account, trustline unchanged.
  assert.equal((await get(S, `/accounts/${fresh}`)).status, 404);
  const tl = (await account(S, recip(0))).balances.find((b) => b.asset_code === 'NOVA');
  assert.notEqual(tl.balance, '10.0000000');
  assert.equal(tl.limit, '922337203685.4775807');
  const garbage = [
    ['GET', '/accounts/', undefined],
    ['GET', '/transactions/xyz', undefined],
    ['GET', '/ledgers?limit=0', undefined],
    ['GET', '/ledgers?order=sideways', undefined],
    ['GET', '/ledgers/99999999', undefined],
    ['DELETE', '/transactions', undefined],
    ['POST', '/soroban/rpc', '[]'],
    ['POST', '/soroban/rpc', '{"jsonrpc":"2.0","id":1,"method":"getEvents","params":[1,2]}'],
    ['POST', '/soroban/rpc', '{"jsonrpc":"2.0","id":1,"method":"getEvents","params":{"startLedger":"x"}}'],
    ['GET', '/soroban/rpc', undefined],
  ];
  for (const [m, p, body] of garbage) {
    const r = await req(S.url, m, p, body, body ? { 'Content-Type': 'application/json' } : {});
    assert.ok(r.status >= 200 && r.status < 500, `${m} ${p} -> ${r.status} ${r.text}`);
  }
  assert.equal((await get(S, '/')).status, 200, 'still alive');
  assert.equal((await get(S, '/ledgers?limit=0')).json.extras.invalid_field, 'limit');
});

test('--exit-on-stdin-eof: the server exits when its parent closes stdin', async () => {
  const M = await startServer(['--exit-on-stdin-eof']);
  M.child.stdin.end();
  const code = await new Promise((r) => (M.child.exitCode !== null ? r(M.child.exitCode) : M.child.once('exit', r)));
  assert.equal(code, 0);
});

test('submit timeout while waiting for a ledger close: 504, tx applied (ledger-close-ms 0)', async () => {
  const M = await startServer(['--ledger-close-ms', '0', '--submit-timeout-ms', '300']);
  try {
    const kp = Keypair.random();
    const dst = Keypair.random();
    const a = await admin(M, '/_admin/accounts', { secret: kp.secret(), balance: '50' });
    await admin(M, '/_admin/accounts', { id: dst.publicKey(), balance: '1' });
    const seq = BigInt(a.json.sequence) + 1n;
    const t = buildTx({ source: kp.publicKey(), seq, payments: [{ to: dst.publicKey(), amount: '5' }], asset: Asset.native(), signers: [kp] });
    const r = await submit(M, t.b64);
    assert.equal(r.status, 504);
    const g = await get(M, `/transactions/${t.hash}`);
    assert.equal(g.status, 200);
    const open = g.json.ledger;
    assert.ok((await get(M, '/')).json.history_latest_ledger < open, 'its ledger is still open');
    // With a close racing the submission the answer is 200.
    const t2 = buildTx({ source: kp.publicKey(), seq: seq + 1n, payments: [{ to: dst.publicKey(), amount: '5' }], asset: Asset.native(), signers: [kp] });
    const pending = submit(M, t2.b64);
    await new Promise((res) => setTimeout(res, 100));
    await admin(M, '/_admin/close-ledger');
    const r2 = await pending;
    assert.equal(r2.status, 200);
    assert.equal(r2.json.ledger, open);
    assert.equal(balanceOf(await account(M, dst.publicKey()), 'native'), '11.0000000');
    // Native underfunded respects the base reserve (2 x 0.5 XLM).
    const t3 = buildTx({ source: kp.publicKey(), seq: seq + 2n, payments: [{ to: dst.publicKey(), amount: '39.5' }], asset: Asset.native(), signers: [kp] });
    await admin(M, '/_admin/close-ledger');
    const r3 = await submit(M, t3.b64).catch((e) => e);
    assert.equal(r3.status, 504, 'answered by timeout since nothing closes the ledger');
    assert.equal((await get(M, `/transactions/${t3.hash}`)).json.successful, false);
  } finally {
    await M.stop();
  }
});

test('clock advance makes a pending envelope too late; closed_at passes max_time', async () => {
  const t = await nextPayment('1');
  const maxTime = Number(t.tx.timeBounds.maxTime);
  const c = await admin(S, '/_admin/clock', { advance_seconds: 400 });
  assert.equal(c.status, 200);
  assert.ok(c.json.now > maxTime);
  await admin(S, '/_admin/close-ledger');
  const root = (await get(S, '/')).json;
  assert.ok(Date.parse(root.history_latest_ledger_closed_at) / 1000 > maxTime);
  expectFailed(await submit(S, t.b64), 'tx_too_late');
  assert.equal((await get(S, `/transactions/${t.hash}`)).status, 404);
});

// ---- Soroban RPC ------------------------------------------------------------

const CA = VECTORS.strkey.contract_ids[0].strkey;
const CB = VECTORS.soroban.nova_sac_contract_id_testnet;
const sym = (s) => toScValB64({ symbol: s });

test('RPC getHealth, getLatestLedger, getNetwork, errors', async () => {
  const h = (await rpcCall(S, 'getHealth')).result;
  assert.equal(h.status, 'healthy');
  assert.equal(h.ledgerRetentionWindow, 120960);
  assert.ok(h.latestLedger >= h.oldestLedger);
  const l = (await rpcCall(S, 'getLatestLedger', undefined, '/rpc')).result;
  assert.match(l.id, /^[0-9a-f]{64}$/);
  assert.ok(Number.isInteger(l.sequence) && Number.isInteger(l.protocolVersion));
  assert.match(l.closeTime, /^\d+$/);
  assert.equal((await rpcCall(S, 'getNetwork')).result.passphrase, TESTNET);
  assert.equal((await rpcCall(S, 'noSuchMethod')).error.code, -32601);
  const bad = await req(S.url, 'POST', '/soroban/rpc', '{not json', { 'Content-Type': 'application/json' });
  assert.equal(bad.json.error.code, -32700);
});

let evLedger;
test('RPC getEvents: filters, topic wildcards, shapes', async () => {
  const user = VECTORS.keys.dest1.account_id;
  const add = await admin(S, '/_admin/events', {
    events: [
      { contractId: CA, topic: [{ symbol: 'mint' }, { address: user }], value: { i128: '125000000' } },
      { contractId: CA, topic: [{ symbol: 'claim' }, { address: user }, { u64: '7' }], value: { vec: [{ u32: 1 }] } },
      { contractId: CB, topic: [{ symbol: 'transfer' }, { address: user }, { address: CA }, { string: `NOVA:${K.asset.issuer}` }], value: { i128: '5' } },
    ],
  });
  assert.equal(add.status, 201, add.text);
  evLedger = add.json.events[0].ledger;
  // Events of the open ledger are not served before it closes. The timer may
  // close it between the calls on a loaded machine: judge by what was
  // closed when the answer was made (latestLedger).
  let r = (await rpcCall(S, 'getEvents', { startLedger: (await get(S, '/')).json.history_latest_ledger })).result;
  if (r.latestLedger < evLedger) assert.ok(!r.events.some((e) => e.ledger === evLedger));
  else assert.ok(r.events.some((e) => e.ledger === evLedger), 'a closed ledger serves its events');
  await admin(S, '/_admin/close-ledger');
  // The reference sample request: mint with exactly 2 topics, or claim with any.
  const sample = VECTORS.soroban.sample_get_events.request.params;
  r = (await rpcCall(S, 'getEvents', { ...sample, startLedger: evLedger })).result;
  assert.deepEqual(r.events.map((e) => xdr.ScVal.fromXDR(e.topic[0], 'base64').sym().toString()), ['mint', 'claim']);
  const e = r.events[0];
  assert.deepEqual(Object.keys(e).sort(), ['contractId', 'id', 'inSuccessfulContractCall', 'ledger', 'ledgerClosedAt', 'operationIndex', 'topic', 'transactionIndex', 'txHash', 'type', 'value'].sort());
  assert.equal(e.type, 'contract');
  assert.equal(e.contractId, CA);
  assert.equal(e.ledger, evLedger);
  assert.match(e.id, /^\d{19}-\d{10}$/);
  assert.equal(BigInt(e.id.slice(0, 19)) >> 32n, BigInt(evLedger));
  assert.match(e.ledgerClosedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(e.txHash, /^[0-9a-f]{64}$/);
  assert.equal(e.topic[0], 'AAAADwAAAARtaW50');
  assert.equal(e.topic[1], VECTORS.soroban.scvals.find((v) => v.name === 'address_account_dest1').xdr_base64);
  assert.equal(e.value, 'AAAACgAAAAAAAAAAAAAAAAdzWUA=');
  assert.equal(sb.scValToBigInt(xdr.ScVal.fromXDR(e.value, 'base64')), 125000000n);
  for (const k of ['cursor', 'latestLedger', 'oldestLedger', 'latestLedgerCloseTime', 'oldestLedgerCloseTime']) assert.ok(r[k] !== undefined, k);
  const q = async (filters) => (await rpcCall(S, 'getEvents', { startLedger: evLedger, filters })).result.events.length;
  assert.equal(await q([]), 3);
  assert.equal(await q([{ type: 'contract', contractIds: [CB] }]), 1);
  assert.equal(await q([{ type: 'system' }]), 0);
  assert.equal(await q([{ topics: [[sym('claim'), '*']] }]), 0, 'claim has 3 topics');
  assert.equal(await q([{ topics: [[sym('claim'), '*', '*']] }]), 1);
  assert.equal(await q([{ topics: [['*', '**']] }]), 3);
  assert.equal(await q([{ topics: [['**']] }]), 3);
  assert.equal(await q([{ contractIds: [CA], topics: [['*', toScValB64({ address: user })]] }]), 1);
  assert.equal(await q([{ contractIds: [CA] }, { contractIds: [CB] }]), 3, 'filters are ORed');
});

test('RPC getEvents: pagination cursor and limit, synthetic end cursor', async () => {
  let r = (await rpcCall(S, 'getEvents', { startLedger: evLedger, pagination: { limit: 2 } })).result;
  assert.equal(r.events.length, 2);
  assert.equal(r.cursor, r.events[1].id);
  const seen = r.events.map((e) => e.id);
  r = (await rpcCall(S, 'getEvents', { pagination: { cursor: r.cursor, limit: 2 } })).result;
  assert.equal(r.events.length, 1);
  assert.ok(r.events[0].id > seen[1]);
  seen.push(r.events[0].id);
  assert.notEqual(r.cursor, r.events[0].id, 'fewer than limit: cursor moves to the end of the scanned range');
  r = (await rpcCall(S, 'getEvents', { pagination: { cursor: r.cursor } })).result;
  assert.equal(r.events.length, 0);
  assert.equal(new Set(seen).size, 3);
  // New events after the cursor show up on the next page.
  const c = r.cursor;
  await admin(S, '/_admin/events', { events: [{ contractId: CA, topic: [{ symbol: 'stake' }], value: { i128: '1' } }], close_ledger: true });
  r = (await rpcCall(S, 'getEvents', { pagination: { cursor: c } })).result;
  assert.equal(r.events.length, 1);
  assert.equal(r.events[0].topic[0], 'AAAADwAAAAVzdGFrZQAAAA==');
});

test('RPC getEvents: raw_xdr topics and values are served as given', async () => {
  const add = await admin(S, '/_admin/events', {
    events: [{ contractId: CA, topic: [{ symbol: 'nova_rwd' }, { raw_xdr: 'AAAADw==' }], value: { raw_xdr: 'AAAAEAAAAAEAAAAF' } }],
    close_ledger: true,
  });
  assert.equal(add.status, 201, add.text);
  const id = add.json.events[0].id;
  const r = (await rpcCall(S, 'getEvents', { startLedger: add.json.events[0].ledger })).result;
  const e = r.events.find((x) => x.id === id);
  assert.deepEqual(e.topic, ['AAAADwAAAAhub3ZhX3J3ZA==', 'AAAADw==']);
  assert.equal(e.value, 'AAAAEAAAAAEAAAAF');
  assert.throws(() => xdr.ScVal.fromXDR(e.value, 'base64'), 'a truncated vec is no ScVal');
});

test('RPC getEvents: parameter errors', async () => {
  const err = async (params) => (await rpcCall(S, 'getEvents', params)).error;
  const h = (await rpcCall(S, 'getHealth')).result;
  let e = await err({ startLedger: h.latestLedger + 50 });
  assert.equal(e.code, -32600);
  assert.match(e.message, /startLedger must be within the ledger range: \d+ - \d+/);
  assert.equal((await err({ startLedger: h.oldestLedger - 1 })).code, -32600);
  assert.equal((await err({ startLedger: evLedger, pagination: { limit: 10001 } })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, filters: [{ type: 'diagnostic' }] })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, filters: [{ topics: [['**', '*']] }] })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, filters: [{ topics: [['not-xdr!']] }] })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, filters: [{ contractIds: [K.issuer.public] }] })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, filters: [{}, {}, {}, {}, {}, {}] })).code, -32602);
  assert.equal((await err({ startLedger: evLedger, pagination: { cursor: '0004294967296004096-0000000000' } })).code, -32602);
  assert.equal((await err({})).code, -32602);
  assert.equal((await err({ startLedger: evLedger, endLedger: evLedger })).code, -32602);
});

test('RPC faults: rpc_error, rate_limit, status', async () => {
  await fault({ faults: [{ kind: 'rpc_error', code: -32603, message: 'boom' }, { kind: 'rate_limit', target: 'rpc', retry_after: 3 }, { kind: 'status', target: 'rpc', status: 502, body: '<html>bad gateway</html>' }] });
  const a = await rpcCall(S, 'getHealth');
  assert.deepEqual(a.error, { code: -32603, message: 'boom' });
  const b = await req(S.url, 'POST', '/soroban/rpc', { jsonrpc: '2.0', id: 1, method: 'getHealth' });
  assert.equal(b.status, 429);
  assert.equal(b.headers.get('retry-after'), '3');
  const c = await req(S.url, 'POST', '/soroban/rpc', { jsonrpc: '2.0', id: 1, method: 'getHealth' });
  assert.equal(c.status, 502);
  assert.equal(c.text, '<html>bad gateway</html>');
  assert.equal((await rpcCall(S, 'getHealth')).result.status, 'healthy');
});

// ---- Latest-Ledger header, lagging replicas, history retention ---------------

const LL = (r) => r.headers.get('latest-ledger');
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

async function until(what, fn) {
  for (let i = 0; i < 300; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A server whose ledgers close only on request, so ledger numbers are exact:
// genesis 1000; kp (100 XLM) and dst (10 XLM) are created in open ledger 1001.
async function replicaFixture(args = []) {
  const M = await startServer(['--ledger-close-ms', '0', '--submit-wait', 'none', ...args]);
  const kp = Keypair.random();
  const dst = Keypair.random();
  const a = await admin(M, '/_admin/accounts', { secret: kp.secret(), balance: '100' });
  await admin(M, '/_admin/accounts', { secret: dst.secret(), balance: '10' });
  const seq0 = BigInt(a.json.sequence);
  assert.equal(seq0, 1001n << 32n);
  let n = 0n;
  const pay = (amount) =>
    buildTx({ source: kp.publicKey(), seq: seq0 + ++n, payments: [{ to: dst.publicKey(), amount }], asset: Asset.native(), signers: [kp] });
  const closeTo = async (target) => {
    const l = (await get(M, '/')).json.core_latest_ledger;
    const r = await admin(M, '/_admin/close-ledger', { count: target - l });
    assert.equal(r.json.ledger, target);
  };
  return { M, kp, dst, seq0, pay, closeTo };
}

// The next Horizon GET (whose path contains `filter`, default any) is
// answered by a replica `lag` ledgers behind.
async function lagNext(M, lag, filter) {
  const f = { kind: 'lagging_read', lag_ledgers: lag };
  if (filter !== undefined) f.path = filter;
  const r = await admin(M, '/_admin/faults', f);
  assert.equal(r.status, 200, r.text);
}

async function lagGet(M, p, lag) {
  await lagNext(M, lag);
  return get(M, p);
}

test('Latest-Ledger header on every Horizon answer, errors and submissions included; not on admin/RPC', async () => {
  const { M, kp, pay, closeTo } = await replicaFixture(['--submit-wait', 'close']);
  try {
    await closeTo(1003);
    // A sync submission answers after its ledger closed: the header is the
    // latest closed ledger when the answer is written, i.e. the tx's ledger.
    const t1 = pay('1');
    const pending = submit(M, t1.b64);
    await until('t1 applied', async () => (await get(M, `/transactions/${t1.hash}`)).status === 200);
    await closeTo(1004);
    const r1 = await pending;
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.ledger, 1004);
    assert.equal(LL(r1), '1004');
    const t2 = pay('1');
    const bad = buildTx({ source: kp.publicKey(), seq: 5n, payments: [{ to: kp.publicKey(), amount: '1' }], asset: Asset.native(), signers: [kp] });
    const cases = [
      ['GET', '/', undefined, {}, 200],
      ['GET', `/accounts/${kp.publicKey()}`, undefined, {}, 200],
      ['GET', `/accounts/${Keypair.random().publicKey()}`, undefined, {}, 404],
      ['GET', '/accounts/GNOTANACCOUNT', undefined, {}, 400],
      ['GET', `/accounts/${kp.publicKey()}/transactions?order=desc`, undefined, {}, 200],
      ['GET', `/accounts/${kp.publicKey()}/transactions?limit=0`, undefined, {}, 400],
      ['GET', `/transactions/${t1.hash}`, undefined, {}, 200],
      ['GET', `/transactions/${'ab'.repeat(32)}`, undefined, {}, 404],
      ['GET', '/transactions/xyz', undefined, {}, 400],
      ['GET', '/ledgers?order=desc&limit=1', undefined, {}, 200],
      ['GET', '/ledgers?order=sideways', undefined, {}, 400],
      ['GET', '/ledgers/1002', undefined, {}, 200],
      ['GET', '/ledgers/1005', undefined, {}, 404],
      ['GET', '/fee_stats', undefined, {}, 200],
      ['GET', '/no/such/thing', undefined, {}, 404],
      ['DELETE', '/', undefined, {}, 405],
      ['POST', '/transactions', `tx=${encodeURIComponent(t1.b64)}`, FORM, 200],
      ['POST', '/transactions', `tx=${encodeURIComponent(bad.b64)}`, FORM, 400],
      ['POST', '/transactions', 'tx=AAAA', FORM, 400],
      ['POST', '/transactions', '{}', { 'Content-Type': 'application/json' }, 415],
      ['POST', '/transactions_async', `tx=${encodeURIComponent(t2.b64)}`, FORM, 201],
      ['POST', '/transactions_async', `tx=${encodeURIComponent(t1.b64)}`, FORM, 400],
    ];
    for (const [m, p, body, h, status] of cases) {
      const r = await req(M.url, m, p, body, h);
      assert.equal(r.status, status, `${m} ${p}: ${r.text}`);
      assert.equal(LL(r), '1004', `${m} ${p} Latest-Ledger`);
    }
    // Injected Horizon problems carry it; a raw-body status fault (a proxy
    // answering instead of Horizon) does not.
    await admin(M, '/_admin/faults', { faults: [
      { kind: 'rate_limit', target: 'horizon' },
      { kind: 'status', status: 503, target: 'horizon' },
      { kind: 'status', status: 502, target: 'horizon', body: 'bad gateway' },
      { kind: 'rate_limit' },
    ] });
    let r = await get(M, '/');
    assert.equal(r.status, 429);
    assert.equal(LL(r), '1004');
    r = await get(M, `/accounts/${kp.publicKey()}`);
    assert.equal(r.status, 503);
    assert.equal(LL(r), '1004');
    r = await get(M, '/');
    assert.equal(r.status, 502);
    assert.equal(LL(r), null);
    r = await submit(M, t1.b64);
    assert.equal(r.status, 429);
    assert.equal(LL(r), '1004');
    // Admin and RPC answers have no Latest-Ledger.
    assert.equal(LL(await get(M, '/_admin/faults')), null);
    assert.equal(LL(await req(M.url, 'POST', '/soroban/rpc', { jsonrpc: '2.0', id: 1, method: 'getHealth' })), null);
    // The header follows the latest closed ledger.
    await closeTo(1006);
    assert.equal(LL(await get(M, `/transactions/${t2.hash}`)), '1006');
  } finally {
    await M.stop();
  }
});

test('fault lagging_read: a replica N ledgers behind (tx 404, old sequence and balances, GET /, ledgers), without replica mode', async () => {
  const { M, kp, dst, seq0, pay, closeTo } = await replicaFixture();
  try {
    const K_ = kp.publicKey();
    const D_ = dst.publicKey();
    await closeTo(1005);
    const t1 = pay('1');
    assert.equal((await submit(M, t1.b64)).json.ledger, 1006);
    await closeTo(1010);
    // t2: a fee bump (dst pays 200 stroops), the inner source is kp.
    const inner = pay('2');
    const fb = TransactionBuilder.buildFeeBumpTransaction(dst, '100', inner.tx, TESTNET);
    fb.sign(dst);
    const fbHash = fb.hash().toString('hex');
    const r2 = await submit(M, fb.toEnvelope().toXDR('base64'));
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.ledger, 1011);
    await closeTo(1011);
    const unknown = await get(M, `/transactions/${'cd'.repeat(32)}`);
    assert.equal(unknown.status, 404);

    // The path filter: GET / does not take a fault meant for /transactions/.
    await lagNext(M, 3, '/transactions/');
    let r = await get(M, '/');
    assert.equal(LL(r), '1011');
    assert.equal(r.json.history_latest_ledger, 1011);
    assert.equal((await get(M, '/_admin/faults')).json.faults.length, 1);
    // A tx of ledger 1011 on a replica at 1008: 404 like an unknown hash.
    r = await get(M, `/transactions/${fbHash}`);
    assert.equal(r.status, 404);
    assert.equal(LL(r), '1008');
    assert.deepEqual(r.json, unknown.json);
    assert.equal((await get(M, '/_admin/faults')).json.faults.length, 0);
    // The next read is up to date and finds it.
    r = await get(M, `/transactions/${fbHash}`);
    assert.equal(r.status, 200);
    assert.equal(LL(r), '1011');
    assert.equal(r.json.ledger, 1011);
    // count 2: the inner hash is unknown there too; t1 (ledger 1006) is known.
    await admin(M, '/_admin/faults', { kind: 'lagging_read', lag_ledgers: 3, count: 2, path: '/transactions/' });
    r = await get(M, `/transactions/${inner.hash}`);
    assert.deepEqual([r.status, LL(r)], [404, '1008']);
    r = await get(M, `/transactions/${t1.hash}`);
    assert.deepEqual([r.status, LL(r), r.json.ledger], [200, '1008', 1006]);

    // Accounts as of H: sequence (fee bump: the inner source's), balances,
    // last_modified_ledger; created after H -> 404.
    const acct = async (id, lag) => {
      const a = lag === null ? await get(M, `/accounts/${id}`) : await lagGet(M, `/accounts/${id}`, lag);
      return { status: a.status, ll: LL(a), seq: a.json.sequence, native: a.json.balances ? balanceOf(a.json, 'native') : null, lml: a.json.last_modified_ledger };
    };
    assert.deepEqual(await acct(K_, null), { status: 200, ll: '1011', seq: (seq0 + 2n).toString(), native: '96.9999900', lml: 1011 });
    assert.deepEqual(await acct(D_, null), { status: 200, ll: '1011', seq: seq0.toString(), native: '12.9999800', lml: 1011 });
    assert.deepEqual(await acct(K_, 3), { status: 200, ll: '1008', seq: (seq0 + 1n).toString(), native: '98.9999900', lml: 1006 });
    assert.deepEqual(await acct(D_, 3), { status: 200, ll: '1008', seq: seq0.toString(), native: '11.0000000', lml: 1006 });
    assert.deepEqual(await acct(K_, 5), { status: 200, ll: '1006', seq: (seq0 + 1n).toString(), native: '98.9999900', lml: 1006 });
    assert.deepEqual(await acct(K_, 6), { status: 200, ll: '1005', seq: seq0.toString(), native: '100.0000000', lml: 1000 });
    assert.deepEqual(await acct(K_, 10), { status: 200, ll: '1001', seq: seq0.toString(), native: '100.0000000', lml: 1000 });
    assert.deepEqual((await acct(K_, 11)).status, 404, 'created in ledger 1001');
    assert.deepEqual((await acct(K_, 1000)).ll, '1000', 'the height never goes below genesis');

    // GET / of a replica at 1008; ledgers and account history end at 1008.
    const l1008 = (await get(M, '/ledgers/1008')).json;
    r = await lagGet(M, '/', 3);
    assert.equal(LL(r), '1008');
    assert.deepEqual(
      [r.json.history_latest_ledger, r.json.ingest_latest_ledger, r.json.history_latest_ledger_closed_at, r.json.history_elder_ledger, r.json.core_latest_ledger],
      [1008, 1008, l1008.closed_at, 1000, 1011],
    );
    r = await lagGet(M, '/ledgers?order=desc&limit=2', 3);
    assert.deepEqual(r.json._embedded.records.map((l) => l.sequence), [1008, 1007]);
    r = await lagGet(M, '/ledgers/1009', 3);
    assert.deepEqual([r.status, LL(r)], [404, '1008']);
    assert.equal((await get(M, '/ledgers/1009')).status, 200);
    r = await lagGet(M, `/accounts/${K_}/transactions`, 3);
    assert.deepEqual(r.json._embedded.records.map((t) => t.hash), [t1.hash]);
    r = await get(M, `/accounts/${K_}/transactions`);
    assert.deepEqual(r.json._embedded.records.map((t) => t.hash), [t1.hash, fbHash]);
    assert.equal((await lagGet(M, '/fee_stats', 3)).json.last_ledger, '1008');

    // Faults stay FIFO: a rate limit queued first hits first.
    await admin(M, '/_admin/faults', { faults: [{ kind: 'rate_limit', target: 'horizon' }, { kind: 'lagging_read', lag_ledgers: 2 }] });
    assert.equal((await get(M, '/')).status, 429);
    assert.equal((await get(M, '/')).json.history_latest_ledger, 1009);

    // Submissions never take a lagging_read fault and are never lagged.
    await lagNext(M, 1);
    const t3 = pay('1');
    r = await submit(M, t3.b64);
    assert.deepEqual([r.status, LL(r), r.json.ledger], [200, '1011', 1012]);
    assert.equal((await get(M, '/_admin/faults')).json.faults.length, 1, 'still pending');
    assert.deepEqual(await acct(K_, null), { status: 200, ll: '1010', seq: (seq0 + 1n).toString(), native: '98.9999900', lml: 1006 });
    assert.equal((await get(M, '/_admin/faults')).json.faults.length, 0, 'taken by the GET');
    assert.deepEqual(await acct(K_, null), { status: 200, ll: '1011', seq: (seq0 + 3n).toString(), native: '95.9999800', lml: 1012 });

    // lag 0: the replica at the latest closed ledger does not see the open
    // ledger (t3, and an admin change, which also belongs to the open ledger).
    await admin(M, `/_admin/accounts/${K_}`, { sequence: (seq0 + 100n).toString() });
    assert.equal((await acct(K_, null)).seq, (seq0 + 100n).toString());
    assert.deepEqual(await acct(K_, 0), { status: 200, ll: '1011', seq: (seq0 + 2n).toString(), native: '96.9999900', lml: 1011 });
    await closeTo(1012);
    assert.equal((await acct(K_, 0)).seq, (seq0 + 100n).toString());
    assert.equal((await req(M.url, 'DELETE', `/_admin/accounts/${D_}`)).status, 200);
    assert.equal((await acct(D_, null)).status, 404);
    assert.equal((await acct(D_, 0)).status, 200, 'deleted in the open ledger 1013');
    // A tx failed in its ledger consumes the sequence and the fee: recorded too.
    const t4 = buildTx({ source: K_, seq: seq0 + 101n, payments: [{ to: D_, amount: '1' }], asset: Asset.native(), signers: [kp] });
    r = await submit(M, t4.b64);
    expectFailed(r, 'tx_failed', ['op_no_destination']);
    await closeTo(1013);
    assert.deepEqual(await acct(K_, 0), { status: 200, ll: '1013', seq: (seq0 + 101n).toString(), native: '95.9999700', lml: 1013 });
    assert.deepEqual(await acct(K_, 1), { status: 200, ll: '1012', seq: (seq0 + 100n).toString(), native: '95.9999800', lml: 1012 });

    const c = (await get(M, '/_admin/replicas')).json;
    assert.equal(c.enabled, false);
    assert.equal(c.counters.forced, 22);
    assert.equal(c.counters.lagged, 22);
    assert.ok(c.counters.up_to_date >= 10);
  } finally {
    await M.stop();
  }
});

test('replica mode: probability 1 always lagged, 0 never, seeded choices reproducible; counters; submissions never lagged', async () => {
  const { M, kp, seq0, pay, closeTo } = await replicaFixture(['--replica-lag', '2', '--replica-probability', '1']);
  try {
    const K_ = kp.publicKey();
    let info = (await get(M, '/_admin/replicas')).json;
    assert.deepEqual(info, { enabled: true, lag_ledgers: 2, probability: 1, seed: null, counters: { lagged: 0, forced: 0, up_to_date: 0 } });
    await closeTo(1005);
    let r = await get(M, '/');
    assert.deepEqual([LL(r), r.json.history_latest_ledger, r.json.core_latest_ledger], ['1003', 1003, 1005]);
    const t1 = pay('1');
    r = await submit(M, t1.b64);
    assert.deepEqual([r.status, LL(r), r.json.ledger], [200, '1005', 1006], 'the submission is not lagged');
    await closeTo(1006);
    for (let i = 0; i < 2; i++) {
      r = await get(M, `/transactions/${t1.hash}`);
      assert.deepEqual([r.status, LL(r)], [404, '1004'], 'every read is lagged');
    }
    r = await get(M, `/accounts/${K_}`);
    assert.deepEqual([LL(r), r.json.sequence], ['1004', seq0.toString()]);
    // A duplicate goes to the up-to-date core view: found, not re-applied.
    r = await submit(M, t1.b64);
    assert.deepEqual([r.status, LL(r), r.json.ledger], [200, '1006', 1006]);
    assert.equal((await get(M, `/_admin/payments?tx_hash=${t1.hash}`)).json.payments.length, 1);
    // A lagging_read fault's own lag wins over the mode's.
    r = await lagGet(M, '/', 5);
    assert.equal(LL(r), '1001');
    info = (await get(M, '/_admin/replicas')).json;
    // 7 reads: 2 GET / by closeTo, GET /, 2 tx lookups, the account, the fault's.
    assert.deepEqual(info.counters, { lagged: 7, forced: 1, up_to_date: 0 });
    await closeTo(1008);
    r = await get(M, `/transactions/${t1.hash}`);
    assert.deepEqual([r.status, LL(r)], [200, '1006'], 'a replica at 1006 has it');

    // Probability 0: never lagged (counters restart with each POST).
    r = await admin(M, '/_admin/replicas', { lag_ledgers: 2, probability: 0 });
    assert.deepEqual(r.json, { enabled: true, lag_ledgers: 2, probability: 0, seed: null, counters: { lagged: 0, forced: 0, up_to_date: 0 } });
    for (const p of ['/', `/accounts/${K_}`, `/transactions/${t1.hash}`]) assert.equal(LL(await get(M, p)), '1008');
    r = await lagGet(M, `/accounts/${K_}`, 7);
    assert.deepEqual([LL(r), r.json.sequence], ['1001', seq0.toString()], 'a lagging_read fault works in replica mode');
    assert.deepEqual((await get(M, '/_admin/replicas')).json.counters, { lagged: 1, forced: 1, up_to_date: 3 });

    // Seeded: the same seed gives the same choices.
    const run = async (seed) => {
      const s = await admin(M, '/_admin/replicas', { lag_ledgers: 1, probability: 0.5, seed });
      assert.equal(s.status, 200, s.text);
      const heights = [];
      for (let i = 0; i < 16; i++) heights.push(LL(await get(M, '/')));
      return heights;
    };
    const a = await run(42);
    assert.deepEqual(await run(42), a);
    const lagged = a.filter((h) => h === '1007').length;
    assert.equal(lagged + a.filter((h) => h === '1008').length, 16);
    assert.ok(lagged > 0 && lagged < 16, `both kinds of answers: ${a}`);
    info = (await get(M, '/_admin/replicas')).json;
    assert.deepEqual(info, { enabled: true, lag_ledgers: 1, probability: 0.5, seed: 42, counters: { lagged, forced: 0, up_to_date: 16 - lagged } });

    // DELETE: off, counters kept.
    r = await req(M.url, 'DELETE', '/_admin/replicas');
    assert.deepEqual(r.json, { enabled: false, lag_ledgers: null, probability: 0, seed: null, counters: info.counters });
    assert.equal(LL(await get(M, '/')), '1008');
    assert.deepEqual((await get(M, '/_admin/replicas')).json.counters, { ...info.counters, up_to_date: info.counters.up_to_date + 1 });

    // Validation.
    for (const b of [{ lag_ledgers: -1, probability: 1 }, { lag_ledgers: 1, probability: 1.5 }, { lag_ledgers: 1, probability: '1' }, { probability: 1 }, { lag_ledgers: 1, probability: 1, seed: -3 }]) {
      r = await admin(M, '/_admin/replicas', b);
      assert.equal(r.status, 400, JSON.stringify(b));
    }
    for (const f of [{ kind: 'lagging_read' }, { kind: 'lagging_read', lag_ledgers: 1, target: 'submit' }, { kind: 'lagging_read', lag_ledgers: 1, path: '' }]) {
      r = await admin(M, '/_admin/faults', f);
      assert.equal(r.status, 400, JSON.stringify(f));
    }
    assert.equal((await get(M, '/_admin/replicas')).json.enabled, false);
  } finally {
    await M.stop();
  }
  for (const args of [['--replica-lag', '2'], ['--replica-probability', '0.5'], ['--replica-lag', '2', '--replica-probability', '1.5'], ['--history-retention-ledgers', '-1']]) {
    const c = spawn(process.execPath, [path.join(HERE, 'server.js'), '--port', '0', ...args], { stdio: 'ignore' });
    assert.equal(await new Promise((res) => c.on('exit', res)), 2, args.join(' '));
  }
});

test('history retention: older txs and ledgers 404, elder per replica height, account state unaffected', async () => {
  const { M, kp, seq0, pay, closeTo } = await replicaFixture(['--history-retention-ledgers', '5']);
  try {
    const K_ = kp.publicKey();
    const t1 = pay('1');
    assert.equal((await submit(M, t1.b64)).json.ledger, 1001);
    await closeTo(1005);
    let r = await get(M, '/');
    assert.deepEqual([r.json.history_latest_ledger, r.json.history_elder_ledger], [1005, 1001]);
    assert.equal((await get(M, `/transactions/${t1.hash}`)).status, 200, 'ledger 1001 = elder: kept');
    await closeTo(1006);
    r = await get(M, '/');
    assert.deepEqual([r.json.history_latest_ledger, r.json.history_elder_ledger], [1006, 1002]);
    const unknown = await get(M, `/transactions/${'ef'.repeat(32)}`);
    r = await get(M, `/transactions/${t1.hash}`);
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, unknown.json);
    assert.equal((await get(M, '/ledgers/1001')).status, 404);
    assert.equal((await get(M, '/ledgers/1002')).status, 200);
    r = await get(M, '/ledgers?order=asc&limit=200');
    assert.deepEqual(r.json._embedded.records.map((l) => l.sequence), [1002, 1003, 1004, 1005, 1006]);
    r = await get(M, `/accounts/${K_}/transactions`);
    assert.deepEqual(r.json._embedded.records, []);
    r = await get(M, `/accounts/${K_}`);
    assert.deepEqual([r.json.sequence, balanceOf(r.json, 'native')], [(seq0 + 1n).toString(), '98.9999900'], 'account state is not history');
    // Each replica's elder follows its own height.
    r = await lagGet(M, '/', 1);
    assert.deepEqual([LL(r), r.json.history_latest_ledger, r.json.history_elder_ledger], ['1005', 1005, 1001]);
    r = await lagGet(M, `/transactions/${t1.hash}`, 1);
    assert.deepEqual([r.status, LL(r)], [200, '1005']);
    r = await lagGet(M, `/accounts/${K_}/transactions`, 2);
    assert.deepEqual(r.json._embedded.records.map((t) => t.hash), [t1.hash]);
    // Horizon's duplicate lookup does not find it either: core says tx_bad_seq.
    expectFailed(await submit(M, t1.b64), 'tx_bad_seq');
    assert.equal((await get(M, `/_admin/payments?tx_hash=${t1.hash}`)).json.payments.length, 1);
    // At run time.
    r = await admin(M, '/_admin/retention', { ledgers: 0 });
    assert.deepEqual(r.json, { ledgers: 0, history_elder_ledger: 1000, history_latest_ledger: 1006 });
    assert.equal((await get(M, `/transactions/${t1.hash}`)).status, 200);
    assert.equal((await get(M, '/')).json.history_elder_ledger, 1000);
    r = await admin(M, '/_admin/retention', { ledgers: 1 });
    assert.equal(r.json.history_elder_ledger, 1006);
    assert.deepEqual((await get(M, '/ledgers?order=desc')).json._embedded.records.map((l) => l.sequence), [1006]);
    assert.deepEqual((await get(M, '/_admin/retention')).json, { ledgers: 1, history_elder_ledger: 1006, history_latest_ledger: 1006 });
    assert.equal((await admin(M, '/_admin/retention', { ledgers: -1 })).status, 400);
    assert.equal((await admin(M, '/_admin/retention', {})).status, 400);
  } finally {
    await M.stop();
  }
});

test('--state keeps the account history: a lagging replica still shows the old sequence after a restart', async () => {
  const file = path.join(tmp, 'state-history.json');
  let P = await startServer(['--ledger-close-ms', '0', '--submit-wait', 'none', '--state', file]);
  const kp = Keypair.random();
  const a = await admin(P, '/_admin/accounts', { secret: kp.secret(), balance: '20' });
  const seq0 = BigInt(a.json.sequence);
  await admin(P, '/_admin/close-ledger', { count: 2 });
  const t = buildTx({ source: kp.publicKey(), seq: seq0 + 1n, payments: [{ to: kp.publicKey(), amount: '1' }], asset: Asset.native(), signers: [kp] });
  assert.equal((await submit(P, t.b64)).json.ledger, 1003);
  await admin(P, '/_admin/close-ledger');
  assert.equal(await P.stop(), 0);
  P = await startServer(['--ledger-close-ms', '0', '--state', file]);
  try {
    let r = await lagGet(P, `/accounts/${kp.publicKey()}`, 1);
    assert.deepEqual([LL(r), r.json.sequence, balanceOf(r.json, 'native')], ['1002', seq0.toString(), '20.0000000']);
    r = await get(P, `/accounts/${kp.publicKey()}`);
    assert.deepEqual([LL(r), r.json.sequence, balanceOf(r.json, 'native')], ['1003', (seq0 + 1n).toString(), '19.9999900']);
  } finally {
    await P.stop();
  }
});

test('--state: accounts, transactions and events survive a restart', async () => {
  const file = path.join(tmp, 'state.json');
  let P = await startServer(['--ledger-close-ms', '0', '--state', file, '--submit-wait', 'none']);
  const kp = Keypair.random();
  const dst = Keypair.random();
  const a = await admin(P, '/_admin/accounts', { secret: kp.secret(), balance: '20' });
  await admin(P, '/_admin/accounts', { id: dst.publicKey(), balance: '1' });
  const t = buildTx({ source: kp.publicKey(), seq: BigInt(a.json.sequence) + 1n, payments: [{ to: dst.publicKey(), amount: '2' }], asset: Asset.native(), signers: [kp] });
  assert.equal((await submit(P, t.b64)).status, 200, 'submit-wait none answers before the close');
  await admin(P, '/_admin/close-ledger');
  await admin(P, '/_admin/events', { events: [{ contractId: CA, topic: [{ symbol: 'mint' }], value: { u32: 1 } }], close_ledger: true });
  const latest = (await get(P, '/')).json.history_latest_ledger;
  assert.equal(await P.stop(), 0);
  P = await startServer(['--ledger-close-ms', '0', '--state', file]);
  try {
    assert.equal((await get(P, '/')).json.history_latest_ledger, latest);
    assert.equal((await account(P, kp.publicKey())).sequence, (BigInt(a.json.sequence) + 1n).toString());
    assert.equal(balanceOf(await account(P, dst.publicKey()), 'native'), '3.0000000');
    assert.equal((await get(P, `/transactions/${t.hash}`)).json.successful, true);
    assert.equal((await submit(P, t.b64)).status, 200, 'duplicate after restart still idempotent');
    assert.equal((await get(P, '/_admin/payments')).json.payments.length, 1);
    assert.equal((await rpcCall(P, 'getEvents', { startLedger: latest })).result.events.length, 1);
  } finally {
    await P.stop();
  }
  const other = spawn(process.execPath, [path.join(HERE, 'server.js'), '--port', '0', '--state', file, '--passphrase', Networks.PUBLIC], { stdio: 'ignore' });
  const code = await new Promise((r) => other.on('exit', r));
  assert.equal(code, 2, 'state of another network is refused');
});

test('CLI: missing --port and unknown flags exit 2', async () => {
  for (const args of [[], ['--port', '0', '--bogus']]) {
    const c = spawn(process.execPath, [path.join(HERE, 'server.js'), ...args], { stdio: 'ignore' });
    assert.equal(await new Promise((r) => c.on('exit', r)), 2);
  }
});

// ---- runner -----------------------------------------------------------------

async function main() {
  let failed = 0;
  const t0 = Date.now();
  console.log(`1..${tests.length}`);
  for (let i = 0; i < tests.length; i++) {
    const { name, fn } = tests[i];
    const t = Date.now();
    try {
      await fn();
      console.log(`ok ${i + 1} - ${name} (${Date.now() - t} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok ${i + 1} - ${name}`);
      console.log(`  # ${String(e.stack || e).split('\n').join('\n  # ')}`);
    }
  }
  console.log(`# ${tests.length - failed}/${tests.length} passed in ${Date.now() - t0} ms`);
  return failed ? 1 : 0;
}

main()
  .catch((e) => {
    console.error(e);
    return 1;
  })
  .then(async (code) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  });
