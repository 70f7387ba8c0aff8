/*
 * manifest.h - run manifests: canonical JSON, validation of output names and
 * of the results format.
 *
 * A run's id is the SHA-256 of its manifest's canonical bytes, so the
 * canonical form is part of the on-disk format (manifest "format": 2):
 *   - objects: keys sorted by byte value, no duplicate keys, no whitespace;
 *   - strings: UTF-8 as given; '"' and '\\' escaped as \" and \\, bytes
 *     below 0x20 as \u00XX (lowercase hex), nothing else escaped;
 *   - numbers: integral values with |v| < 2^53 as integers ("3", "-2");
 *     others as the shortest of %.15g/%.16g/%.17g that parses back to the
 *     same double; NaN and Inf are rejected;
 *   - true, false, null as such; the document ends without a newline.
 * Parsing the canonical bytes with cJSON and printing them again gives the
 * same bytes, which is what verify checks.
 */
#ifndef LG_MANIFEST_H
#define LG_MANIFEST_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define LG_MANIFEST_FORMAT 2
#define LG_CHAIN_FORMAT 2
#define LG_NONCE_HEX 32 /* manifest "nonce": 128 random bits, lowercase hex */
#define LG_CHAIN_FILE "chain.json"
#define LG_MANIFEST_MAX (64u * 1024 * 1024) /* largest manifest we read */

/* Appends the canonical serialisation of `item` to out. LG_EINPUT (message
 * naming the JSON path) for NaN/Inf or duplicate keys. */
int lg_json_canonical(const cJSON *item, lg_buf *out);

/* Checks an output name: 1..255 bytes, relative, '/'-separated components
 * none of which is empty, ".", ".." or ".git" (any case); no NUL, control
 * bytes or backslash.
 * Returns 0 or LG_EINPUT with a message naming the name. */
int lg_manifest_check_name(const char *name);

/* Checks that `results` follows the results format (ledger/FORMAT.md,
 * "Results format"). `where` prefixes messages (a file name). */
int lg_results_check(const cJSON *results, const char *where);

/* Checks the fields of a parsed manifest that the index and verify rely on:
 * format == 2 (a format-1 manifest is refused with "format 1 manifest"),
 * kind/study/status/created strings, a nonce of 32 lowercase hex digits
 * (so that identical content recorded twice has two ids), no "seq"/"prev" (they live in
 * chain.json), outputs sorted by unique valid names with valid digests. */
int lg_manifest_check(const cJSON *m, const char *where);

/* A chain entry, runs/<seq>-<id12>/chain.json (ledger format 2): where a run
 * sits, kept apart from what it is (the manifest), so that a run keeps its id
 * and signature when it is re-chained (ledger sync). Canonical JSON, exactly
 *   {"format":2,"prev":<entry digest of run seq-1, or null>,"run":"<id>","seq":N}
 * The entry digest is the SHA-256 of these bytes; each entry names its
 * predecessor's digest, so the entries form a hash chain over the order. */
typedef struct {
    long seq;
    char run_id[65];
    char prev[65];   /* "" for null (seq 1) */
    char digest[65]; /* SHA-256 of the chain.json bytes */
} lg_chain_link;

/* Appends the canonical chain.json bytes (prev NULL for the first run). */
int lg_chain_json_make(long seq, const char *run_id, const char *prev, lg_buf *out);
/* Parses and checks chain.json bytes: the four keys, types, canonical form.
 * out->digest = SHA-256(bytes). LG_EINPUT naming `where` otherwise. */
int lg_chain_json_parse(const char *bytes, size_t len, const char *where, lg_chain_link *out);

/* Reads a string member or returns NULL (no allocation). */
const char *lg_json_str(const cJSON *obj, const char *key);

#endif
