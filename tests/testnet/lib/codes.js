'use strict';
// Result codes: the Horizon strings (result_codes) and the matching
// TransactionResult XDR, built with @stellar/stellar-base so that the bytes
// come from an implementation independent of nova-worker's C encoder.

const { xdr } = require('@stellar/stellar-base');

// Horizon string -> stellar-base TransactionResultResult arm name.
const TX_ARMS = {
  tx_success: 'txSuccess',
  tx_failed: 'txFailed',
  tx_too_early: 'txTooEarly',
  tx_too_late: 'txTooLate',
  tx_missing_operation: 'txMissingOperation',
  tx_bad_seq: 'txBadSeq',
  tx_bad_auth: 'txBadAuth',
  tx_insufficient_balance: 'txInsufficientBalance',
  tx_no_source_account: 'txNoAccount',
  tx_insufficient_fee: 'txInsufficientFee',
  tx_bad_auth_extra: 'txBadAuthExtra',
  tx_internal_error: 'txInternalError',
  tx_not_supported: 'txNotSupported',
  tx_malformed: 'txMalformed',
};

// Horizon operation string -> builder of an xdr.OperationResult for a
// PAYMENT operation (inner codes) or the outer operation codes.
const OP_RESULTS = {
  op_success: () => inner(xdr.PaymentResult.paymentSuccess()),
  op_malformed: () => inner(xdr.PaymentResult.paymentMalformed()),
  op_underfunded: () => inner(xdr.PaymentResult.paymentUnderfunded()),
  op_src_no_trust: () => inner(xdr.PaymentResult.paymentSrcNoTrust()),
  op_src_not_authorized: () => inner(xdr.PaymentResult.paymentSrcNotAuthorized()),
  op_no_destination: () => inner(xdr.PaymentResult.paymentNoDestination()),
  op_no_trust: () => inner(xdr.PaymentResult.paymentNoTrust()),
  op_not_authorized: () => inner(xdr.PaymentResult.paymentNotAuthorized()),
  op_line_full: () => inner(xdr.PaymentResult.paymentLineFull()),
  op_no_issuer: () => inner(xdr.PaymentResult.paymentNoIssuer()),
  op_bad_auth: () => xdr.OperationResult.opBadAuth(),
  op_no_source_account: () => xdr.OperationResult.opNoAccount(),
  op_not_supported: () => xdr.OperationResult.opNotSupported(),
};

function inner(paymentResult) {
  return xdr.OperationResult.opInner(xdr.OperationResultTr.payment(paymentResult));
}

function opResults(opCodes) {
  return (opCodes || []).map((c) => {
    const mk = OP_RESULTS[c];
    if (!mk) throw new Error(`unknown operation result code ${c}`);
    return mk();
  });
}

// Build the base64 TransactionResult. opCodes is only used for tx_success and
// tx_failed (the arms that carry OperationResult<>).
function resultXdr(txCode, feeCharged, opCodes) {
  const arm = TX_ARMS[txCode];
  if (!arm) throw new Error(`unknown transaction result code ${txCode}`);
  const withOps = txCode === 'tx_success' || txCode === 'tx_failed';
  const result = withOps ? xdr.TransactionResultResult[arm](opResults(opCodes)) : xdr.TransactionResultResult[arm]();
  return new xdr.TransactionResult({
    feeCharged: xdr.Int64.fromString(String(feeCharged)),
    result,
    ext: new xdr.TransactionResultExt(0),
  }).toXDR('base64');
}

// TransactionResult of a fee-bump envelope (CAP-15): the outer code is
// tx_fee_bump_inner_success / tx_fee_bump_inner_failed and carries the inner
// transaction's hash and result. Rejections of the outer envelope itself
// (e.g. tx_insufficient_fee, tx_bad_auth of the fee source) use resultXdr().
function feeBumpResultXdr(feeCharged, innerHashHex, innerCode, innerOpCodes) {
  const arm = TX_ARMS[innerCode];
  if (!arm) throw new Error(`unknown transaction result code ${innerCode}`);
  const withOps = innerCode === 'tx_success' || innerCode === 'tx_failed';
  const innerResult = new xdr.InnerTransactionResult({
    feeCharged: xdr.Int64.fromString('0'),
    result: withOps ? xdr.InnerTransactionResultResult[arm](opResults(innerOpCodes)) : xdr.InnerTransactionResultResult[arm](),
    ext: new xdr.InnerTransactionResultExt(0),
  });
  const pair = new xdr.InnerTransactionResultPair({ transactionHash: Buffer.from(innerHashHex, 'hex'), result: innerResult });
  const outer =
    innerCode === 'tx_success'
      ? xdr.TransactionResultResult.txFeeBumpInnerSuccess(pair)
      : xdr.TransactionResultResult.txFeeBumpInnerFailed(pair);
  return new xdr.TransactionResult({
    feeCharged: xdr.Int64.fromString(String(feeCharged)),
    result: outer,
    ext: new xdr.TransactionResultExt(0),
  }).toXDR('base64');
}

module.exports = { resultXdr, feeBumpResultXdr, TX_CODES: Object.keys(TX_ARMS), OP_CODES: Object.keys(OP_RESULTS) };
