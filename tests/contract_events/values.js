// ScVals for the contract_events tests, made with @stellar/stellar-base
// (never by hand): the event shapes of Nova's contracts
// (nova-rewards-system.md §4: topics (Symbol tag, Symbol name), data a tuple
// (u32 schema_version = 1, ...fields), or a map), a value of every ScVal
// type those contracts emit, and what the indexer must store for them:
// scValToNative() with big integers as decimal strings and bytes as hex.
'use strict';
const { xdr, nativeToScVal, Address, StrKey, scValToNative } = require('@stellar/stellar-base');
const crypto = require('crypto');

const sym = (s) => xdr.ScVal.scvSymbol(s);
const u32 = (n) => nativeToScVal(n, { type: 'u32' });
const i32 = (n) => nativeToScVal(n, { type: 'i32' });
const int = (type, v) => nativeToScVal(BigInt(v), { type });
const addr = (a) => Address.fromString(a).toScVal();
const str = (s) => xdr.ScVal.scvString(s);
const bytes = (hex) => xdr.ScVal.scvBytes(Buffer.from(hex, 'hex'));
const vec = (items) => xdr.ScVal.scvVec(items);
const map = (entries) => xdr.ScVal.scvMap(entries.map(([key, val]) => new xdr.ScMapEntry({ key, val })));
const b64 = (v) => v.toXDR('base64');

// Deterministic ids: a contract or an account from a label.
const digest = (label) => crypto.createHash('sha256').update(label).digest();
const contractId = (label) => StrKey.encodeContract(digest(label));
const accountId = (label) => StrKey.encodeEd25519PublicKey(digest(label));

// mulberry32: the same events for the same seed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A big integer of the type's range, sometimes at its edges.
function bigOf(rnd, type) {
  const bits = { u64: 64n, i64: 64n, u128: 128n, i128: 128n, u256: 256n, i256: 256n }[type];
  const signed = type[0] === 'i';
  const edge = rnd();
  if (edge < 0.05) return signed ? -(1n << (bits - 1n)) : (1n << bits) - 1n;
  if (edge < 0.1) return signed ? (1n << (bits - 1n)) - 1n : 0n;
  let v = 0n;
  for (let i = 0n; i < bits; i += 32n) v = (v << 32n) | BigInt(Math.floor(rnd() * 4294967296));
  v &= (1n << (signed ? bits - 1n : bits)) - 1n;
  if (rnd() < 0.5) v >>= BigInt(Math.floor(rnd() * Number(bits))); // small ones too
  return signed && rnd() < 0.3 ? -v : v;
}

// Nova's event families with their data tuples (tag, name, data).
const SHAPES = [
  (r, who) => ['nova_rwd', 'staked', vec([u32(1), addr(who), int('i128', bigOf(r, 'i128')), int('u64', bigOf(r, 'u64'))])],
  (r, who) => ['nova_rwd', 'unstaked', vec([u32(1), addr(who), int('i128', bigOf(r, 'i128')), int('i128', bigOf(r, 'i128')), int('u64', bigOf(r, 'u64'))])],
  (r, who) => ['nova_tok', 'transfer', vec([u32(1), addr(who), addr(accountId(`to-${Math.floor(r() * 50)}`)), int('i128', bigOf(r, 'i128'))])],
  (r, who) => ['nova_tok', 'mint', vec([u32(1), addr(who), int('i128', bigOf(r, 'i128'))])],
  (r) => ['camp', 'created', vec([u32(1), int('u64', bigOf(r, 'u64')), addr(accountId('merchant')), str(`campaign ${Math.floor(r() * 1000)}`), int('i128', bigOf(r, 'i128'))])],
  (r, who) => ['dist', 'claimed', vec([u32(1), addr(who), int('i128', bigOf(r, 'i128')), u32(Math.floor(r() * 4294967296))])],
  (r, who) => ['gov', 'voted', vec([u32(1), addr(who), int('u64', bigOf(r, 'u64')), xdr.ScVal.scvBool(r() < 0.5), int('i128', bigOf(r, 'i128'))])],
  (r, who) => ['adm_roles', 'granted', vec([u32(1), sym('minter'), addr(who)])],
  (r) => ['escrow', 'released', vec([u32(1), int('u64', bigOf(r, 'u64')), addr(contractId('escrow-to')), int('i128', bigOf(r, 'i128')), int('timepoint', BigInt(1735689600 + Math.floor(r() * 1e6)))])],
  (r) => ['state', 'snap', vec([u32(1), bytes(digest(`snap-${r()}`).toString('hex')), u32(Math.floor(r() * 1e6))])],
  // the #[contractevent] form: data is a map
  (r) => ['nova_rwd', 'rate_set', map([[sym('rate'), int('i128', bigOf(r, 'i128'))], [sym('schema_version'), u32(1)]])],
];

// One event of a random family: {topic: [b64...], value: b64}.
function novaEvent(rnd) {
  const who = accountId(`user-${Math.floor(rnd() * 200)}`);
  const [tag, name, data] = SHAPES[Math.floor(rnd() * SHAPES.length)](rnd, who);
  return { topic: [b64(sym(tag)), b64(sym(name))], value: b64(data) };
}

// A value of every ScVal type the contracts emit (and the others an event
// can carry), each as its own event's data.
function everyType() {
  const G = accountId('values-g');
  const C = contractId('values-c');
  return [
    ['bool', xdr.ScVal.scvBool(true)],
    ['void', xdr.ScVal.scvVoid()],
    ['u32', u32(4294967295)],
    ['i32', i32(-2147483648)],
    ['u64', int('u64', (1n << 64n) - 1n)],
    ['i64', int('i64', -(1n << 63n))],
    ['u128', int('u128', (1n << 128n) - 1n)],
    ['i128_min', int('i128', -(1n << 127n))],
    ['i128', int('i128', 125000000n)],
    ['u256', int('u256', (1n << 256n) - 1n)],
    ['i256', int('i256', -(1n << 255n))],
    ['timepoint', int('timepoint', 1735689600n)],
    ['duration', int('duration', 86400n)],
    ['bytes', bytes('00ba33ff')],
    ['bytes_empty', bytes('')],
    ['string', str('Nova — réward ✓')],
    ['string_not_utf8', xdr.ScVal.scvString(Buffer.from([0x61, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x62]))],
    ['symbol', sym('nova_rwd')],
    ['address_account', addr(G)],
    ['address_contract', addr(C)],
    ['vec', vec([u32(1), addr(G), int('i128', -5n), int('u64', 7n)])],
    ['vec_empty', vec([])],
    ['map', map([[sym('amount'), int('i128', 5n)], [sym('to'), addr(G)], [sym('when'), int('timepoint', 1n)]])],
    ['map_keys', map([[u32(1), xdr.ScVal.scvBool(true)], [str('s'), xdr.ScVal.scvVoid()], [bytes('6869'), bytes('00ff')]])],
    ['nested', vec([map([[sym('inner'), vec([int('u128', 1n << 100n), xdr.ScVal.scvBool(false)])]]), vec([])])],
    ['error_contract', xdr.ScVal.scvError(xdr.ScError.sceContract(7))],
    ['error_budget', xdr.ScVal.scvError(xdr.ScError.sceBudget(xdr.ScErrorCode.scecExceededLimit()))],
  ];
}

// What the indexer must store for a base64 ScVal: scValToNative(), big
// integers as decimal strings, bytes as lower-case hex.
function expected(valueB64) {
  const conv = (v) => {
    if (typeof v === 'bigint') return v.toString();
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (Array.isArray(v)) return v.map(conv);
    if (v && typeof v === 'object') {
      const o = {};
      for (const [k, x] of Object.entries(v)) o[k] = conv(x);
      return o;
    }
    return v;
  };
  return conv(scValToNative(xdr.ScVal.fromXDR(valueB64, 'base64')));
}

// JSON text with sorted keys (jsonb reorders them).
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

module.exports = { prng, novaEvent, everyType, expected, canon, contractId, accountId, b64, sym };
