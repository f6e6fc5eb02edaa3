'use strict';
// Soroban / Stellar RPC JSON-RPC methods served from the simulated network:
// getHealth, getLatestLedger, getNetwork, getEvents (shapes of stellar-rpc
// v23+, see shared/reference/stellar.md section 6).

const { StrKey, xdr } = require('@stellar/stellar-base');

const PROTOCOL_VERSION = 23;
const MAX_LIMIT = 10000;
const DEFAULT_LIMIT = 100;
const SCAN_WINDOW = 10000; // ledgers scanned per getEvents call
// Largest TOID low part (tx 20 bits, op 12 bits) and event index: used for
// the synthetic "end of the scanned range" cursor.
const TOID_LOW_MAX = 0xffffffffn;
const EVENT_INDEX_MAX = '4294967295';

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const invalidParams = (m) => new RpcError(-32602, m);

function rfc3339(unix) {
  return new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function cursorFor(ledger) {
  const toid = (BigInt(ledger) << 32n) | TOID_LOW_MAX;
  return `${toid.toString().padStart(19, '0')}-${EVENT_INDEX_MAX}`;
}

function parseCursor(c) {
  const m = typeof c === 'string' && /^(\d{19})-(\d{10})$/.exec(c);
  if (!m) throw invalidParams(`invalid cursor ${JSON.stringify(c)}: expected "%019d-%010d"`);
  return { ledger: Number(BigInt(m[1]) >> 32n), id: c };
}

function checkTopicSegment(seg, last, where) {
  if (seg === '*') return seg;
  if (seg === '**') {
    if (!last) throw invalidParams(`${where}: "**" is only allowed as the last segment`);
    return seg;
  }
  if (typeof seg !== 'string') throw invalidParams(`${where}: segment must be a string`);
  let v;
  try {
    v = xdr.ScVal.fromXDR(seg, 'base64');
  } catch (e) {
    throw invalidParams(`${where}: not a base64 ScVal XDR`);
  }
  // Compare canonical encodings so equal values match whatever the padding.
  return v.toXDR('base64');
}

function compileFilters(filters) {
  if (filters === undefined || filters === null) return [];
  if (!Array.isArray(filters)) throw invalidParams('filters must be an array');
  if (filters.length > 5) throw invalidParams('maximum 5 filters per request');
  return filters.map((f, i) => {
    if (!f || typeof f !== 'object' || Array.isArray(f)) throw invalidParams(`filters[${i}] must be an object`);
    const out = { types: null, contractIds: null, topics: null };
    if (f.type !== undefined && f.type !== '') {
      if (typeof f.type !== 'string') throw invalidParams(`filters[${i}].type must be a string`);
      out.types = new Set(f.type.split(','));
      for (const t of out.types) {
        if (t !== 'contract' && t !== 'system') {
          throw invalidParams(`filters[${i}]: if set, type must be either 'system' or 'contract' (got '${t}')`);
        }
      }
    }
    if (f.contractIds !== undefined) {
      if (!Array.isArray(f.contractIds)) throw invalidParams(`filters[${i}].contractIds must be an array`);
      if (f.contractIds.length > 5) throw invalidParams(`filters[${i}]: maximum 5 contract IDs per filter`);
      for (const c of f.contractIds) {
        if (!StrKey.isValidContract(c)) throw invalidParams(`filters[${i}]: contract ID must be a valid contract address: ${c}`);
      }
      if (f.contractIds.length) out.contractIds = new Set(f.contractIds);
    }
    if (f.topics !== undefined) {
      if (!Array.isArray(f.topics)) throw invalidParams(`filters[${i}].topics must be an array`);
      if (f.topics.length > 5) throw invalidParams(`filters[${i}]: maximum 5 topic filters per filter`);
      out.topics = f.topics.map((segs, j) => {
        const where = `filters[${i}].topics[${j}]`;
        if (!Array.isArray(segs) || segs.length < 1 || segs.length > 4) {
          throw invalidParams(`${where}: a topic filter must have 1 to 4 segments`);
        }
        return segs.map((s, k) => checkTopicSegment(s, k === segs.length - 1, `${where}[${k}]`));
      });
      if (!out.topics.length) out.topics = null;
    }
    return out;
  });
}

function topicMatches(segs, topics) {
  for (let i = 0; i < segs.length; i++) {
    if (segs[i] === '**') return true;
    if (i >= topics.length) return false;
    if (segs[i] !== '*' && segs[i] !== topics[i]) return false;
  }
  return topics.length === segs.length;
}

function eventMatches(filters, ev) {
  if (!filters.length) return true;
  return filters.some(
    (f) =>
      (!f.types || f.types.has(ev.type)) &&
      (!f.contractIds || f.contractIds.has(ev.contractId)) &&
      (!f.topics || f.topics.some((segs) => topicMatches(segs, ev.topic))),
  );
}

function isUint(v) {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function getEvents(net, params) {
  if (!params || typeof params !== 'object' || Array.isArray(params)) throw invalidParams('params must be an object');
  if (params.xdrFormat !== undefined && params.xdrFormat !== 'base64') {
    throw invalidParams(`xdrFormat ${JSON.stringify(params.xdrFormat)} is not supported by this test double (only "base64")`);
  }
  const latest = net.latest();
  const oldest = net.oldest();
  const pag = params.pagination || {};
  if (typeof pag !== 'object') throw invalidParams('pagination must be an object');
  let limit = pag.limit === undefined ? DEFAULT_LIMIT : pag.limit;
  if (!isUint(limit)) throw invalidParams('pagination.limit must be a non-negative integer');
  if (limit === 0) limit = DEFAULT_LIMIT;
  if (limit > MAX_LIMIT) throw invalidParams(`limit must not exceed ${MAX_LIMIT}`);

  let start;
  let after = null;
  if (pag.cursor !== undefined && pag.cursor !== '') {
    if (params.startLedger || params.endLedger) throw invalidParams('ledger ranges and cursor cannot both be set');
    const c = parseCursor(pag.cursor);
    start = c.ledger;
    after = c.id;
  } else {
    start = params.startLedger;
    if (!isUint(start) || start === 0) throw invalidParams('startLedger must be positive');
  }
  if (start < oldest.sequence || (after === null && start > latest.sequence)) {
    throw new RpcError(-32600, `startLedger must be within the ledger range: ${oldest.sequence} - ${latest.sequence}`);
  }
  let end = Math.min(start + SCAN_WINDOW, latest.sequence + 1);
  if (params.endLedger !== undefined) {
    if (!isUint(params.endLedger) || params.endLedger <= start) throw invalidParams('endLedger must be after startLedger');
    end = Math.min(end, params.endLedger);
  }
  const filters = compileFilters(params.filters);

  const out = [];
  if (end > start) {
    for (const ev of net.events) {
      if (ev.ledger < start) continue;
      if (ev.ledger >= end) break; // events are kept sorted by id (ledger first)
      if (after !== null && ev.id <= after) continue;
      if (!eventMatches(filters, ev)) continue;
      out.push(ev);
      if (out.length === limit) break;
    }
  }
  let cursor;
  if (out.length === limit) cursor = out[out.length - 1].id;
  else if (end > start) cursor = cursorFor(end - 1);
  else cursor = after;

  return {
    events: out.map((ev) => ({
      type: ev.type,
      ledger: ev.ledger,
      ledgerClosedAt: rfc3339(net.ledgerBySeq(ev.ledger).closed_at),
      contractId: ev.contractId,
      id: ev.id,
      operationIndex: ev.operationIndex,
      transactionIndex: ev.transactionIndex,
      txHash: ev.txHash,
      inSuccessfulContractCall: ev.inSuccessfulContractCall,
      topic: ev.topic,
      value: ev.value,
    })),
    cursor,
    latestLedger: latest.sequence,
    oldestLedger: oldest.sequence,
    latestLedgerCloseTime: String(latest.closed_at),
    oldestLedgerCloseTime: String(oldest.closed_at),
  };
}

function dispatch(net, method, params) {
  switch (method) {
    case 'getHealth': {
      const latest = net.latest();
      const oldest = net.oldest();
      return {
        status: 'healthy',
        latestLedger: latest.sequence,
        oldestLedger: oldest.sequence,
        ledgerRetentionWindow: net.retention,
        latestLedgerCloseTime: String(latest.closed_at),
        oldestLedgerCloseTime: String(oldest.closed_at),
      };
    }
    case 'getLatestLedger': {
      const latest = net.latest();
      return {
        id: latest.hash,
        protocolVersion: PROTOCOL_VERSION,
        sequence: latest.sequence,
        closeTime: String(latest.closed_at),
      };
    }
    case 'getNetwork':
      return { passphrase: net.passphrase, protocolVersion: PROTOCOL_VERSION };
    case 'getEvents':
      return getEvents(net, params);
    default:
      throw new RpcError(-32601, `method not found: ${method}`);
  }
}

// Handle one JSON-RPC request body (already parsed, or a parse error).
// Returns the response object.
function handle(net, body) {
  if (!body || typeof body !== 'object' || Array.isArray(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') {
    return { jsonrpc: '2.0', id: body && body.id !== undefined ? body.id : null, error: { code: -32600, message: 'invalid request: expected {"jsonrpc":"2.0","id":...,"method":...}' } };
  }
  try {
    return { jsonrpc: '2.0', id: body.id === undefined ? null : body.id, result: dispatch(net, body.method, body.params) };
  } catch (e) {
    const code = e instanceof RpcError ? e.code : -32603;
    return { jsonrpc: '2.0', id: body.id === undefined ? null : body.id, error: { code, message: e.message } };
  }
}

module.exports = { handle, rfc3339, RpcError };
