'use strict';
// Stellar amounts: int64 stroops, 1 unit = 10^7 stroops. Integer arithmetic
// only (BigInt); Horizon renders amounts with exactly 7 decimals.

const STROOPS_PER_UNIT = 10000000n;
const INT64_MAX = 9223372036854775807n;

// "250.75" -> 2507500000n. Throws on anything that is not a plain
// non-negative decimal with at most 7 fractional digits within int64.
function parseAmount(text, what = 'amount') {
  if (typeof text === 'number') text = String(text);
  if (typeof text !== 'string' || !/^\d+(\.\d{1,7})?$/.test(text)) {
    throw new Error(`${what}: expected a decimal string with at most 7 decimals, got ${JSON.stringify(text)}`);
  }
  const [whole, frac = ''] = text.split('.');
  const v = BigInt(whole) * STROOPS_PER_UNIT + BigInt((frac + '0000000').slice(0, 7));
  if (v > INT64_MAX) throw new Error(`${what}: ${text} exceeds the int64 stroop range`);
  return v;
}

// 125000000n -> "12.5000000"
function formatAmount(stroops) {
  const v = BigInt(stroops);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const whole = a / STROOPS_PER_UNIT;
  const frac = (a % STROOPS_PER_UNIT).toString().padStart(7, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

module.exports = { parseAmount, formatAmount, STROOPS_PER_UNIT, INT64_MAX };
