// Cross-check of nova-worker's offline Stellar code against @stellar/stellar-base.
//
// Generates random cases (seeded: NOVA_INTEROP_SEED reproduces a run),
// computes the expected answers with stellar-base, feeds the cases to our C
// program (argv[2], JSON lines on stdin) and compares byte for byte.
// Exits 1 on any mismatch, printing the case.
//
// Usage: node interop.mjs PATH/TO/stellar-interop [rounds]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sb = require('@stellar/stellar-base');
const { xdr, StrKey, Keypair, Account, MuxedAccount, Asset, Memo, Operation } = sb;
const { TransactionBuilder, Transaction } = sb;

// Only the version pinned in package.json counts as the reference.
{
  const { readFileSync } = await import('node:fs');
  const pinned = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).dependencies['@stellar/stellar-base'];
  const loaded = require('@stellar/stellar-base/package.json').version;
  if (loaded !== pinned) {
    console.error(`FAIL: @stellar/stellar-base ${loaded} was loaded, ${pinned} is pinned (npm ci --prefix tests/stellar)`);
    process.exit(1);
  }
}

const program = process.argv[2];
const rounds = Number(process.argv[3] || process.env.NOVA_INTEROP_ROUNDS || 1);
if (!program) {
  console.error('usage: node interop.mjs PROGRAM [rounds]');
  process.exit(2);
}
const seed = process.env.NOVA_INTEROP_SEED
  ? Number(process.env.NOVA_INTEROP_SEED)
  : randomBytes(4).readUInt32BE(0);

// sfc32: small, seedable, good enough to pick test cases.
let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
function rnd32() {
  a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
  const t = (a + b) | 0;
  a = b ^ (b >>> 9);
  b = (c + (c << 3)) | 0;
  c = (c << 21) | (c >>> 11);
  d = (d + 1) | 0;
  const r = (t + d) | 0;
  c = (c + r) | 0;
  return r >>> 0;
}
for (let i = 0; i < 16; i++) rnd32();
const int = (n) => rnd32() % n; // 0..n-1
const chance = (p) => rnd32() / 4294967296 < p;
const pick = (arr) => arr[int(arr.length)];
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(256)));
const u64 = () => (BigInt(rnd32()) << 32n) | BigInt(rnd32());
function bigBelow(max) { // 0 <= v < max, for max <= 2^64, roughly uniform in magnitude
  const bits = BigInt(1 + int(64));
  let v = u64() & ((1n << bits) - 1n);
  return v % max;
}
const INT64_MAX = (1n << 63n) - 1n;
const U64BE = (v) => { const buf = Buffer.alloc(8); buf.writeBigUInt64BE(v); return buf; };

const PASSPHRASES = [
  'Test SDF Network ; September 2015',
  'Public Global Stellar Network ; September 2015',
  'Standalone Network ; February 2017',
  'Test SDF Future Network ; October 2022',
];

const account = () => StrKey.encodeEd25519PublicKey(bytes(32));
const muxed = () => StrKey.encodeMed25519PublicKey(Buffer.concat([bytes(32), U64BE(u64())]));
const gOrM = () => (chance(0.3) ? muxed() : account());

function stroopsRandom() {
  const r = int(10);
  if (r === 0) return 1n;
  if (r === 1) return INT64_MAX;
  if (r < 5) return 1n + bigBelow(10n ** 10n);
  return 1n + bigBelow(INT64_MAX);
}
function decimal(stroops, trim) {
  const units = stroops / 10000000n, frac = (stroops % 10000000n).toString().padStart(7, '0');
  if (!trim) return `${units}.${frac}`;
  const f = frac.replace(/0+$/, '');
  return f ? `${units}.${f}` : `${units}`;
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const assetCode = (min, max) =>
  Array.from({ length: min + int(max - min + 1) }, () => pick(ALNUM)).join('');
function assetRandom() {
  const r = int(4);
  if (r === 0) return { text: 'native', sb: Asset.native() };
  const code = r === 1 ? 'NOVA' : r === 2 ? assetCode(1, 4) : assetCode(5, 12);
  const issuer = account();
  return { text: `${code}:${issuer}`, sb: new Asset(code, issuer) };
}
function memoRandom() {
  switch (int(6)) {
    case 0: return { c: { type: 'none' }, sb: Memo.none() };
    case 1: case 2: {
      const len = int(29);
      let s = Array.from({ length: len }, () => String.fromCharCode(32 + int(95))).join('');
      if (chance(0.3)) { // multi-byte UTF-8, still at most 28 bytes
        s = 'nova-é-✓-'.slice(0, 1 + int(9));
      }
      return { c: { type: 'text', value: s }, sb: Memo.text(s) };
    }
    case 3: {
      const v = chance(0.2) ? (1n << 64n) - 1n : u64();
      return { c: { type: 'id', value: v.toString() }, sb: Memo.id(v.toString()) };
    }
    case 4: {
      const h = bytes(32);
      return { c: { type: 'hash', value: h.toString('hex') }, sb: Memo.hash(h) };
    }
    default: {
      const h = bytes(32);
      return { c: { type: 'return', value: h.toString('hex') }, sb: Memo.return(h) };
    }
  }
}

// ---- transactions -------------------------------------------------------

function txCase() {
  const passphrase = pick(PASSPHRASES);
  const nops = chance(0.1) ? 100 : chance(0.5) ? 1 + int(3) : 1 + int(100);
  const baseFee = 100 + int(9901);
  const seq = 1n + bigBelow(INT64_MAX - 1n);
  const sourceKey = account();
  const muxSource = chance(0.25) ? u64() : null;
  const source = muxSource === null
    ? sourceKey
    : StrKey.encodeMed25519PublicKey(Buffer.concat([StrKey.decodeEd25519PublicKey(sourceKey), U64BE(muxSource)]));
  const memo = memoRandom();
  const sharedAsset = assetRandom();
  const ops = [];
  for (let i = 0; i < nops; i++) {
    const asset = chance(0.7) ? sharedAsset : assetRandom();
    const amount = decimal(stroopsRandom(), chance(0.7));
    const opSource = chance(0.3) ? gOrM() : null;
    ops.push({ dest: gOrM(), asset: asset.text, amount, source: opSource, sbAsset: asset.sb });
  }
  let timebounds = null;
  const tbKind = int(4);
  if (tbKind > 0) {
    const min = tbKind === 1 ? 0 : int(2 ** 31);
    const max = tbKind === 3 ? 0 : min + int(2 ** 30);
    timebounds = { min, max };
  }
  const seeds = Array.from({ length: 1 + (chance(0.3) ? int(3) : 0) }, () => bytes(32));

  const sbOps = ops.map((o) => Operation.payment({
    destination: o.dest, asset: o.sbAsset, amount: o.amount, ...(o.source ? { source: o.source } : {}),
  }));
  let tx;
  if (timebounds) {
    // The high-level builder: account sequence + 1, fee = base fee x ops.
    const acc = new Account(sourceKey, (seq - 1n).toString());
    const src = muxSource === null ? acc : new MuxedAccount(acc, muxSource.toString());
    const builder = new TransactionBuilder(src, {
      fee: String(baseFee), networkPassphrase: passphrase, memo: memo.sb,
      timebounds: { minTime: timebounds.min, maxTime: timebounds.max },
    });
    sbOps.forEach((op) => builder.addOperation(op));
    tx = builder.build();
  } else {
    // PRECOND_NONE is not reachable through the builder: assemble the XDR.
    const raw = new xdr.Transaction({
      sourceAccount: sb.decodeAddressToMuxedAccount(source),
      fee: baseFee * nops,
      seqNum: xdr.SequenceNumber.fromString(seq.toString()),
      cond: xdr.Preconditions.precondNone(),
      memo: memo.sb.toXDRObject(),
      operations: sbOps,
      ext: new xdr.TransactionExt(0),
    });
    const env = xdr.TransactionEnvelope.envelopeTypeTx(new xdr.TransactionV1Envelope({ tx: raw, signatures: [] }));
    tx = new Transaction(env, passphrase);
  }
  seeds.forEach((s) => tx.sign(Keypair.fromRawEd25519Seed(s)));
  const input = {
    kind: 'tx', passphrase, source, fee: String(baseFee * nops), seq: seq.toString(),
    timebounds: timebounds && { min: String(timebounds.min), max: String(timebounds.max) },
    memo: memo.c, ops: ops.map(({ dest, asset, amount, source: s }) => ({ dest, asset, amount, ...(s ? { source: s } : {}) })),
    seeds: seeds.map((s) => s.toString('hex')),
  };
  const envelope = tx.toEnvelope().toXDR('base64');
  const expect = { ok: true, tx_xdr: tx.tx.toXDR('base64'), hash: tx.hash().toString('hex'), envelope };
  if (timebounds && timebounds.max !== 0) {
    expect.public_envelope = envelope;
    expect.public_hash = expect.hash;
  }
  // Decoding stellar-base's envelope: same hash, signatures hint||signature.
  const sigs = tx.signatures.map((sg) => Buffer.concat([sg.hint(), sg.signature()]).toString('hex'));
  const decode = { input: { kind: 'envelope', b64: envelope, passphrase }, expect: { ok: true, hash: expect.hash, signatures: sigs } };
  // A mutated copy: whatever we accept, stellar-base must decode to the same hash.
  const bad = mutateBytes(Buffer.from(envelope, 'base64'));
  let mexpect = { ok: false };
  try {
    const e = xdr.TransactionEnvelope.fromXDR(bad.toString('base64'), 'base64');
    const t = new Transaction(e, passphrase);
    mexpect = { ok: true, hash: t.hash().toString('hex'), signatures: t.signatures.map((sg) => Buffer.concat([sg.hint(), sg.signature()]).toString('hex')) };
  } catch { mexpect = { ok: false }; }
  const mutated = { input: { kind: 'envelope', b64: bad.toString('base64'), passphrase }, expect: mexpect, lenient: true, subset: true };
  return [{ input, expect }, decode, mutated];
}

// ---- StrKeys --------------------------------------------------------------

const KINDS = {
  G: { enc: (p) => StrKey.encodeEd25519PublicKey(p), valid: (s) => StrKey.isValidEd25519PublicKey(s), dec: (s) => StrKey.decodeEd25519PublicKey(s), len: 32 },
  S: { enc: (p) => StrKey.encodeEd25519SecretSeed(p), valid: (s) => StrKey.isValidEd25519SecretSeed(s), dec: (s) => StrKey.decodeEd25519SecretSeed(s), len: 32 },
  M: { enc: (p) => StrKey.encodeMed25519PublicKey(p), valid: (s) => StrKey.isValidMed25519PublicKey(s), dec: (s) => StrKey.decodeMed25519PublicKey(s), len: 40 },
  C: { enc: (p) => StrKey.encodeContract(p), valid: (s) => StrKey.isValidContract(s), dec: (s) => StrKey.decodeContract(s), len: 32 },
};
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function mutate(s) {
  const i = int(s.length);
  switch (int(7)) {
    case 0: return s.slice(0, i) + pick(B32) + s.slice(i + 1); // substitute
    case 1: return s.slice(0, i) + s.slice(i + 1); // delete
    case 2: return s.slice(0, i) + pick(B32) + s.slice(i); // insert
    case 3: return s.toLowerCase();
    case 4: return `${s}=`;
    case 5: return pick(Object.keys(KINDS)) + s.slice(1); // other kind letter
    default: { // swap two neighbours
      if (i + 1 >= s.length) return s.slice(1);
      return s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2);
    }
  }
}

function strkeyCases() {
  const out = [];
  const type = pick(Object.keys(KINDS));
  const k = KINDS[type];
  const payload = bytes(k.len);
  const text = k.enc(payload);
  out.push({ input: { kind: 'strkey_encode', type, hex: payload.toString('hex') }, expect: { strkey: text } });
  out.push({ input: { kind: 'strkey_decode', type, strkey: text }, expect: { ok: true, hex: payload.toString('hex') } });
  const bad = mutate(text);
  const valid = k.valid(bad);
  out.push({
    input: { kind: 'strkey_decode', type, strkey: bad },
    expect: valid ? { ok: true, hex: Buffer.from(k.dec(bad)).toString('hex') } : { ok: false },
  });
  return out;
}

// ---- amounts -------------------------------------------------------------

function amountCases() {
  const out = [];
  const s = int(5) === 0 ? 0n : stroopsRandom();
  // Expected text from stellar-base decoding a PaymentOp amount.
  const op = new xdr.Operation({
    sourceAccount: null,
    body: xdr.OperationBody.payment(new xdr.PaymentOp({
      destination: sb.decodeAddressToMuxedAccount(account()), asset: Asset.native().toXDRObject(),
      amount: xdr.Int64.fromString(s.toString()),
    })),
  });
  out.push({ input: { kind: 'amount_format', stroops: s.toString() }, expect: { text: Operation.fromXDRObject(op).amount } });
  if (s > 0n) {
    const text = decimal(s, chance(0.5));
    if (!Operation.isValidAmount(text)) throw new Error(`stellar-base rejects ${text}`);
    // stellar-base's own conversion of the same text.
    const built = Operation.payment({ destination: account(), asset: Asset.native(), amount: text });
    out.push({ input: { kind: 'amount_parse', text }, expect: { ok: true, stroops: built.body().paymentOp().amount().toString() } });
  }
  // Text both sides must reject (stellar-base is laxer on some spellings
  // we refuse on purpose - "+1", ".5", "1e3", "1.00000000" - so those are
  // covered by the unit tests, not here).
  const bad = pick(['0', '0.0000000', `-${decimal(stroopsRandom(), true)}`, '922337203685.4775808',
    `${int(1000)}.${String(1 + int(9)).padStart(8, '1')}`, 'abc', '', `${int(100)}.5x`, '1..2']);
  if (Operation.isValidAmount(bad)) throw new Error(`stellar-base accepts ${bad}`);
  out.push({ input: { kind: 'amount_parse', text: bad }, expect: { ok: false } });
  return out;
}

// ---- ScVals --------------------------------------------------------------

const SYMCHARS = `${ALNUM}_`;
function scvalRandom(depth) {
  const kinds = ['bool', 'void', 'u32', 'i32', 'u64', 'i64', 'timepoint', 'duration', 'u128', 'i128',
    'u256', 'i256', 'bytes', 'string', 'symbol', 'address', 'error'];
  if (depth < 4) kinds.push('vec', 'map', 'vec', 'map');
  const k = pick(kinds);
  const i64 = () => BigInt.asIntN(64, u64());
  switch (k) {
    case 'bool': return xdr.ScVal.scvBool(chance(0.5));
    case 'void': return xdr.ScVal.scvVoid();
    case 'u32': return xdr.ScVal.scvU32(pick([0, 1, 4294967295, rnd32()]));
    case 'i32': return xdr.ScVal.scvI32(pick([0, -1, -2147483648, 2147483647, rnd32() | 0]));
    case 'u64': return xdr.ScVal.scvU64(xdr.Uint64.fromString(pick([0n, (1n << 64n) - 1n, u64()]).toString()));
    case 'i64': return xdr.ScVal.scvI64(xdr.Int64.fromString(pick([0n, INT64_MAX, -(1n << 63n), i64()]).toString()));
    case 'timepoint': return xdr.ScVal.scvTimepoint(xdr.Uint64.fromString(u64().toString()));
    case 'duration': return xdr.ScVal.scvDuration(xdr.Uint64.fromString(u64().toString()));
    case 'u128': {
      const [hi, lo] = pick([[0n, 0n], [(1n << 64n) - 1n, (1n << 64n) - 1n], [u64(), u64()], [0n, u64()]]);
      return xdr.ScVal.scvU128(new xdr.UInt128Parts({ hi: xdr.Uint64.fromString(hi.toString()), lo: xdr.Uint64.fromString(lo.toString()) }));
    }
    case 'i128': {
      const [hi, lo] = pick([[-(1n << 63n), 0n], [INT64_MAX, (1n << 64n) - 1n], [-1n, (1n << 64n) - 5n], [i64(), u64()], [0n, u64()]]);
      return xdr.ScVal.scvI128(new xdr.Int128Parts({ hi: xdr.Int64.fromString(hi.toString()), lo: xdr.Uint64.fromString(lo.toString()) }));
    }
    case 'u256': case 'i256': {
      const w = [u64(), u64(), u64(), u64()];
      if (chance(0.3)) w[0] = k === 'i256' ? (1n << 63n) : (1n << 64n) - 1n;
      const parts = {
        hiHi: k === 'i256' ? xdr.Int64.fromString(BigInt.asIntN(64, w[0]).toString()) : xdr.Uint64.fromString(w[0].toString()),
        hiLo: xdr.Uint64.fromString(w[1].toString()), loHi: xdr.Uint64.fromString(w[2].toString()), loLo: xdr.Uint64.fromString(w[3].toString()),
      };
      return k === 'i256' ? xdr.ScVal.scvI256(new xdr.Int256Parts(parts)) : xdr.ScVal.scvU256(new xdr.UInt256Parts(parts));
    }
    case 'bytes': return xdr.ScVal.scvBytes(bytes(int(70)));
    case 'string': {
      const r = int(3);
      if (r === 0) return xdr.ScVal.scvString(bytes(int(20))); // arbitrary bytes
      if (r === 1) return xdr.ScVal.scvString(Buffer.from('héllo ✓ nova 🚀'.slice(0, int(16)), 'utf8'));
      return xdr.ScVal.scvString(Buffer.from(Array.from({ length: int(40) }, () => String.fromCharCode(32 + int(95))).join('')));
    }
    case 'symbol': return xdr.ScVal.scvSymbol(Array.from({ length: int(33) }, () => pick(SYMCHARS)).join(''));
    case 'address': {
      switch (int(5)) {
        case 0: return xdr.ScVal.scvAddress(xdr.ScAddress.scAddressTypeAccount(xdr.PublicKey.publicKeyTypeEd25519(bytes(32))));
        case 1: return xdr.ScVal.scvAddress(xdr.ScAddress.scAddressTypeContract(bytes(32)));
        case 2: return xdr.ScVal.scvAddress(xdr.ScAddress.scAddressTypeMuxedAccount(new xdr.MuxedEd25519Account({ id: xdr.Uint64.fromString(u64().toString()), ed25519: bytes(32) })));
        case 3: return xdr.ScVal.scvAddress(xdr.ScAddress.scAddressTypeClaimableBalance(xdr.ClaimableBalanceId.claimableBalanceIdTypeV0(bytes(32))));
        default: return xdr.ScVal.scvAddress(xdr.ScAddress.scAddressTypeLiquidityPool(bytes(32)));
      }
    }
    case 'error': {
      if (chance(0.5)) return xdr.ScVal.scvError(xdr.ScError.sceContract(rnd32()));
      const t = pick(xdr.ScErrorType.values().filter((v) => v.name !== 'sceContract'));
      const code = pick(xdr.ScErrorCode.values());
      return xdr.ScVal.scvError(xdr.ScError[t.name](code));
    }
    case 'vec': return xdr.ScVal.scvVec(chance(0.1) ? null : Array.from({ length: int(5) }, () => scvalRandom(depth + 1)));
    default: return xdr.ScVal.scvMap(chance(0.1) ? null : Array.from({ length: int(4) }, () => new xdr.ScMapEntry({ key: scvalRandom(depth + 1), val: scvalRandom(depth + 1) })));
  }
}

const snake = (camel) => camel.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
function validUtf8NoNul(buf) {
  if (buf.includes(0)) return false;
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); return true; } catch { return false; }
}
const big128 = (hi, lo) => (BigInt(hi.toString()) << 64n) | BigInt(lo.toString());

// Our documented JSON form, derived independently from stellar-base's objects.
function scvalJson(v) {
  const arm = v.switch().name;
  switch (arm) {
    case 'scvBool': return { bool: v.b() };
    case 'scvVoid': return { void: null };
    case 'scvU32': return { u32: v.u32() };
    case 'scvI32': return { i32: v.i32() };
    case 'scvU64': return { u64: v.u64().toString() };
    case 'scvI64': return { i64: v.i64().toString() };
    case 'scvTimepoint': return { timepoint: v.timepoint().toString() };
    case 'scvDuration': return { duration: v.duration().toString() };
    case 'scvU128': return { u128: big128(v.u128().hi(), v.u128().lo()).toString() };
    case 'scvI128': return { i128: BigInt.asIntN(128, big128(v.i128().hi(), v.i128().lo())).toString() };
    case 'scvU256': case 'scvI256': {
      const p = arm === 'scvU256' ? v.u256() : v.i256();
      const n = [p.hiHi(), p.hiLo(), p.loHi(), p.loLo()].reduce((acc, w) => (acc << 64n) | BigInt.asUintN(64, BigInt(w.toString())), 0n);
      return arm === 'scvU256' ? { u256: n.toString() } : { i256: BigInt.asIntN(256, n).toString() };
    }
    case 'scvBytes': return { bytes: Buffer.from(v.bytes()).toString('hex') };
    case 'scvString': {
      const buf = Buffer.from(v.str());
      return validUtf8NoNul(buf) ? { string: buf.toString('utf8') } : { string_hex: buf.toString('hex') };
    }
    case 'scvSymbol': return { symbol: Buffer.from(v.sym()).toString('latin1') };
    case 'scvVec': return { vec: v.vec() == null ? null : v.vec().map(scvalJson) };
    case 'scvMap': return { map: v.map() == null ? null : v.map().map((e) => ({ key: scvalJson(e.key()), val: scvalJson(e.val()) })) };
    case 'scvError': {
      const e = v.error();
      const t = e.switch().name.replace(/^sce/, '');
      if (e.switch().name === 'sceContract') return { error: { contract: e.contractCode() } };
      return { error: { [snake(t[0].toLowerCase() + t.slice(1))]: snake(e.code().name.replace(/^scec/, '').replace(/^./, (m) => m.toLowerCase())) } };
    }
    case 'scvAddress': {
      const a = v.address();
      switch (a.switch().name) {
        case 'scAddressTypeAccount': return { address: StrKey.encodeEd25519PublicKey(a.accountId().ed25519()) };
        case 'scAddressTypeContract': return { address: StrKey.encodeContract(a.contractId()) };
        case 'scAddressTypeMuxedAccount': {
          const m = a.muxedAccount();
          return { address: StrKey.encodeMed25519PublicKey(Buffer.concat([m.ed25519(), U64BE(BigInt(m.id().toString()))])) };
        }
        case 'scAddressTypeClaimableBalance':
          return { address: StrKey.encodeClaimableBalance(Buffer.concat([Buffer.from([0]), a.claimableBalanceId().v0()])) };
        default: return { address: StrKey.encodeLiquidityPool(a.liquidityPoolId()) };
      }
    }
    default: throw new Error(`unsupported ${arm}`);
  }
}

// Mutations of valid XDR: one flipped byte, a truncation, or extra bytes.
function mutateBytes(buf) {
  const b = Buffer.from(buf);
  switch (int(4)) {
    case 0: if (b.length) b[int(b.length)] ^= 1 << int(8); return b;
    case 1: if (b.length) b[int(b.length)] = int(256); return b;
    case 2: return b.subarray(0, int(b.length));
    default: return Buffer.concat([b, bytes(1 + int(8))]);
  }
}

// What C may refuse although stellar-base decodes it (deliberately stricter).
const STRICTER = [/symbol has a character outside/, /unsupported ScVal type/, /nesting deeper/,
  /not supported \(only payments\)/, /operation results \(max 100\)/];

function scvalCases() {
  const v = scvalRandom(0);
  const b64 = v.toXDR('base64');
  const cases = [{ input: { kind: 'scval', b64 }, expect: { ok: true, json: scvalJson(v) } }];
  const bad = mutateBytes(v.toXDR());
  // Decode from base64 (what we receive): js-xdr misreads Buffers that are
  // views into Node's shared pool.
  let parsed = null;
  try { parsed = xdr.ScVal.fromXDR(bad.toString('base64'), 'base64'); } catch { parsed = null; }
  let expect = { ok: false };
  if (parsed) {
    try {
      expect = { ok: true, json: scvalJson(parsed) };
    } catch (e) {
      // Types 19-21 (contract instance, ledger keys) have no JSON form here:
      // we must refuse them too.
      if (!/^unsupported scv(ContractInstance|LedgerKeyContractInstance|LedgerKeyNonce)$/.test(e.message)) throw e;
    }
  }
  cases.push({ input: { kind: 'scval', b64: bad.toString('base64') }, expect, lenient: true });
  return cases;
}

// ---- TransactionResult ---------------------------------------------------

const TX_NAME_FIX = { tx_no_account: 'tx_no_source_account', tx_bad_min_seq_age_or_gap: 'tx_bad_minseq_age_or_gap' };
const OP_NAME_FIX = { op_no_account: 'op_no_source_account' };
const txName = (n) => { const s = snake(n); return TX_NAME_FIX[s] || s; };
function opName(r) {
  if (r.switch().name !== 'opInner') { const s = snake(r.switch().name); return OP_NAME_FIX[s] || s; }
  if (r.tr().switch().name !== 'payment') throw new Error('non-payment operation result');
  return `op_${snake(r.tr().paymentResult().switch().name.replace(/^payment/, '').replace(/^./, (m) => m.toLowerCase()))}`;
}
function opResultsRandom() {
  return Array.from({ length: int(6) === 0 ? 100 : int(5) }, () => {
    if (chance(0.15)) {
      const c = pick(xdr.OperationResultCode.values().filter((x) => x.name !== 'opInner'));
      return xdr.OperationResult[c.name]();
    }
    const pc = pick(xdr.PaymentResultCode.values());
    return xdr.OperationResult.opInner(xdr.OperationResultTr.payment(xdr.PaymentResult[pc.name]()));
  });
}
function resultRandom() {
  const codes = xdr.TransactionResultCode.values();
  const code = chance(0.5) ? pick(codes.filter((x) => x.value === 0 || x.value === -1)) : pick(codes);
  const fee = xdr.Int64.fromString(bigBelow(INT64_MAX).toString());
  let result;
  if (code.value === 0 || code.value === -1) {
    result = xdr.TransactionResultResult[code.name](opResultsRandom());
  } else if (code.value === 1 || code.value === -13) {
    const inner = pick(codes.filter((x) => x.value !== 1 && x.value !== -13));
    const innerResult = inner.value === 0 || inner.value === -1
      ? xdr.InnerTransactionResultResult[inner.name](opResultsRandom())
      : xdr.InnerTransactionResultResult[inner.name]();
    result = xdr.TransactionResultResult[code.name](new xdr.InnerTransactionResultPair({
      transactionHash: bytes(32),
      result: new xdr.InnerTransactionResult({ feeCharged: xdr.Int64.fromString(bigBelow(INT64_MAX).toString()), result: innerResult, ext: new xdr.InnerTransactionResultExt(0) }),
    }));
  } else {
    result = xdr.TransactionResultResult[code.name]();
  }
  return new xdr.TransactionResult({ feeCharged: fee, result, ext: new xdr.TransactionResultExt(0) });
}
function resultJson(r) {
  const out = { ok: true, fee_charged: r.feeCharged().toString(), transaction: txName(r.result().switch().name) };
  let ops = [];
  const arm = r.result().switch().value;
  if (arm === 0 || arm === -1) ops = r.result().results();
  if (arm === 1 || arm === -13) {
    const pair = r.result().innerResultPair();
    const inner = pair.result();
    out.inner = txName(inner.result().switch().name);
    out.inner_hash = Buffer.from(pair.transactionHash()).toString('hex');
    out.inner_fee_charged = inner.feeCharged().toString();
    const iv = inner.result().switch().value;
    if (iv === 0 || iv === -1) ops = inner.result().results();
  }
  out.operations = ops.map(opName);
  return out;
}
function resultCases() {
  const r = resultRandom();
  const cases = [{ input: { kind: 'result', b64: r.toXDR('base64') }, expect: resultJson(r) }];
  const bad = mutateBytes(r.toXDR());
  let parsed = null;
  try { parsed = xdr.TransactionResult.fromXDR(bad.toString('base64'), 'base64'); } catch { parsed = null; }
  let expect = { ok: false };
  if (parsed) {
    try {
      expect = resultJson(parsed);
    } catch (e) {
      // Results of other operation types: we only decode payments and must refuse.
      if (e.message !== 'non-payment operation result') throw e;
    }
  }
  cases.push({ input: { kind: 'result', b64: bad.toString('base64') }, expect, lenient: true });
  return cases;
}

// ---- Stellar Asset Contract ids ------------------------------------------

function sacCase() {
  const asset = assetRandom();
  const passphrase = pick(PASSPHRASES);
  return { input: { kind: 'sac', asset: asset.text, passphrase }, expect: { ok: true, contract: asset.sb.contractId(passphrase) } };
}

// ---- run ------------------------------------------------------------------

const canon = (o) => JSON.stringify(o, (k, v) => (v && typeof v === 'object' && !Array.isArray(v)
  ? Object.fromEntries(Object.keys(v).sort().map((key) => [key, v[key]])) : v));

const counts = { tx: 0, envelope: 0, strkey: 0, amount: 0, scval: 0, result: 0, sac: 0, mutated: 0, stricter: 0 };
let failures = 0;
const t0 = Date.now();
for (let round = 0; round < rounds; round++) {
  const cases = [];
  for (let i = 0; i < 150; i++) { cases.push(...txCase()); counts.tx++; counts.envelope += 2; }
  for (let i = 0; i < 700; i++) { cases.push(...strkeyCases()); counts.strkey += 3; }
  for (let i = 0; i < 500; i++) { const c = amountCases(); cases.push(...c); counts.amount += c.length; }
  for (let i = 0; i < 700; i++) { cases.push(...scvalCases()); counts.scval += 2; }
  for (let i = 0; i < 400; i++) { cases.push(...resultCases()); counts.result += 2; }
  for (let i = 0; i < 100; i++) { cases.push(sacCase()); counts.sac++; }

  const proc = spawnSync(program, [], {
    input: cases.map((c) => JSON.stringify(c.input)).join('\n') + '\n',
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  if (proc.status !== 0) {
    console.error(`FAIL: ${program} exited with ${proc.status} (signal ${proc.signal})\n${proc.stderr}`);
    process.exit(1);
  }
  const lines = proc.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== cases.length) {
    console.error(`FAIL: ${cases.length} cases but ${lines.length} answers`);
    process.exit(1);
  }
  cases.forEach((c, i) => {
    const got = JSON.parse(lines[i]);
    let expect = c.expect;
    if (c.lenient) counts.mutated++;
    if (expect.ok === false) {
      // Only the verdict must match; messages are ours.
      if (got.ok !== false) { failures++; report(c, got, 'stellar-base rejects this, we accepted it'); }
      return;
    }
    // We decode only the envelopes we build (v1, payments): refusing any
    // other valid envelope is by design.
    if (c.subset && got.ok === false) {
      counts.stricter++;
      return;
    }
    if (c.lenient && got.ok === false && STRICTER.some((re) => re.test(got.error))) {
      counts.stricter++;
      return;
    }
    if (got.ok === false && c.input.kind !== 'strkey_encode' && c.input.kind !== 'amount_format') {
      failures++;
      report(c, got, 'we rejected what stellar-base accepts');
      return;
    }
    const cmp = { ...got };
    if (expect.ok === undefined) delete cmp.ok;
    if (canon(cmp) !== canon(expect)) { failures++; report(c, got, 'mismatch'); }
  });
}

function report(c, got, why) {
  if (failures > 20) return;
  console.error(`FAIL (${why}) seed=${seed}\n  case:   ${JSON.stringify(c.input).slice(0, 600)}\n  expect: ${JSON.stringify(c.expect).slice(0, 600)}\n  got:    ${JSON.stringify(got).slice(0, 600)}`);
}

const ms = Date.now() - t0;
console.log(`stellar-base ${require('@stellar/stellar-base/package.json').version} interop, seed ${seed}, ${rounds} round(s), ${ms} ms: ` +
  `${counts.tx} transactions, ${counts.envelope} envelope decodings, ${counts.strkey} strkeys, ${counts.amount} amounts, ${counts.scval} scvals, ` +
  `${counts.result} results, ${counts.sac} asset contract ids (${counts.mutated} mutated inputs, ${counts.stricter} refused by our stricter rules); ` +
  `${failures} failure(s)`);
process.exit(failures ? 1 : 0);
