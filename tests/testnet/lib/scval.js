'use strict';
// ScVal values for contract events, given by tests as small typed JSON and
// encoded with @stellar/stellar-base (never by hand), so the bytes the C
// indexer decodes come from an independent encoder.
//
// Accepted forms (one key per object):
//   "AAAADwAAAARtaW50"            a string: already a base64 ScVal XDR (validated)
//   {"symbol":"mint"}  {"string":"hello"}  {"bytes":"00ff"} (hex)
//   {"bool":true}  {"void":null}
//   {"u32":42} {"i32":-1} {"u64":"1000"} {"i64":"-3"} {"u128":"1"} {"i128":"125000000"}
//   {"u256":"..."} {"i256":"..."} {"timepoint":"1735689600"} {"duration":"60"}
//   {"address":"G...|C..."}
//   {"vec":[<scval>, ...]}
//   {"map":[[<key scval>, <val scval>], ...]}  or  {"map":{"amount":<scval>,...}} (Symbol keys)

const { xdr, nativeToScVal, Address } = require('@stellar/stellar-base');

const INT_TYPES = new Set(['u32', 'i32', 'u64', 'i64', 'u128', 'i128', 'u256', 'i256', 'timepoint', 'duration']);

function toScVal(spec, where = 'scval') {
  if (typeof spec === 'string') {
    let v;
    try {
      v = xdr.ScVal.fromXDR(spec, 'base64');
    } catch (e) {
      throw new Error(`${where}: not a base64 ScVal XDR: ${e.message}`);
    }
    if (v.toXDR('base64') !== spec) throw new Error(`${where}: base64 ScVal is not canonical`);
    return v;
  }
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new Error(`${where}: expected a base64 string or an object like {"symbol":"mint"}`);
  }
  const keys = Object.keys(spec);
  if (keys.length !== 1) throw new Error(`${where}: expected exactly one type key, got ${JSON.stringify(keys)}`);
  const type = keys[0];
  const val = spec[type];
  try {
    if (INT_TYPES.has(type)) {
      const big = BigInt(val);
      if (type === 'u32' || type === 'i32') return nativeToScVal(Number(big), { type });
      return nativeToScVal(big, { type });
    }
    switch (type) {
      case 'symbol':
        if (typeof val !== 'string' || !/^[A-Za-z0-9_]{0,32}$/.test(val)) throw new Error('symbol must match [A-Za-z0-9_]{0,32}');
        return xdr.ScVal.scvSymbol(val);
      case 'string':
        if (typeof val !== 'string') throw new Error('string must be a string');
        return xdr.ScVal.scvString(val);
      case 'bytes':
        if (typeof val !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(val)) throw new Error('bytes must be hex');
        return xdr.ScVal.scvBytes(Buffer.from(val, 'hex'));
      case 'bool':
        if (typeof val !== 'boolean') throw new Error('bool must be true or false');
        return xdr.ScVal.scvBool(val);
      case 'void':
        return xdr.ScVal.scvVoid();
      case 'address':
        return Address.fromString(val).toScVal();
      case 'vec':
        if (!Array.isArray(val)) throw new Error('vec must be an array');
        return xdr.ScVal.scvVec(val.map((e, i) => toScVal(e, `${where}.vec[${i}]`)));
      case 'map': {
        const pairs = Array.isArray(val)
          ? val.map((p, i) => {
              if (!Array.isArray(p) || p.length !== 2) throw new Error(`map[${i}] must be [key, value]`);
              return [toScVal(p[0], `${where}.map[${i}].key`), toScVal(p[1], `${where}.map[${i}].val`)];
            })
          : Object.keys(val)
              .sort()
              .map((k) => [xdr.ScVal.scvSymbol(k), toScVal(val[k], `${where}.map.${k}`)]);
        return xdr.ScVal.scvMap(pairs.map(([key, v]) => new xdr.ScMapEntry({ key, val: v })));
      }
      default:
        throw new Error(`unknown ScVal type "${type}"`);
    }
  } catch (e) {
    if (e.message.startsWith(where)) throw e;
    throw new Error(`${where}: ${e.message}`);
  }
}

function toScValB64(spec, where) {
  return toScVal(spec, where).toXDR('base64');
}

module.exports = { toScVal, toScValB64 };
