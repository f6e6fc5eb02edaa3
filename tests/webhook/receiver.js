// A merchant's webhook endpoint for the webhook plugin's tests.
//
// Every POST to /hook/<name> is verified the way Nova's receivers verify
// deliveries: x-nova-timestamp within 5 minutes of now, and x-nova-signature
// equal, compared in constant time, to the lowercase hex HMAC-SHA256 of
// "<x-nova-timestamp>.<x-nova-delivery-id>.<raw body bytes>" keyed with the
// webhook's plaintext secret. Each request becomes one JSON line in --log.
//
// What it answers for <name> comes from --modes (a JSON object, read on
// every request, so a test can change it while running):
//   ok            200 "ok" (401 when the signature does not verify)
//   status-N      status N, a body of 1200 "€" (to check what is kept)
//   slow-MS       200 "ok" after MS milliseconds
//   hang-MS       200 after MS milliseconds (meant to outlast the timeout)
//   reset         the connection is destroyed without an answer
//   redirect-URL  302 to URL
// Secrets come from --secrets ({"<name>": "<plaintext secret>"}).
//
// Without --log nothing is written per request; GET /__stats answers the
// counts either way ({"requests", "valid", "invalid"}).
//
// usage: node receiver.js --host H --port P --secrets F --modes F [--log F]
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '0'));
const secretsFile = opt('--secrets');
const modesFile = opt('--modes');
const logFile = opt('--log');
const WINDOW_MS = 5 * 60 * 1000;

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return {};
  }
}

// Nova's verifier: null when the delivery is authentic, else why not.
function verify(secret, headers, raw) {
  const ts = headers['x-nova-timestamp'];
  const id = headers['x-nova-delivery-id'];
  const sig = headers['x-nova-signature'];
  if (secret === undefined) return 'no secret known for this hook';
  if (!ts || !id || !sig) return 'missing x-nova-* headers';
  if (!/^[0-9]+$/.test(ts)) return 'x-nova-timestamp is not milliseconds';
  if (Math.abs(Date.now() - Number(ts)) > WINDOW_MS) return 'timestamp outside the 5-minute window';
  const mac = crypto.createHmac('sha256', secret);
  mac.update(Buffer.from(`${ts}.${id}.`, 'utf8'));
  mac.update(raw);
  const want = Buffer.from(mac.digest('hex'), 'utf8');
  const got = Buffer.from(String(sig), 'utf8');
  if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) return 'signature mismatch';
  return null;
}

const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
const stats = { requests: 0, valid: 0, invalid: 0 };
// Without a log (a benchmark: thousands of requests a second), secrets and
// modes are read again at most every 100 ms; with one, on every request.
const cache = {};
function current(file) {
  const now = Date.now();
  const c = cache[file];
  if (c && now - c.at < 100) return c.value;
  cache[file] = { at: now, value: readJson(file) };
  return cache[file].value;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/__stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const m = /^\/hook\/([^/?]+)/.exec(req.url);
    const name = m ? decodeURIComponent(m[1]) : '';
    const mode = (log ? readJson(modesFile) : current(modesFile))[name] || 'ok';
    const why = verify((log ? readJson(secretsFile) : current(secretsFile))[name], req.headers, raw);
    stats.requests++;
    if (why === null) stats.valid++;
    else stats.invalid++;
    let parsed = null;
    try {
      parsed = log ? JSON.parse(raw.toString('utf8')) : null;
    } catch (e) {
      parsed = null;
    }
    if (log) log.write(JSON.stringify({
      t: Date.now(),
      name,
      mode,
      method: req.method,
      url: req.url,
      remote: req.socket.remoteAddress,
      local: req.socket.localAddress,
      deliveryId: req.headers['x-nova-delivery-id'] || null,
      ts: req.headers['x-nova-timestamp'] || null,
      sig: req.headers['x-nova-signature'] || null,
      valid: why === null,
      reason: why,
      ua: req.headers['user-agent'] || null,
      ctype: req.headers['content-type'] || null,
      clen: req.headers['content-length'] || null,
      bodyLen: raw.length,
      body: raw.length <= 65536 ? raw.toString('utf8') : null,
      json: parsed,
    }) + '\n');

    if (mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (mode.startsWith('redirect-')) {
      res.writeHead(302, { Location: mode.slice('redirect-'.length), 'Content-Length': 0 });
      res.end();
      return;
    }
    let status = why === null ? 200 : 401;
    let body = why === null ? 'ok' : `bad delivery: ${why}`;
    let wait = 0;
    const st = /^status-([0-9]{3})$/.exec(mode);
    const sl = /^(slow|hang)-([0-9]+)$/.exec(mode);
    if (st) {
      status = Number(st[1]);
      body = '€'.repeat(1200);
    } else if (sl) {
      wait = Number(sl[2]);
    }
    const answer = () => {
      if (req.socket.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(body);
    };
    if (wait > 0) setTimeout(answer, wait);
    else answer();
  });
});
server.keepAliveTimeout = 30000;
server.listen(port, host, () => {
  process.stdout.write(JSON.stringify({ ready: true, host, port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => {
  if (log) log.end(() => process.exit(0));
  else process.exit(0);
});
