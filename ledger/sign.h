/*
 * sign.h - signed evidence: Ed25519 keys (libcrypto EVP_PKEY_ED25519), run
 * signatures, the repository's trusted keys, and the checks that verify and
 * the evidence provider make.
 *
 * Keys. A private key is a PKCS#8 PEM file, mode 0600, in the key directory
 * ($LEDGER_KEY_DIR, else $HOME/.config/ledger/keys) named NAME.pem, NAME
 * matching [A-Za-z0-9._-]{1,64} and not starting with '.'. A public key is
 * written as one line: "ed25519 <base64 of the raw 32 bytes> NAME".
 *
 * Signatures. A signed run carries runs/<seq>-<id12>/signature.json in the
 * same commit as its manifest:
 *   {"format":1,"alg":"ed25519","key":"<base64 pub>","signed":"<run id>","sig":"<base64>"}
 * The signature is over the 64 ASCII bytes of the run id, which is the
 * SHA-256 of the manifest bytes: it covers every output digest and the
 * study, but not the run's place (format 2 keeps seq/prev in chain.json), so
 * a signature survives `ledger sync` re-chaining the run. Its place is
 * checked by the chain (verify) and by lg_sign_evidence_check's link check.
 *
 * Trust. A trusted-keys file lists public keys, one line each as above;
 * blank lines and lines starting with '#' are ignored; the name is optional.
 * <repo root>/ledger-trusted-keys is the work tree's copy (`ledger key trust`
 * edits it); verification takes its keys from the trust root instead (below).
 */
#ifndef LG_SIGN_H
#define LG_SIGN_H

#include <git2.h>
#include <stddef.h>

#include "base/base.h"
#include "ledger/ledger.h"
#include "ledger/problems.h"

#define LG_SIGN_FILE "signature.json"
#define LG_TRUSTED_KEYS_FILE "ledger-trusted-keys"
#define LG_SIGN_FORMAT 1
#define LG_KEY_NAME_MAX 64
#define LG_SIGNATURE_MAX 4096u      /* largest signature.json we read */
#define LG_TRUSTED_KEYS_MAX (1u << 20) /* largest trusted-keys file we read */

typedef struct {
    unsigned char raw[32];
} lg_pubkey;

/* ---- base64 (standard alphabet, '=' padding, strict) ---------------------- */

/* Appends the base64 of n bytes to out. */
int lg_base64_encode(const unsigned char *data, size_t n, lg_buf *out);
/* Decodes exactly `want` bytes from s (no whitespace, canonical padding).
 * LG_EINPUT (no message set beyond "not base64 of N bytes") otherwise. */
int lg_base64_decode_exact(const char *s, unsigned char *out, size_t want);

/* ---- keys ------------------------------------------------------------------ */

/* 0 when `name` is a valid key name, else LG_EINPUT naming it. */
int lg_key_check_name(const char *name);
/* out = the key directory ($LEDGER_KEY_DIR or $HOME/.config/ledger/keys). */
int lg_key_dir(lg_buf *out);
/* Resolves a key reference to the path of a private key and checks that it
 * loads: a NAME means <key dir>/NAME.pem, anything with a '/' is a path.
 * LG_ENOTFOUND (message names the path and says 'ledger key generate'),
 * LG_EINPUT (not an Ed25519 key, or readable by group/others). */
int lg_key_resolve(const char *ref, lg_buf *path_out);
/* Generates a key pair and writes <key dir>/NAME.pem (mode 0600, the
 * directory made 0700). Refuses to overwrite an existing key (LG_EINPUT).
 * pub_out (may be NULL) receives the public key; path_out (may be NULL) the file. */
int lg_key_generate(const char *name, lg_pubkey *pub_out, lg_buf *path_out);
/* The public half of the private key at `pem_path`. */
int lg_key_load_public(const char *pem_path, lg_pubkey *out);
/* Appends "ed25519 <base64> NAME" (no newline; NAME omitted when NULL/""). */
int lg_key_format_line(const lg_pubkey *k, const char *name, lg_buf *out);
/* Parses a public key line ("ed25519 <base64> [NAME]", surrounding blanks
 * allowed). `where` prefixes messages. *name_out (may be NULL) gets a copy of
 * the name or NULL (free with lg_free). LG_EINPUT when malformed. */
int lg_key_parse_line(const char *line, const char *where, lg_pubkey *out, char **name_out);

/* ---- trusted keys ------------------------------------------------------------ */

typedef struct {
    lg_pubkey *keys;
    char **names; /* names[i] may be NULL */
    size_t n;
} lg_keyring;
#define LG_KEYRING_INIT {NULL, NULL, 0}

/* Loads a trusted-keys file into kr (released first). A missing file is an
 * empty keyring; a malformed line is LG_EINPUT naming file:line. */
int lg_keyring_load(const char *path, lg_keyring *kr);
/* Parses trusted-keys text (len bytes, not NUL-terminated) into kr; `where`
 * names it in messages ("REV:ledger-trusted-keys"). */
int lg_keyring_parse(const char *where, const char *text, size_t len, lg_keyring *kr);
/* <repo root>/ledger-trusted-keys into kr (the work tree's copy: `ledger key`
 * edits it; verify and check never trust it, see lg_trust_root_load). */
int lg_keyring_load_repo(lg_ledger *lg, lg_keyring *kr);
void lg_keyring_release(lg_keyring *kr);
/* Index of k in kr, or -1. */
long lg_keyring_find(const lg_keyring *kr, const lg_pubkey *k);
/* Appends k (with name, may be NULL) to the trusted-keys file at `path`
 * (atomic rewrite; the file is created with a header comment when missing).
 * *added = 0 when the key was already listed (nothing written). */
int lg_keyring_trust(const char *path, const lg_pubkey *k, const char *name, int *added);

/* ---- the trust root (where --require-signed takes its keys) ---------------------
 *
 * A contributor who can change the work tree can add a key to
 * ledger-trusted-keys in the same change that adds runs signed by it, so the
 * keys come from outside the change (lg_ledger_set_trust):
 *   1. --trusted-keys FILE (a file CI controls);
 *   2. --keys-ref REV: ledger-trusted-keys of REV's git tree (e.g. origin/main,
 *      a protected branch);
 *   3. $LEDGER_TRUSTED_KEYS (a file path), when neither flag is given;
 *   4. with --base R/NAME (a remote-tracking ref) and none of the above:
 *      ledger-trusted-keys of R/HEAD, else R/main, else R/master.
 * Otherwise LG_EINPUT: the work tree's file is never the trust root. */

/* Loads the trust root of lg (lg_ledger_trust) into kr; source (may be NULL)
 * gets a description ("origin/main:ledger-trusted-keys"). Used by verify and
 * by the evidence provider (check --require-signed). */
int lg_trust_root_load(lg_ledger *lg, lg_keyring *kr, lg_buf *source);
/* Case 4 above: out = "refs/remotes/R/HEAD" (or main/master) for a base
 * that is a remote-tracking ref; LG_ENOTFOUND when there is none. */
int lg_trust_default_keys_ref(lg_ledger *lg, const char *base_ref, lg_buf *out);
/* Warnings (area "trust") for keys the work tree's ledger-trusted-keys adds
 * to or removes from the trust root: neither change is honoured. */
int lg_trust_root_report_worktree(lg_ledger *lg, const lg_keyring *root, const char *source, lg_problems *ps);

/* ---- signatures -------------------------------------------------------------- */

/* Signs run_id with the private key at key_path; appends signature.json's
 * bytes (ending with a newline) to json_out. */
int lg_sign_run(const char *key_path, const char *run_id, lg_buf *json_out);
/* Signs and stores signature.json as a blob of repo (for lg_ledger_record). */
int lg_sign_run_blob(git_repository *repo, const char *key_path, const char *run_id, git_oid *blob_out);
/* Checks signature.json bytes for run_id: 0 when well formed, for this run
 * and valid (signer_out, may be NULL, gets the key); LG_ECHECK with a message
 * saying what is wrong otherwise. */
int lg_sign_check(const char *json, size_t len, const char *run_id, lg_pubkey *signer_out);

/* Signature state of one run of the ledger tip (lg_run_info from
 * lg_ledger_runs). Returns 1 when the run is signed with a valid signature by
 * a key of kr, 0 when it is not (reason says why: unsigned, bad signature,
 * untrusted key), < 0 on error. *bad (may be NULL) is set to 1 when a
 * signature is present but invalid (always a problem, trusted or not). */
int lg_sign_check_run(lg_ledger *lg, const lg_run_info *ri, const lg_keyring *kr, lg_buf *reason, int *bad);

/* Verify's part: every run of the tip with a signature.json has a valid one
 * (else an error problem, area "signature"); with require_signed every run
 * must also be signed by a key of `trusted` (the trust root; NULL = none).
 * *n_signed (may be NULL) counts runs with a valid signature by a trusted
 * key. Errors only when it cannot run. */
int lg_sign_verify_runs(lg_ledger *lg, const lg_keyring *trusted, int require_signed, lg_problems *ps,
                        size_t *n_signed);

/* The evidence provider's part under --require-signed: 1 when run_id is a
 * run of the tip, signed by a trusted key with a valid signature AND linked
 * into this ledger's chain (its directory names its id, its seq is unique,
 * its prev is the id of run seq-1, or null for seq 1: a run copied in from
 * another ledger fails here even with a valid signature); 0 with `reason`
 * set otherwise; < 0 on error. kr is the trusted keys. */
int lg_sign_evidence_check(lg_ledger *lg, const char *run_id, const lg_keyring *kr, lg_buf *reason);

#endif
