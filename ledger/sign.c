/*
 * sign.c - Ed25519 keys and run signatures (see sign.h); the trusted keys
 * and the trust root are in sign_trust.c.
 *
 * Why Ed25519 through libcrypto: deterministic signatures (no nonce to get
 * wrong), 32-byte keys that fit on one line of a tracked file, and libcrypto
 * is already linked for SHA-256. We sign the run id (the SHA-256 of the
 * canonical manifest bytes) rather than the manifest itself: the id is what
 * every other part of the ledger names, and the manifest holds the digest of
 * every output, its seq and its prev link, so signing the id binds all of it.
 *
 * Invariants:
 *   - a private key file is created 0600 through a temp file and link(2), so a
 *     crash never leaves a half-written key under its final name and an
 *     existing key is never overwritten;
 *   - nothing here trusts signature.json: every field is type-checked, the
 *     key and signature must decode to exactly 32 and 64 bytes, and "signed"
 *     must equal the id recomputed from the manifest bytes;
 *   - a present but invalid signature is always reported, whether or not the
 *     key is trusted and whether or not signatures are required.
 */
#include "ledger/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base/sha256.h"
#include "ledger/manifest.h"

static int ssl_fail(int code, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return lg_error_set(code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* ---- base64 --------------------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int lg_base64_encode(const unsigned char *data, size_t n, lg_buf *out)
{
    size_t i;
    int err = 0;
    for (i = 0; i < n && err >= 0; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        char q[4];
        if (i + 1 < n)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < n)
            v |= data[i + 2];
        q[0] = b64_alphabet[(v >> 18) & 63];
        q[1] = b64_alphabet[(v >> 12) & 63];
        q[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? b64_alphabet[v & 63] : '=';
        err = lg_buf_put(out, q, 4);
    }
    return n ? err : lg_buf_grow(out, 0);
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

int lg_base64_decode_exact(const char *s, unsigned char *out, size_t want)
{
    size_t len = s ? strlen(s) : 0, groups = (want + 2) / 3, i, o = 0;
    if (len != groups * 4)
        return lg_error_set(LG_EINPUT, "not the base64 of %zu bytes", want);
    for (i = 0; i < len; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
                return lg_error_set(LG_EINPUT, "not the base64 of %zu bytes", want);
            }
        }
        {
            unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
            unsigned char b[3] = {(unsigned char)(x >> 16), (unsigned char)(x >> 8), (unsigned char)x};
            size_t take = 3 - (size_t)pad;
            /* padding must match the length and the unused bits must be zero (one encoding per value) */
            if (o + take != (i + 4 == len ? want : o + 3) || (pad && (x & ((1u << (8 * pad)) - 1)) != 0))
                return lg_error_set(LG_EINPUT, "not the base64 of %zu bytes", want);
            memcpy(out + o, b, take);
            o += take;
        }
    }
    return o == want ? 0 : lg_error_set(LG_EINPUT, "not the base64 of %zu bytes", want);
}

/* ---- keys ------------------------------------------------------------------------ */

int lg_key_check_name(const char *name)
{
    size_t i, n = name ? strlen(name) : 0;
    if (n == 0 || n > LG_KEY_NAME_MAX || name[0] == '.')
        return lg_error_set(LG_EINPUT, "key name '%.80s': must be 1 to %d characters of [A-Za-z0-9._-], not starting with '.'",
                            name ? name : "", LG_KEY_NAME_MAX);
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return lg_error_set(LG_EINPUT, "key name '%.80s': character %d is not one of [A-Za-z0-9._-]", name, (int)i);
    }
    return 0;
}

int lg_key_dir(lg_buf *out)
{
    const char *env = getenv("LEDGER_KEY_DIR"), *home = getenv("HOME");
    lg_buf_clear(out);
    if (env && *env)
        return lg_buf_puts(out, env);
    if (!home || !*home)
        return lg_error_set(LG_EINPUT, "no key directory: set LEDGER_KEY_DIR or HOME");
    return lg_buf_printf(out, "%s/.config/ledger/keys", home);
}

static int key_path_of(const char *name, lg_buf *out)
{
    lg_buf dir = LG_BUF_INIT;
    int err;
    if ((err = lg_key_check_name(name)) < 0 || (err = lg_key_dir(&dir)) < 0)
        goto out;
    lg_buf_clear(out);
    err = lg_buf_printf(out, "%s/%s.pem", dir.ptr, name);
out:
    lg_buf_release(&dir);
    return err;
}

/* Loads an Ed25519 private key; *out freed with EVP_PKEY_free. */
static int load_private(const char *path, EVP_PKEY **out)
{
    struct stat sb;
    FILE *f = NULL;
    EVP_PKEY *k = NULL;
    int fd, err = 0;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s%s", path, strerror(errno),
                            errno == ENOENT ? " (make one with 'ledger key generate')" : "");
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lg_error_set(LG_EINPUT, "%s: not a regular file", path);
    }
    if (sb.st_mode & 077) {
        close(fd);
        return lg_error_set(LG_EINPUT, "%s: private key readable by group or others (mode %03o): chmod 600 it", path,
                            (unsigned)(sb.st_mode & 0777));
    }
    if (sb.st_size > 64 * 1024) {
        close(fd);
        return lg_error_set(LG_EINPUT, "%s: too large for a private key (%lld bytes)", path, (long long)sb.st_size);
    }
    if (!(f = fdopen(fd, "r"))) {
        close(fd);
        return lg_error_set(LG_EIO, "%s: %s", path, strerror(errno));
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) {
        ERR_clear_error();
        return lg_error_set(LG_EINPUT, "%s: not a PEM private key", path);
    }
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return lg_error_set(LG_EINPUT, "%s: not an Ed25519 key", path);
    }
    *out = k;
    return err;
}

static int raw_public(EVP_PKEY *k, lg_pubkey *out)
{
    size_t n = sizeof out->raw;
    if (EVP_PKEY_get_raw_public_key(k, out->raw, &n) != 1 || n != sizeof out->raw)
        return ssl_fail(LG_EINTERNAL, "reading an Ed25519 public key");
    return 0;
}

int lg_key_resolve(const char *ref, lg_buf *path_out)
{
    EVP_PKEY *k = NULL;
    int err;
    if (!ref || !*ref)
        return lg_error_set(LG_EINPUT, "no signing key given");
    lg_buf_clear(path_out);
    if (strchr(ref, '/'))
        err = lg_buf_puts(path_out, ref);
    else
        err = key_path_of(ref, path_out);
    if (err < 0)
        return err;
    err = load_private(path_out->ptr, &k);
    EVP_PKEY_free(k);
    return err;
}

int lg_key_load_public(const char *pem_path, lg_pubkey *out)
{
    EVP_PKEY *k = NULL;
    int err = load_private(pem_path, &k);
    if (err >= 0)
        err = raw_public(k, out);
    EVP_PKEY_free(k);
    return err;
}

int lg_key_generate(const char *name, lg_pubkey *pub_out, lg_buf *path_out)
{
    lg_buf dir = LG_BUF_INIT, path = LG_BUF_INIT, tmp = LG_BUF_INIT;
    EVP_PKEY_CTX *pc = NULL;
    EVP_PKEY *k = NULL;
    FILE *f = NULL;
    lg_pubkey pub;
    int fd = -1, err, tmp_made = 0;

    if ((err = lg_key_check_name(name)) < 0 || (err = lg_key_dir(&dir)) < 0 || (err = lg_mkdir_p(dir.ptr, 0700)) < 0 ||
        (err = lg_buf_printf(&path, "%s/%s.pem", dir.ptr, name)) < 0 ||
        (err = lg_buf_printf(&tmp, "%s.tmp.%ld", path.ptr, (long)getpid())) < 0)
        goto out;
    if (lg_path_exists(path.ptr)) {
        err = lg_error_set(LG_EINPUT, "%s: a key named '%s' exists already (keys are never overwritten)", path.ptr, name);
        goto out;
    }
    if (!(pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) || EVP_PKEY_keygen_init(pc) != 1 ||
        EVP_PKEY_keygen(pc, &k) != 1) {
        err = ssl_fail(LG_EINTERNAL, "generating an Ed25519 key");
        goto out;
    }
    if ((err = raw_public(k, &pub)) < 0)
        goto out;
    unlink(tmp.ptr);
    fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = lg_error_set(LG_EIO, "%s: %s", tmp.ptr, strerror(errno));
        goto out;
    }
    tmp_made = 1;
    if (!(f = fdopen(fd, "w"))) {
        err = lg_error_set(LG_EIO, "%s: %s", tmp.ptr, strerror(errno));
        goto out;
    }
    fd = -1;
    if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1) {
        err = ssl_fail(LG_EIO, "writing the private key");
        goto out;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        err = lg_error_set(LG_EIO, "%s: %s", tmp.ptr, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        err = lg_error_set(LG_EIO, "%s: %s", tmp.ptr, strerror(errno));
        goto out;
    }
    f = NULL;
    /* link(2) fails if the name exists: never overwrite a key, even in a race */
    if (link(tmp.ptr, path.ptr) < 0) {
        err = errno == EEXIST ? lg_error_set(LG_EINPUT, "%s: a key named '%s' exists already", path.ptr, name)
                              : lg_error_set(LG_EIO, "%s: %s", path.ptr, strerror(errno));
        goto out;
    }
    if ((err = lg_fsync_dir(dir.ptr)) < 0)
        goto out;
    if (pub_out)
        *pub_out = pub;
    if (path_out) {
        lg_buf_clear(path_out);
        err = lg_buf_puts(path_out, path.ptr);
    }
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp.ptr);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(pc);
    lg_buf_release(&dir);
    lg_buf_release(&path);
    lg_buf_release(&tmp);
    return err;
}

/* Here, beside the key type, not in sign_trust.c: the signature checks below
 * use it, and sign_trust.c builds on this file, never the other way. */
long lg_keyring_find(const lg_keyring *kr, const lg_pubkey *k)
{
    size_t i;
    for (i = 0; i < kr->n; i++)
        if (memcmp(kr->keys[i].raw, k->raw, sizeof k->raw) == 0)
            return (long)i;
    return -1;
}

int lg_key_format_line(const lg_pubkey *k, const char *name, lg_buf *out)
{
    int err = lg_buf_puts(out, "ed25519 ");
    if (err >= 0)
        err = lg_base64_encode(k->raw, sizeof k->raw, out);
    if (err >= 0 && name && *name)
        err = lg_buf_printf(out, " %s", name);
    return err;
}

int lg_key_parse_line(const char *line, const char *where, lg_pubkey *out, char **name_out)
{
    char tok[3][128];
    const char *s = line;
    int nt = 0;
    if (name_out)
        *name_out = NULL;
    while (*s) {
        size_t n;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (!*s)
            break;
        n = strcspn(s, " \t\r\n");
        if (nt == 3 || n >= sizeof tok[0])
            return lg_error_set(LG_EINPUT, "%s: expected 'ed25519 <base64 key> [NAME]'", where);
        memcpy(tok[nt], s, n);
        tok[nt++][n] = '\0';
        s += n;
    }
    if (nt < 2 || strcmp(tok[0], "ed25519") != 0)
        return lg_error_set(LG_EINPUT, "%s: expected 'ed25519 <base64 key> [NAME]'", where);
    if (lg_base64_decode_exact(tok[1], out->raw, sizeof out->raw) < 0)
        return lg_error_set(LG_EINPUT, "%s: the key is not the base64 of 32 bytes", where);
    if (nt == 3) {
        if (lg_key_check_name(tok[2]) < 0)
            return lg_error_wrap("%s", where);
        if (name_out && !(*name_out = lg_strdup(tok[2])))
            return LG_ENOMEM;
    }
    return 0;
}

/* ---- signatures --------------------------------------------------------------- */

int lg_sign_run(const char *key_path, const char *run_id, lg_buf *json_out)
{
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *mc = NULL;
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    lg_pubkey pub;
    int err;
    if (!lg_sha256_hex_valid(run_id))
        return lg_error_set(LG_EINPUT, "signing: '%.80s' is not a run id", run_id);
    if ((err = load_private(key_path, &k)) < 0 || (err = raw_public(k, &pub)) < 0)
        goto out;
    if (!(mc = EVP_MD_CTX_new()) || EVP_DigestSignInit(mc, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(mc, sig, &siglen, (const unsigned char *)run_id, 64) != 1 || siglen != sizeof sig) {
        err = ssl_fail(LG_EINTERNAL, "signing the run");
        goto out;
    }
    if ((err = lg_buf_printf(json_out, "{\"format\":%d,\"alg\":\"ed25519\",\"key\":\"", LG_SIGN_FORMAT)) < 0 ||
        (err = lg_base64_encode(pub.raw, sizeof pub.raw, json_out)) < 0 ||
        (err = lg_buf_printf(json_out, "\",\"signed\":\"%s\",\"sig\":\"", run_id)) < 0 ||
        (err = lg_base64_encode(sig, sizeof sig, json_out)) < 0 || (err = lg_buf_puts(json_out, "\"}\n")) < 0)
        goto out;
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(k);
    return err;
}

int lg_sign_run_blob(git_repository *repo, const char *key_path, const char *run_id, git_oid *blob_out)
{
    lg_buf j = LG_BUF_INIT;
    int err = lg_sign_run(key_path, run_id, &j);
    if (err >= 0 && git_blob_create_from_buffer(blob_out, repo, j.ptr, j.len) < 0) {
        const git_error *e = git_error_last();
        err = lg_error_set(LG_EIO, "git: writing %s: %s", LG_SIGN_FILE, e && e->message ? e->message : "failed");
    }
    lg_buf_release(&j);
    return err;
}

int lg_sign_check(const char *json, size_t len, const char *run_id, lg_pubkey *signer_out)
{
    static const char *const keys[] = {"format", "alg", "key", "signed", "sig"};
    cJSON *j = NULL;
    const cJSON *v;
    const char *key, *signed_id, *sig64;
    unsigned char sig[64];
    lg_pubkey pub;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *mc = NULL;
    size_t i, nkeys = 0;
    int err = 0, rc;

    if (len > LG_SIGNATURE_MAX)
        return lg_error_set(LG_ECHECK, "%s: %zu bytes (limit %u)", LG_SIGN_FILE, len, LG_SIGNATURE_MAX);
    if (!(j = cJSON_ParseWithLength(json, len)) || !cJSON_IsObject(j)) {
        err = lg_error_set(LG_ECHECK, "%s: not a JSON object", LG_SIGN_FILE);
        goto out;
    }
    cJSON_ArrayForEach(v, j) nkeys++;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(j, keys[i])) {
            err = lg_error_set(LG_ECHECK, "%s: \"%s\" is missing", LG_SIGN_FILE, keys[i]);
            goto out;
        }
    if (nkeys != sizeof keys / sizeof keys[0]) {
        err = lg_error_set(LG_ECHECK, "%s: unknown or repeated keys (expected exactly format, alg, key, signed, sig)",
                           LG_SIGN_FILE);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsNumber(v) || v->valuedouble != LG_SIGN_FORMAT) {
        err = lg_error_set(LG_ECHECK, "%s: \"format\" is not %d", LG_SIGN_FILE, LG_SIGN_FORMAT);
        goto out;
    }
    if (!lg_json_str(j, "alg") || strcmp(lg_json_str(j, "alg"), "ed25519") != 0) {
        err = lg_error_set(LG_ECHECK, "%s: \"alg\" is not \"ed25519\"", LG_SIGN_FILE);
        goto out;
    }
    key = lg_json_str(j, "key");
    signed_id = lg_json_str(j, "signed");
    sig64 = lg_json_str(j, "sig");
    if (!key || lg_base64_decode_exact(key, pub.raw, sizeof pub.raw) < 0) {
        err = lg_error_set(LG_ECHECK, "%s: \"key\" is not the base64 of a 32-byte public key", LG_SIGN_FILE);
        goto out;
    }
    if (!sig64 || lg_base64_decode_exact(sig64, sig, sizeof sig) < 0) {
        err = lg_error_set(LG_ECHECK, "%s: \"sig\" is not the base64 of a 64-byte signature", LG_SIGN_FILE);
        goto out;
    }
    if (!signed_id || strcmp(signed_id, run_id) != 0) {
        err = lg_error_set(LG_ECHECK, "%s: signs %.12s, not this run %.12s (copied from another run)", LG_SIGN_FILE,
                           signed_id ? signed_id : "?", run_id);
        goto out;
    }
    if (!(pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub.raw, sizeof pub.raw))) {
        err = lg_error_set(LG_ECHECK, "%s: \"key\" is not a valid Ed25519 public key", LG_SIGN_FILE);
        goto out;
    }
    if (!(mc = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk) != 1) {
        err = ssl_fail(LG_EINTERNAL, "verifying a signature");
        goto out;
    }
    rc = EVP_DigestVerify(mc, sig, sizeof sig, (const unsigned char *)run_id, strlen(run_id));
    ERR_clear_error();
    if (rc != 1) {
        err = lg_error_set(LG_ECHECK, "%s: the signature does not verify (forged or modified)", LG_SIGN_FILE);
        goto out;
    }
    if (signer_out)
        *signer_out = pub;
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(pk);
    cJSON_Delete(j);
    return err;
}

/* Reads runs/<dir>/signature.json of a run: 1 read, 0 absent, < 0 error. */
static int read_signature(lg_ledger *lg, const lg_run_info *ri, lg_buf *out)
{
    git_tree *t = NULL;
    git_tree_entry *e = NULL;
    int err = 0;
    if (git_tree_lookup(&t, lg_ledger_repo(lg), &ri->tree) < 0)
        return lg_error_set(LG_EIO, "%s: the run's tree is unreadable", ri->dir);
    if (git_tree_entry_bypath(&e, t, LG_SIGN_FILE) == 0) {
        if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
            err = lg_error_set(LG_ECHECK, "%s: not a file", LG_SIGN_FILE);
        else if ((err = lg_ledger_read_blob(lg, git_tree_entry_id(e), LG_SIGNATURE_MAX, out)) < 0)
            err = lg_error_set(LG_ECHECK, "%s: larger than %u bytes", LG_SIGN_FILE, LG_SIGNATURE_MAX);
        else
            err = 1;
    }
    git_tree_entry_free(e);
    git_tree_free(t);
    return err;
}

static void fingerprint(const lg_pubkey *k, char out[16])
{
    lg_buf b = LG_BUF_INIT;
    if (lg_base64_encode(k->raw, sizeof k->raw, &b) >= 0)
        snprintf(out, 16, "%.12s", b.ptr);
    else
        snprintf(out, 16, "?");
    lg_buf_release(&b);
}

int lg_sign_check_run(lg_ledger *lg, const lg_run_info *ri, const lg_keyring *kr, lg_buf *reason, int *bad)
{
    lg_buf bytes = LG_BUF_INIT;
    lg_pubkey signer;
    char fp[16];
    int rc, err;
    if (bad)
        *bad = 0;
    lg_buf_clear(reason);
    rc = read_signature(lg, ri, &bytes);
    if (rc == 0) {
        err = lg_buf_printf(reason, "run %.12s is not signed (no %s)", ri->run_id, LG_SIGN_FILE);
        goto out;
    }
    if (rc >= 0)
        rc = lg_sign_check(bytes.ptr, bytes.len, ri->run_id, &signer);
    if (rc == LG_ECHECK) {
        if (bad)
            *bad = 1;
        err = lg_buf_printf(reason, "run %.12s: %s", ri->run_id, lg_error_msg());
        goto out;
    }
    if ((err = rc) < 0)
        goto out;
    if (lg_keyring_find(kr, &signer) < 0) {
        fingerprint(&signer, fp);
        err = lg_buf_printf(reason, "run %.12s is signed by key %s..., which is not in the trust root", ri->run_id,
                            fp);
        goto out;
    }
    err = 1;
out:
    lg_buf_release(&bytes);
    return err;
}

int lg_sign_verify_runs(lg_ledger *lg, const lg_keyring *trusted, int require_signed, lg_problems *ps,
                        size_t *n_signed)
{
    static const lg_keyring none = LG_KEYRING_INIT;
    const lg_keyring *kr = trusted ? trusted : &none;
    lg_run_info *runs = NULL;
    lg_buf reason = LG_BUF_INIT;
    size_t n = 0, i, good = 0;
    char subject[128];
    int err = 0, rc, bad;

    if (n_signed)
        *n_signed = 0;
    if ((err = lg_ledger_runs(lg, &runs, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        snprintf(subject, sizeof subject, "run %s", runs[i].dir + 5); /* skip "runs/" */
        if ((rc = lg_sign_check_run(lg, &runs[i], kr, &reason, &bad)) < 0) {
            err = rc;
            goto out;
        }
        if (rc == 1) {
            good++;
            continue;
        }
        if (bad)
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "signature", subject, "%s", reason.ptr);
        else if (require_signed)
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "signature", subject, "%s (--require-signed)", reason.ptr);
        if (err < 0)
            goto out;
    }
    if (n_signed)
        *n_signed = good;
out:
    lg_buf_release(&reason);
    lg_free(runs);
    return err;
}

int lg_sign_evidence_check(lg_ledger *lg, const char *run_id, const lg_keyring *kr, lg_buf *reason)
{
    lg_run_info *runs = NULL;
    const lg_run_info *ri = NULL, *before = NULL;
    lg_chain_link link, blink;
    size_t n = 0, i, same_seq = 0, n_before = 0;
    char id12[13];
    long seq;
    int err;

    lg_buf_clear(reason);
    if ((err = lg_ledger_runs(lg, &runs, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++)
        if (strcmp(runs[i].run_id, run_id) == 0)
            ri = &runs[i];
    if (!ri) {
        err = lg_buf_printf(reason, "run %.12s is not in the ledger tree", run_id);
        goto out;
    }
    if ((err = lg_sign_check_run(lg, ri, kr, reason, NULL)) != 1)
        goto out; /* 0 with the reason, or an error */
    lg_buf_clear(reason);
    err = 0;
    /* chain link (chain.json): a run copied from another ledger keeps its old entry */
    if (lg_ledger_parse_dirname(ri->dir + 5, &seq, id12) < 0 || strncmp(id12, run_id, 12) != 0) {
        lg_error_clear();
        err = lg_buf_printf(reason, "run %.12s sits in directory %s, which does not name it", run_id, ri->dir);
        goto out;
    }
    for (i = 0; i < n; i++) {
        same_seq += runs[i].seq == ri->seq;
        if (runs[i].seq == ri->seq - 1) {
            before = &runs[i];
            n_before++;
        }
    }
    if (lg_ledger_chain_link(lg, ri, &link) < 0) {
        err = lg_buf_printf(reason, "run %.12s: %s", run_id, lg_error_msg());
        lg_error_clear();
        goto out;
    }
    if (same_seq != 1 || link.seq != ri->seq || strcmp(link.run_id, run_id) != 0) {
        err = lg_buf_printf(reason, "run %.12s: seq %ld is not unique in this ledger or disagrees with its "
                                    LG_CHAIN_FILE " (copied in from another ledger?)",
                            run_id, ri->seq);
        goto out;
    }
    if (ri->seq > 1 && (n_before != 1 || lg_ledger_chain_link(lg, before, &blink) < 0)) {
        lg_error_clear();
        err = lg_buf_printf(reason, "run %.12s is not linked into this ledger's chain: run %ld here is %s", run_id,
                            ri->seq - 1, n_before == 1 ? "unreadable" : "missing or ambiguous");
        goto out;
    }
    if (ri->seq == 1 ? link.prev[0] != '\0' : strcmp(link.prev, blink.digest) != 0) {
        err = lg_buf_printf(reason,
                            "run %.12s is not linked into this ledger's chain: its prev is %.12s but the entry of run "
                            "%ld here is %.12s (copied in from another ledger?)",
                            run_id, link.prev[0] ? link.prev : "null", ri->seq - 1,
                            ri->seq == 1 ? "(none)" : blink.digest);
        goto out;
    }
    err = 1;
out:
    lg_free(runs);
    return err;
}
