'use strict';
// The simulated network state: accounts with XLM and credit trustlines,
// closed ledgers, transactions by hash, applied payments and contract events.
// Transactions are parsed and checked with @stellar/stellar-base.
//
// Model (see README.md in this directory):
// * A submitted transaction is validated and, if it passes the pre-ledger
//   checks, applied at once to the state and assigned to the currently OPEN
//   ledger. Its effects (account sequence, balances, GET /transactions/{hash})
//   are visible immediately; the server delays the HTTP answer until that
//   ledger closes, like Horizon's synchronous submission.
// * Pre-ledger rejections (tx_bad_seq, tx_bad_auth, tx_too_late, ...) change
//   nothing and are not stored: GET by hash stays 404.
// * Apply-time failures (op_no_trust, op_underfunded, ...) consume the
//   sequence number and the fee, roll back every operation of the
//   transaction, and are stored with successful:false.
// * Account history: every change of an account (tx apply, admin create /
//   update / delete / trustline) stores a copy of the account as it is after
//   the change, stamped with the OPEN ledger (the ledger the change belongs
//   to; later changes in the same ledger replace that copy). accountAsOf(id, H)
//   is the last copy stamped <= H: what a Horizon replica that has ingested
//   ledgers up to H shows (sequence, balances, trustlines, existence).

const crypto = require('node:crypto');
const sb = require('@stellar/stellar-base');
const { resultXdr, feeBumpResultXdr } = require('./codes');
const { formatAmount, INT64_MAX } = require('./amount');

const { StrKey, Keypair, TransactionBuilder, FeeBumpTransaction } = sb;

const BASE_FEE = 100n; // stroops per operation
const BASE_RESERVE = 5000000n; // 0.5 XLM per base-reserve unit
const MAX_OPS = 100;

function sha256hex(s) {
  return crypto.createHash('sha256').update(s).digest('hex');
}

function assetKey(code, issuer) {
  return `${code}:${issuer}`;
}

function validAssetCode(code) {
  return typeof code === 'string' && /^[A-Za-z0-9]{1,12}$/.test(code);
}

class Network {
  constructor({ passphrase, startLedger = 1000, retention = 120960, clockOffset = 0, now }) {
    this.passphrase = passphrase;
    this.networkId = sha256hex(passphrase);
    this.retention = retention;
    // Seconds added to the wall clock (--clock-start, POST /_admin/clock).
    this.clockOffset = clockOffset;
    this.nowFn = now || (() => Date.now());
    this.feePerOp = BASE_FEE; // inclusion fee per op; raise it to simulate surge pricing
    this.oneTxPerSource = false;
    this.accounts = new Map();
    this.txs = new Map();
    this.innerHashes = new Map(); // fee-bump inner hash -> outer hash
    this.payments = [];
    this.events = [];
    this.ledgers = [];
    // account id -> [{ledger, state}] in ledger order; state null = deleted.
    this.history = new Map();
    const t = this.now();
    this.ledgers.push({
      sequence: startLedger,
      closed_at: t,
      hash: sha256hex(`genesis:${startLedger}:${passphrase}`),
      prev_hash: '0'.repeat(64),
      successful_transaction_count: 0,
      failed_transaction_count: 0,
      operation_count: 0,
    });
    this.open = { sequence: startLedger + 1, txs: [], nextTxIndex: 1 };
    this.onChange = () => {};
  }

  // Current network time, unix seconds.
  now() {
    return Math.floor(this.nowFn() / 1000) + this.clockOffset;
  }

  latest() {
    return this.ledgers[this.ledgers.length - 1];
  }

  oldest() {
    const latest = this.latest().sequence;
    const first = this.ledgers[0].sequence;
    return this.ledgerBySeq(Math.max(first, latest - this.retention + 1));
  }

  genesis() {
    return this.ledgers[0].sequence;
  }

  ledgerBySeq(seq) {
    const i = seq - this.ledgers[0].sequence;
    return i >= 0 && i < this.ledgers.length ? this.ledgers[i] : null;
  }

  // Close the open ledger. Close times never go backwards.
  closeLedger() {
    const prev = this.latest();
    const closedAt = Math.max(this.now(), prev.closed_at);
    const txs = this.open.txs.map((h) => this.txs.get(h));
    const l = {
      sequence: this.open.sequence,
      closed_at: closedAt,
      prev_hash: prev.hash,
      hash: sha256hex(`${prev.hash}:${this.open.sequence}:${this.open.txs.join(',')}`),
      successful_transaction_count: txs.filter((t) => t.successful).length,
      failed_transaction_count: txs.filter((t) => !t.successful).length,
      operation_count: txs.reduce((n, t) => n + t.operation_count, 0),
    };
    for (const t of txs) t.created_at = closedAt;
    this.ledgers.push(l);
    this.open = { sequence: l.sequence + 1, txs: [], nextTxIndex: 1 };
    this.onChange();
    return l;
  }

  // ---- accounts ---------------------------------------------------------

  // Store the account's current state (or its absence) as its state at the
  // end of the open ledger. Call after every change of an account.
  recordAccount(id) {
    const a = this.accounts.get(id);
    const state = a ? cloneAccount(a) : null;
    const ledger = this.open.sequence;
    let h = this.history.get(id);
    if (!h) {
      if (!state) return; // never existed: nothing to remember
      h = [];
      this.history.set(id, h);
    }
    const last = h[h.length - 1];
    if (last && last.ledger === ledger) last.state = state;
    else h.push({ ledger, state });
  }

  // The account as of the end of ledger H (a copy, or null if it did not
  // exist then): the last state stored in a ledger <= H.
  accountAsOf(id, H) {
    const h = this.history.get(id);
    if (!h) return null;
    let lo = 0;
    let hi = h.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (h[mid].ledger <= H) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 || !h[found].state ? null : cloneAccount(h[found].state);
  }

  // Admin changes (POST /_admin/accounts/{G}): balance and/or sequence.
  updateAccount(id, { balance, sequence }) {
    const acct = this.accounts.get(id);
    if (!acct) throw Object.assign(new Error(`account ${id} does not exist`), { status: 404 });
    if (balance !== undefined) acct.balance = balance;
    if (sequence !== undefined) acct.sequence = sequence;
    this.recordAccount(id);
    this.onChange();
    return acct;
  }

  deleteAccount(id) {
    if (!this.accounts.delete(id)) throw Object.assign(new Error(`account ${id} does not exist`), { status: 404 });
    this.recordAccount(id);
    this.onChange();
  }

  createAccount({ id, balance, sequence, trustlines = [] }) {
    if (!StrKey.isValidEd25519PublicKey(id)) throw new Error(`id: not a valid G... account id: ${id}`);
    if (this.accounts.has(id)) {
      const e = new Error(`account ${id} already exists`);
      e.status = 409;
      throw e;
    }
    const acct = {
      id,
      // New accounts start at <ledger> << 32, as on the real network.
      sequence: sequence !== undefined ? BigInt(sequence) : BigInt(this.open.sequence) << 32n,
      balance,
      trustlines: new Map(),
      last_modified_ledger: this.latest().sequence,
    };
    if (acct.sequence < 0n || acct.sequence > INT64_MAX) throw new Error('sequence out of int64 range');
    this.accounts.set(id, acct);
    try {
      for (const tl of trustlines) this.setTrustline({ account: id, ...tl });
    } catch (e) {
      this.accounts.delete(id); // all or nothing
      this.recordAccount(id);
      throw e;
    }
    this.recordAccount(id);
    this.onChange();
    return acct;
  }

  setTrustline({ account, code, issuer, limit, balance, authorized, remove }) {
    const acct = this.accounts.get(account);
    if (!acct) throw Object.assign(new Error(`account ${account} does not exist`), { status: 404 });
    if (!validAssetCode(code)) throw new Error(`code: asset code must be 1-12 letters/digits, got ${JSON.stringify(code)}`);
    if (!StrKey.isValidEd25519PublicKey(issuer)) throw new Error(`issuer: not a valid G... account id: ${issuer}`);
    if (issuer === account) throw new Error('an issuer cannot hold a trustline to its own asset');
    const key = assetKey(code, issuer);
    if (remove) {
      acct.trustlines.delete(key);
    } else {
      // Work on a copy so a refused update leaves the trustline unchanged.
      const cur = { ...(acct.trustlines.get(key) || { code, issuer, balance: 0n, limit: INT64_MAX, authorized: true }) };
      if (limit !== undefined) cur.limit = limit;
      if (balance !== undefined) cur.balance = balance;
      if (authorized !== undefined) cur.authorized = !!authorized;
      if (cur.balance > cur.limit) throw new Error('trustline balance above its limit');
      acct.trustlines.set(key, cur);
    }
    acct.last_modified_ledger = this.latest().sequence;
    this.recordAccount(account);
    this.onChange();
    return acct;
  }

  minBalance(acct) {
    return (2n + BigInt(acct.trustlines.size)) * BASE_RESERVE;
  }

  // ---- submission ---------------------------------------------------------

  // Parse a base64 envelope. Returns {tx, hash} or throws {malformed}.
  parseEnvelope(b64) {
    // Horizon rejects an envelope whose '+' arrived as ' ' (not url-encoded):
    // insist on canonical base64 so the fake catches the same client bug.
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw Object.assign(new Error('tx is not canonical base64'), { malformed: true });
    }
    let tx;
    try {
      tx = TransactionBuilder.fromXDR(b64, this.passphrase);
    } catch (e) {
      throw Object.assign(new Error(`cannot decode TransactionEnvelope: ${e.message}`), { malformed: true });
    }
    if (tx.toEnvelope().toXDR('base64') !== b64) {
      throw Object.assign(new Error('envelope has trailing or non-canonical bytes'), { malformed: true });
    }
    return { tx, hash: tx.hash().toString('hex') };
  }

  // Signature checker over one hash: each required signer needs a
  // DecoratedSignature with its hint that verifies (master keys only). The
  // hash includes the network id, so a tx signed for another network fails.
  signatureChecker(hashBuf, sigs) {
    const used = new Set();
    const cache = new Map();
    const signedBy = (gId) => {
      if (cache.has(gId)) return cache.get(gId);
      const kp = Keypair.fromPublicKey(gId);
      const hint = kp.signatureHint();
      let found = false;
      for (let i = 0; i < sigs.length && !found; i++) {
        if (!sigs[i].hint().equals(hint)) continue;
        try {
          found = kp.verify(hashBuf, sigs[i].signature());
        } catch (_) {
          found = false;
        }
        if (found) used.add(i);
      }
      cache.set(gId, found);
      return found;
    };
    return { signedBy, allUsed: () => used.size === sigs.length };
  }

  // Pre-ledger checks of a v1 transaction, in stellar-core's order. With
  // feeBump the fee and the fee balance are the outer envelope's business.
  // Returns {reject: {txCode, opCodes?, feeCharged}} or the parsed context.
  check(tx, { feeBump = false } = {}) {
    const reject = (txCode, opCodes, feeCharged = 0n) => ({ reject: { txCode, opCodes, feeCharged } });
    const raw = tx.tx; // xdr.Transaction
    const ops = raw.operations();
    const nOps = BigInt(ops.length);
    if (ops.length === 0) return reject('tx_missing_operation');
    if (ops.length > MAX_OPS) return reject('tx_malformed');

    // Preconditions: only NONE and TIME are supported (PRECOND_V2 would
    // need ledger bounds, min seq age, extra signers).
    const condType = raw.cond().switch().name;
    if (condType !== 'precondNone' && condType !== 'precondTime') return reject('tx_not_supported');
    const now = BigInt(this.now());
    if (tx.timeBounds) {
      const minT = BigInt(tx.timeBounds.minTime);
      const maxT = BigInt(tx.timeBounds.maxTime);
      if (minT > now) return reject('tx_too_early');
      if (maxT !== 0n && maxT < now) return reject('tx_too_late');
    }

    const fee = BigInt(tx.fee);
    const feeCharged = this.feePerOp * nOps;
    if (!feeBump && fee < feeCharged) return reject('tx_insufficient_fee', undefined, feeCharged);

    const srcId = sb.extractBaseAddress(tx.source);
    const src = this.accounts.get(srcId);
    if (!src) return reject('tx_no_source_account');
    const seq = BigInt(tx.sequence);
    if (seq !== src.sequence + 1n) return reject('tx_bad_seq');

    const sig = this.signatureChecker(tx.hash(), tx.signatures);
    if (!sig.signedBy(srcId)) return reject('tx_bad_auth');
    if (!feeBump && src.balance - this.minBalance(src) < feeCharged) return reject('tx_insufficient_balance');

    // Per-operation validity (stellar-core checkValid): failures here reject
    // the transaction before any ledger, with tx_failed + op codes.
    const parsed = [];
    const opCheck = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const p = { index: i };
      parsed.push(p);
      let code = 'op_success';
      const opSrcMuxed = op.sourceAccount();
      p.source = opSrcMuxed ? sb.encodeMuxedAccountToAddress(opSrcMuxed) : tx.source;
      p.sourceId = sb.extractBaseAddress(p.source);
      if (op.body().switch().name !== 'payment') {
        code = 'op_not_supported';
      } else if (!this.accounts.has(p.sourceId)) {
        code = 'op_no_source_account';
      } else if (!sig.signedBy(p.sourceId)) {
        code = 'op_bad_auth';
      } else {
        try {
          const pay = op.body().paymentOp();
          p.destination = sb.encodeMuxedAccountToAddress(pay.destination());
          p.destinationId = sb.extractBaseAddress(p.destination);
          p.asset = sb.Asset.fromOperation(pay.asset());
          p.amount = BigInt(pay.amount().toString());
          if (p.amount <= 0n) code = 'op_malformed';
          else if (!p.asset.isNative() && !validAssetCode(p.asset.getCode())) code = 'op_malformed';
        } catch (_) {
          // e.g. an asset code with bytes outside [A-Za-z0-9]
          code = 'op_malformed';
        }
      }
      opCheck.push(code);
    }
    if (opCheck.some((c) => c !== 'op_success')) return reject('tx_failed', opCheck, feeCharged);
    if (!sig.allUsed()) return reject('tx_bad_auth_extra');
    return { src, srcId, seq, fee, feeCharged, parsed };
  }

  // Is there already a transaction of this source account in the open
  // ledger? (stellar-core queues one per source account: TRY_AGAIN_LATER.)
  hasPendingFrom(tx) {
    const inner = tx instanceof FeeBumpTransaction ? tx.innerTransaction : tx;
    const id = sb.extractBaseAddress(inner.source);
    return this.open.txs.some((h) => sb.extractBaseAddress(this.txs.get(h).source_account) === id);
  }

  // A stored transaction by its hash, or by the inner hash of a fee bump.
  findTx(hash) {
    const h = hash.toLowerCase();
    return this.txs.get(h) || this.txs.get(this.innerHashes.get(h)) || null;
  }

  // Validate and (if it passes the pre-ledger checks) apply a transaction.
  // force: optional {opCode, opIndex} from fault injection: the named
  // operation fails at apply time.
  // Returns {kind:'rejected', txCode, innerCode?, opCodes?, resultXdr}
  //      or {kind:'try_again_later'}   (only with oneTxPerSource)
  //      or {kind:'included', rec}   (rec.successful tells success/failure)
  submit(tx, hash, envelopeB64, force) {
    if (this.oneTxPerSource && this.hasPendingFrom(tx)) return { kind: 'try_again_later', hash };
    if (tx instanceof FeeBumpTransaction) return this.submitFeeBump(tx, hash, envelopeB64, force);
    const c = this.check(tx);
    if (c.reject) {
      const r = c.reject;
      return { kind: 'rejected', hash, txCode: r.txCode, opCodes: r.opCodes, resultXdr: resultXdr(r.txCode, r.feeCharged, r.opCodes) };
    }
    return this.include(tx, c, { hash, envelopeB64, force, payer: c.src, feeCharged: c.feeCharged });
  }

  // CAP-15 fee bump: the fee source pays (fee_per_op x (inner ops + 1)) and
  // signs the outer hash; the inner transaction keeps its own signatures,
  // sequence number and hash (both hashes resolve afterwards).
  submitFeeBump(fb, hash, envelopeB64, force) {
    const inner = fb.innerTransaction;
    const innerHash = inner.hash().toString('hex');
    const nOps = BigInt(inner.tx.operations().length);
    const outerFee = BigInt(fb.fee);
    const charged = this.feePerOp * (nOps + 1n);
    const reject = (txCode, feeCharged = 0n) => ({ kind: 'rejected', hash, txCode, resultXdr: resultXdr(txCode, feeCharged) });
    // The outer bid must cover the minimum and at least the inner's rate.
    if (outerFee < charged || outerFee * nOps < BigInt(inner.fee) * (nOps + 1n)) return reject('tx_insufficient_fee', charged);
    const payerId = sb.extractBaseAddress(fb.feeSource);
    const payer = this.accounts.get(payerId);
    if (!payer) return reject('tx_no_source_account');
    const sig = this.signatureChecker(fb.hash(), fb.signatures);
    if (!sig.signedBy(payerId)) return reject('tx_bad_auth');
    if (payer.balance - this.minBalance(payer) < charged) return reject('tx_insufficient_balance');
    if (!sig.allUsed()) return reject('tx_bad_auth_extra');
    const c = this.check(inner, { feeBump: true });
    if (c.reject) {
      const r = c.reject;
      return {
        kind: 'rejected',
        hash,
        txCode: 'tx_fee_bump_inner_failed',
        innerCode: r.txCode,
        opCodes: r.opCodes,
        resultXdr: feeBumpResultXdr(0n, innerHash, r.txCode, r.opCodes),
      };
    }
    return this.include(inner, c, {
      hash,
      envelopeB64,
      force,
      payer,
      feeCharged: charged,
      feeBump: {
        hash,
        innerHash,
        fee_account: fb.feeSource,
        max_fee: outerFee.toString(),
        signatures: fb.signatures.map((s) => s.signature().toString('base64')),
      },
    });
  }

  // Apply a checked transaction in the open ledger.
  include(tx, c, { hash, envelopeB64, force, payer, feeCharged, feeBump }) {
    const { src, seq, fee, parsed } = c;
    // Sequence and fee are consumed whatever happens next.
    src.sequence = seq;
    src.last_modified_ledger = this.open.sequence;
    payer.balance -= feeCharged;
    payer.last_modified_ledger = this.open.sequence;

    // Operations run against a working copy; stellar-core keeps applying the
    // remaining operations after one fails (so every op gets its own code),
    // then rolls all of them back.
    const work = new Map();
    const get = (id) => {
      if (!work.has(id)) {
        const a = this.accounts.get(id);
        if (!a) return null;
        work.set(id, {
          ...a,
          trustlines: new Map([...a.trustlines].map(([k, v]) => [k, { ...v }])),
        });
      }
      return work.get(id);
    };
    const opCodes = parsed.map((p) => this.applyPayment(p, get));
    if (force && force.opCode) {
      const i = Math.min(Math.max(0, force.opIndex | 0), opCodes.length - 1);
      opCodes[i] = force.opCode;
    }
    const successful = opCodes.every((code) => code === 'op_success');
    if (successful) {
      for (const [id, a] of work) {
        a.last_modified_ledger = this.open.sequence;
        this.accounts.set(id, a);
      }
    }
    // History: the source's new sequence (for a fee bump the inner source's),
    // the fee payer's balance and, if committed, every account a payment
    // touched, all as of the end of the open ledger.
    const touched = new Set([src.id, payer.id, ...(successful ? work.keys() : [])]);
    for (const id of touched) this.recordAccount(id);

    const innerCode = successful ? 'tx_success' : 'tx_failed';
    const memo = renderMemo(tx.memo);
    const innerSigs = tx.signatures.map((s) => s.signature().toString('base64'));
    const rec = {
      hash,
      ledger: this.open.sequence,
      // One counter per ledger for transactions and synthetic event txs, so
      // paging tokens and event TOIDs never collide.
      application_order: this.open.nextTxIndex++,
      created_at: null, // set when the ledger closes
      applied_at: this.now(),
      successful,
      source_account: tx.source,
      source_account_sequence: seq.toString(),
      fee_account: feeBump ? feeBump.fee_account : tx.source,
      fee_charged: feeCharged.toString(),
      max_fee: feeBump ? feeBump.max_fee : fee.toString(),
      operation_count: parsed.length,
      envelope_xdr: envelopeB64,
      result_xdr: feeBump
        ? feeBumpResultXdr(feeCharged, feeBump.innerHash, innerCode, opCodes)
        : resultXdr(innerCode, feeCharged, opCodes),
      result_codes: feeBump
        ? { transaction: successful ? 'tx_fee_bump_inner_success' : 'tx_fee_bump_inner_failed', inner_transaction: innerCode, operations: opCodes }
        : { transaction: innerCode, operations: opCodes },
      memo_type: memo.type,
      memo: memo.value,
      signatures: feeBump ? feeBump.signatures : innerSigs,
      time_bounds: tx.timeBounds ? { min_time: String(tx.timeBounds.minTime), max_time: String(tx.timeBounds.maxTime) } : null,
    };
    if (feeBump) {
      rec.fee_bump_transaction = { hash, signatures: feeBump.signatures };
      rec.inner_transaction = { hash: feeBump.innerHash, signatures: innerSigs, max_fee: fee.toString() };
      this.innerHashes.set(feeBump.innerHash, hash);
    }
    this.txs.set(hash, rec);
    this.open.txs.push(hash);
    if (successful) {
      for (const p of parsed) {
        this.payments.push({
          tx_hash: hash,
          ledger: rec.ledger,
          op_index: p.index,
          source: p.sourceId,
          destination: p.destinationId,
          destination_muxed: p.destination !== p.destinationId ? p.destination : undefined,
          asset_type: p.asset.getAssetType(),
          asset_code: p.asset.isNative() ? undefined : p.asset.getCode(),
          asset_issuer: p.asset.isNative() ? undefined : p.asset.getIssuer(),
          asset: p.asset.isNative() ? 'native' : `${p.asset.getCode()}:${p.asset.getIssuer()}`,
          amount: formatAmount(p.amount),
          amount_stroops: p.amount.toString(),
          memo_type: memo.type,
          memo: memo.value,
        });
      }
    }
    this.onChange();
    return { kind: 'included', rec };
  }

  // One PAYMENT against the working copy. Check order follows stellar-core's
  // path-payment based implementation: destination exists, credit the
  // destination, then debit the source.
  applyPayment(p, get) {
    const src = get(p.sourceId);
    const dst = get(p.destinationId);
    if (!dst) return 'op_no_destination';
    const amt = p.amount;
    if (p.asset.isNative()) {
      if (p.sourceId === p.destinationId) return 'op_success';
      if (dst.balance + amt > INT64_MAX) return 'op_line_full';
      if (src.balance - this.minBalance(src) < amt) return 'op_underfunded';
      dst.balance += amt;
      src.balance -= amt;
      return 'op_success';
    }
    const code = p.asset.getCode();
    const issuer = p.asset.getIssuer();
    const key = assetKey(code, issuer);
    if (p.sourceId === p.destinationId && p.sourceId !== issuer) {
      const tl = src.trustlines.get(key);
      if (!tl) return 'op_src_no_trust';
      return 'op_success';
    }
    // Credit the destination (the issuer simply burns what it receives).
    let dtl = null;
    if (p.destinationId !== issuer) {
      dtl = dst.trustlines.get(key);
      if (!dtl) return 'op_no_trust';
      if (!dtl.authorized) return 'op_not_authorized';
      if (dtl.balance + amt > dtl.limit) return 'op_line_full';
    }
    // Debit the source (the issuer mints without limit).
    let stl = null;
    if (p.sourceId !== issuer) {
      stl = src.trustlines.get(key);
      if (!stl) return 'op_src_no_trust';
      if (!stl.authorized) return 'op_src_not_authorized';
      if (stl.balance < amt) return 'op_underfunded';
    }
    if (dtl) dtl.balance += amt;
    if (stl) stl.balance -= amt;
    return 'op_success';
  }

  // ---- events ---------------------------------------------------------------

  // Add contract events as one synthetic transaction in the given (or the
  // open) ledger. topic/value are base64 ScVal strings (already validated).
  addEvents(list, { ledger, txHash } = {}) {
    const seq = ledger === undefined ? this.open.sequence : ledger;
    if (!Number.isInteger(seq) || seq < this.ledgers[0].sequence || seq > this.open.sequence) {
      throw new Error(`ledger must be between ${this.ledgers[0].sequence} and the open ledger ${this.open.sequence}`);
    }
    let txIndex;
    if (seq === this.open.sequence) {
      txIndex = this.open.nextTxIndex++;
    } else {
      // A past ledger: append after the events already there.
      const inLedger = this.events.filter((e) => e.ledger === seq);
      txIndex = inLedger.reduce((m, e) => Math.max(m, e.transactionIndex), 0) + 1;
    }
    const hash = txHash || crypto.randomBytes(32).toString('hex');
    const added = list.map((e, i) => {
      const toid = (BigInt(seq) << 32n) | (BigInt(txIndex) << 12n);
      return {
        type: e.type,
        ledger: seq,
        contractId: e.contractId,
        id: `${toid.toString().padStart(19, '0')}-${String(i).padStart(10, '0')}`,
        toid: toid.toString(),
        eventIndex: i,
        operationIndex: 0,
        transactionIndex: txIndex,
        txHash: hash,
        inSuccessfulContractCall: true,
        topic: e.topic,
        value: e.value,
      };
    });
    this.events.push(...added);
    this.events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.onChange();
    return added;
  }

  // ---- persistence -----------------------------------------------------------

  toJSON() {
    return {
      version: 1,
      passphrase: this.passphrase,
      retention: this.retention,
      clock_offset: this.clockOffset,
      fee_per_op: this.feePerOp.toString(),
      ledgers: this.ledgers,
      open: this.open,
      accounts: [...this.accounts.values()].map(accountToJSON),
      transactions: [...this.txs.values()],
      payments: this.payments,
      events: this.events,
      account_history: [...this.history].map(([id, h]) => ({
        id,
        states: h.map((e) => ({ ledger: e.ledger, state: e.state ? accountToJSON(e.state) : null })),
      })),
    };
  }

  loadJSON(s) {
    if (s.version !== 1) throw new Error(`state file: unsupported version ${s.version}`);
    if (s.passphrase !== this.passphrase) {
      throw new Error(`state file is for network "${s.passphrase}", not "${this.passphrase}"`);
    }
    this.clockOffset = s.clock_offset || 0;
    this.feePerOp = BigInt(s.fee_per_op || BASE_FEE);
    this.ledgers = s.ledgers;
    this.open = s.open;
    this.accounts = new Map(s.accounts.map((a) => [a.id, accountFromJSON(a)]));
    this.history = new Map();
    if (Array.isArray(s.account_history)) {
      for (const { id, states } of s.account_history) {
        this.history.set(
          id,
          states.map((e) => ({ ledger: e.ledger, state: e.state ? accountFromJSON(e.state) : null })),
        );
      }
    }
    // A state file without history (older server): each account is known
    // from its last_modified_ledger on, as it is now.
    for (const a of this.accounts.values()) {
      if (!this.history.has(a.id)) this.history.set(a.id, [{ ledger: a.last_modified_ledger, state: cloneAccount(a) }]);
    }
    this.txs = new Map(s.transactions.map((t) => [t.hash, t]));
    this.innerHashes = new Map(s.transactions.filter((t) => t.inner_transaction).map((t) => [t.inner_transaction.hash, t.hash]));
    this.payments = s.payments;
    this.events = s.events;
  }
}

function cloneAccount(a) {
  return {
    id: a.id,
    sequence: a.sequence,
    balance: a.balance,
    last_modified_ledger: a.last_modified_ledger,
    trustlines: new Map([...a.trustlines].map(([k, v]) => [k, { ...v }])),
  };
}

function accountToJSON(a) {
  return {
    id: a.id,
    sequence: a.sequence.toString(),
    balance: a.balance.toString(),
    last_modified_ledger: a.last_modified_ledger,
    trustlines: [...a.trustlines.values()].map((t) => ({
      code: t.code,
      issuer: t.issuer,
      balance: t.balance.toString(),
      limit: t.limit.toString(),
      authorized: t.authorized,
    })),
  };
}

function accountFromJSON(a) {
  return {
    id: a.id,
    sequence: BigInt(a.sequence),
    balance: BigInt(a.balance),
    last_modified_ledger: a.last_modified_ledger,
    trustlines: new Map(
      a.trustlines.map((t) => [
        assetKey(t.code, t.issuer),
        { code: t.code, issuer: t.issuer, balance: BigInt(t.balance), limit: BigInt(t.limit), authorized: t.authorized },
      ]),
    ),
  };
}

function renderMemo(memo) {
  switch (memo.type) {
    case 'none':
      return { type: 'none', value: undefined };
    case 'text':
      return { type: 'text', value: Buffer.isBuffer(memo.value) ? memo.value.toString('utf8') : String(memo.value) };
    case 'id':
      return { type: 'id', value: String(memo.value) };
    case 'hash':
    case 'return':
      return { type: memo.type, value: Buffer.from(memo.value).toString('base64') };
    default:
      return { type: String(memo.type), value: undefined };
  }
}

module.exports = { Network, assetKey, BASE_FEE, BASE_RESERVE, sha256hex };
