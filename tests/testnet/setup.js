#!/usr/bin/env node
'use strict';
// Seed a running test double (server.js) with the accounts of the reward
// issuance demo: an issuer of NOVA, a distribution account holding NOVA and
// XLM, and N recipients, the first N-K with a NOVA trustline and the last K
// without. Writes every key (public and secret) to --out as JSON.
//
// Keys are deterministic by default (seed = sha256(label), the labels of
// shared/reference/stellar-vectors.json: "nova-test/issuer-account",
// "nova-test/distribution-account", "nova-test/user-wallet-<i>"), so a demo
// can be re-run; --random draws fresh keys. Re-running against a state that
// already has the accounts keeps their balances and only fixes trustlines.

const fs = require('node:fs');
const crypto = require('node:crypto');
const { Keypair } = require('@stellar/stellar-base');

const USAGE = `usage: node setup.js --url http://127.0.0.1:P --out FILE [options]
  --recipients N        number of recipient accounts (default 3)
  --without-trust K     how many of them (the last K) get no NOVA trustline (default 1)
  --distribution-nova A NOVA held by the distribution account (default 1000000)
  --xlm A               XLM given to every account (default 10000)
  --asset-code CODE     asset code (default NOVA)
  --random              random keys instead of the deterministic test labels
  --env FILE            also write Nova's environment variables (HORIZON_URL, SOROBAN_RPC_URL,
                        STELLAR_NETWORK, ISSUER_PUBLIC, ISSUER_SECRET, DISTRIBUTION_PUBLIC,
                        DISTRIBUTION_SECRET) as shell assignments, mode 0600`;

function parseArgs(argv) {
  const o = { env: null, url: null, out: null, recipients: 3, withoutTrust: 1, distNova: '1000000', xlm: '10000', code: 'NOVA', random: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    switch (a) {
      case '--url':
        o.url = v().replace(/\/+$/, '');
        break;
      case '--out':
        o.out = v();
        break;
      case '--recipients':
        o.recipients = Number(v());
        break;
      case '--without-trust':
        o.withoutTrust = Number(v());
        break;
      case '--distribution-nova':
        o.distNova = v();
        break;
      case '--xlm':
        o.xlm = v();
        break;
      case '--asset-code':
        o.code = v();
        break;
      case '--env':
        o.env = v();
        break;
      case '--random':
        o.random = true;
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
  if (!o.url || !o.out) throw new Error('--url and --out are required');
  if (!Number.isInteger(o.recipients) || o.recipients < 0 || o.recipients > 1000) throw new Error('--recipients must be 0..1000');
  if (!Number.isInteger(o.withoutTrust) || o.withoutTrust < 0 || o.withoutTrust > o.recipients) {
    throw new Error('--without-trust must be 0..recipients');
  }
  return o;
}

async function call(url, method, path, body) {
  const r = await fetch(url + path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch (_) {
    json = { raw: text };
  }
  return { status: r.status, json };
}

function keyFor(label, random) {
  if (random) return Keypair.random();
  return Keypair.fromRawEd25519Seed(crypto.createHash('sha256').update(label).digest());
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const root = await call(o.url, 'GET', '/');
  if (root.status !== 200) throw new Error(`GET ${o.url}/ answered ${root.status}`);

  const issuer = keyFor('nova-test/issuer-account', o.random);
  const dist = keyFor('nova-test/distribution-account', o.random);
  const asset = { code: o.code, issuer: issuer.publicKey() };

  async function ensure(kp, trust) {
    const r = await call(o.url, 'POST', '/_admin/accounts', {
      secret: kp.secret(),
      balance: o.xlm,
      trustlines: trust ? [trust] : [],
    });
    if (r.status === 201) return;
    if (r.status !== 409) throw new Error(`creating ${kp.publicKey()}: ${r.status} ${JSON.stringify(r.json)}`);
    // Already there (persistent state): keep balances, fix the trustline.
    if (kp.publicKey() === asset.issuer) return;
    const t = trust ? { code: asset.code, issuer: asset.issuer } : { ...asset, remove: true };
    const u = await call(o.url, 'POST', '/_admin/trustlines', { account: kp.publicKey(), ...t });
    if (u.status !== 200) throw new Error(`trustline for ${kp.publicKey()}: ${u.status} ${JSON.stringify(u.json)}`);
  }

  await ensure(issuer, null);
  await ensure(dist, { ...asset, balance: o.distNova });
  const recipients = [];
  for (let i = 1; i <= o.recipients; i++) {
    const kp = keyFor(`nova-test/user-wallet-${i}`, o.random);
    const trustline = i <= o.recipients - o.withoutTrust;
    await ensure(kp, trustline ? { ...asset } : null);
    recipients.push({ public: kp.publicKey(), secret: kp.secret(), trustline });
  }

  const out = {
    horizon_url: o.url,
    rpc_url: `${o.url}/soroban/rpc`,
    network_passphrase: root.json.network_passphrase,
    asset,
    issuer: { public: issuer.publicKey(), secret: issuer.secret() },
    distribution: { public: dist.publicKey(), secret: dist.secret() },
    recipients,
  };
  fs.writeFileSync(o.out, JSON.stringify(out, null, 2) + '\n', { mode: 0o600 });
  if (o.env) {
    // STELLAR_NETWORK: Nova maps "mainnet" to the public passphrase and
    // anything else to testnet; this double runs testnet unless told otherwise.
    const q = (v) => `'${String(v).replace(/'/g, `'\\''`)}'`;
    const env = {
      HORIZON_URL: out.horizon_url,
      SOROBAN_RPC_URL: out.rpc_url,
      STELLAR_NETWORK: out.network_passphrase === 'Public Global Stellar Network ; September 2015' ? 'mainnet' : 'testnet',
      STELLAR_NETWORK_PASSPHRASE: out.network_passphrase,
      ISSUER_PUBLIC: out.issuer.public,
      ISSUER_SECRET: out.issuer.secret,
      DISTRIBUTION_PUBLIC: out.distribution.public,
      DISTRIBUTION_SECRET: out.distribution.secret,
    };
    const text = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`).join('\n') + '\n';
    fs.writeFileSync(o.env, text, { mode: 0o600 });
  }
  process.stdout.write(`setup.js: wrote ${o.out}: issuer ${asset.issuer}, distribution ${dist.publicKey()}, ${recipients.length} recipients\n`);
}

main().catch((e) => {
  process.stderr.write(`setup.js: ${e.message}\n${/required|argument|must|needs/.test(e.message) ? USAGE + '\n' : ''}`);
  process.exit(1);
});
