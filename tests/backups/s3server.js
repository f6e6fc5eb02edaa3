// A local S3-compatible server for the backups tests: the maintained fork of
// s3rver, which computes and compares AWS Signature V4 (s3rver 3.x accepts
// any V4 signature), with one bucket and the fixed credentials
// S3RVER / S3RVER. Every request is logged as "METHOD URL STATUS" to LOG,
// so a test can tell a multipart upload from a single PUT.
//
// usage: node s3server.js DIR BUCKET LOG   (prints "listening PORT")
'use strict';
const fs = require('fs');
const S3rver = require('@20minutes/s3rver');

const [dir, bucket, log] = process.argv.slice(2);
const server = new S3rver({
  port: 0,
  address: '127.0.0.1',
  silent: true,
  directory: dir,
  configureBuckets: [{ name: bucket }],
  allowMismatchedSignatures: false,
});
server.middleware.unshift(async (ctx, next) => {
  try {
    await next();
  } finally {
    fs.appendFileSync(log, `${ctx.method} ${ctx.url} ${ctx.status}\n`);
  }
});
server.run().then((addr) => console.log(`listening ${addr.port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
