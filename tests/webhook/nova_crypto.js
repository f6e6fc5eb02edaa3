// Webhook secrets at rest, exactly as Nova's API stores them: AES-256-GCM
// under FIELD_ENCRYPTION_KEY (64 hex digits = 32 bytes), a random 12-byte
// iv, the value base64(iv | tag16 | ciphertext), written with Node's crypto.
//
// usage: node nova_crypto.js encrypt KEY_HEX PLAINTEXT   prints the stored value
//        node nova_crypto.js decrypt KEY_HEX STORED      prints the plaintext
'use strict';
const crypto = require('crypto');

function encrypt(keyHex, plaintext) {
  const key = Buffer.from(keyHex, 'hex');
  if (key.length !== 32) throw new Error('FIELD_ENCRYPTION_KEY must be 64 hex digits');
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
}

function decrypt(keyHex, stored) {
  const blob = Buffer.from(stored, 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), blob.subarray(0, 12));
  decipher.setAuthTag(blob.subarray(12, 28));
  return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]).toString('utf8');
}

module.exports = { encrypt, decrypt };

if (require.main === module) {
  const [cmd, key, value] = process.argv.slice(2);
  if (cmd === 'encrypt') console.log(encrypt(key, value));
  else if (cmd === 'decrypt') console.log(decrypt(key, value));
  else {
    console.error('usage: node nova_crypto.js encrypt|decrypt KEY_HEX VALUE');
    process.exit(2);
  }
}
