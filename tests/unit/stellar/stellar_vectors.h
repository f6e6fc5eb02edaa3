/* Shared by the Stellar unit suites: the reference vectors generated with
 * @stellar/stellar-base 15.0.0 (tests/fixtures/stellar-vectors.json). */
#ifndef NOVA_TESTS_STELLAR_VECTORS_H
#define NOVA_TESTS_STELLAR_VECTORS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* Parsed once per process; never freed (the process ends with the suite).
 * Aborts the test when the file is missing or invalid. */
const cJSON *vectors(void);

/* Follows a path of object keys / array indexes ("transactions", "0", ...). */
const cJSON *vget(const cJSON *root, const char *path);
const char *vstr(const cJSON *root, const char *path);

/* Hex string to bytes; returns the length (aborts the test on bad hex). */
size_t unhex(const char *hex, uint8_t *out, size_t cap);

#endif
