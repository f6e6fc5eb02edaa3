/*
 * cmd_stellar - `nova-worker stellar <command>`.
 *
 * Offline commands (no network, cfg may be NULL):
 *   sign-payment   build and sign a payment transaction; prints the signed
 *                  envelope (base64) and the transaction hash (hex), one per line
 *   decode-result  decode a TransactionResult (base64) into JSON
 *   decode-scval   decode ScVal XDR (base64) into JSON
 * Network command (runs its own short uv loop and HTTP client):
 *   check          the [stellar] section against Horizon and the RPC; one
 *                  "ok: ..." / "error: ..." line per finding on stdout
 *
 * Returns the process exit code: 0 success, 1 failure, 2 usage error.
 */
#ifndef NOVA_RUNTIME_CMD_STELLAR_H
#define NOVA_RUNTIME_CMD_STELLAR_H

struct nova__config;

/* argv[0] is "stellar". When cfg is not NULL its [stellar] section supplies
 * defaults (passphrase, asset, base fee) for options left out; `check`
 * needs it (NULL: an error naming the missing config file). */
int nova__cmd_stellar(const struct nova__config *cfg, int argc, char **argv);

#endif
