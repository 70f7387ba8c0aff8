/*
 * manifest.c - canonical JSON and manifest/results validation (manifest.h).
 *
 * The canonical writer is ours rather than cJSON_PrintUnformatted because
 * the bytes are hashed: cJSON keeps insertion order and its number format is
 * not a documented contract. Sorting is done on a small array of child
 * pointers per object (manifests are small: thousands of keys at most).
 */
#include "ledger/manifest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sha256.h"

const char *lg_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int put_string(lg_buf *out, const char *s)
{
    int err;
    if ((err = lg_buf_put(out, "\"", 1)) < 0)
        return err;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"')
            err = lg_buf_put(out, "\\\"", 2);
        else if (c == '\\')
            err = lg_buf_put(out, "\\\\", 2);
        else if (c < 0x20)
            err = lg_buf_printf(out, "\\u%04x", c);
        else
            err = lg_buf_put(out, s, 1);
        if (err < 0)
            return err;
    }
    return lg_buf_put(out, "\"", 1);
}

static int put_number(lg_buf *out, double v, const char *path)
{
    char tmp[64];
    int prec;
    if (!isfinite(v))
        return lg_error_set(LG_EINPUT, "%s: NaN or Inf cannot be stored in a manifest", path);
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        if (v == 0)
            v = 0; /* -0 prints as 0 */
        return lg_buf_printf(out, "%.0f", v);
    }
    for (prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return lg_buf_puts(out, tmp);
}

static int cmp_child(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static int canon(const cJSON *item, lg_buf *out, lg_buf *path)
{
    int err = 0;
    size_t plen = path->len;
    if (cJSON_IsNull(item))
        return lg_buf_puts(out, "null");
    if (cJSON_IsTrue(item))
        return lg_buf_puts(out, "true");
    if (cJSON_IsFalse(item))
        return lg_buf_puts(out, "false");
    if (cJSON_IsNumber(item))
        return put_number(out, item->valuedouble, path->len ? path->ptr : "(root)");
    if (cJSON_IsString(item))
        return put_string(out, item->valuestring ? item->valuestring : "");
    if (cJSON_IsArray(item)) {
        const cJSON *c;
        int i = 0;
        if ((err = lg_buf_put(out, "[", 1)) < 0)
            return err;
        cJSON_ArrayForEach(c, item) {
            if ((i && (err = lg_buf_put(out, ",", 1)) < 0) || (err = lg_buf_printf(path, "[%d]", i)) < 0 ||
                (err = canon(c, out, path)) < 0)
                return err;
            path->len = plen;
            path->ptr[plen] = '\0';
            i++;
        }
        return lg_buf_put(out, "]", 1);
    }
    if (cJSON_IsObject(item)) {
        const cJSON *c, **kids = NULL;
        size_t n = 0, i;
        cJSON_ArrayForEach(c, item) n++;
        if (n && !(kids = lg_calloc(n, sizeof(*kids))))
            return LG_ENOMEM;
        i = 0;
        cJSON_ArrayForEach(c, item) kids[i++] = c;
        if (n)
            qsort(kids, n, sizeof(*kids), cmp_child);
        if ((err = lg_buf_put(out, "{", 1)) < 0)
            goto obj_out;
        for (i = 0; i < n; i++) {
            if (i && strcmp(kids[i - 1]->string, kids[i]->string) == 0) {
                err = lg_error_set(LG_EINPUT, "%s: duplicate key \"%s\"", plen ? path->ptr : "(root)", kids[i]->string);
                goto obj_out;
            }
            if ((i && (err = lg_buf_put(out, ",", 1)) < 0) || (err = put_string(out, kids[i]->string)) < 0 ||
                (err = lg_buf_put(out, ":", 1)) < 0)
                goto obj_out;
            if ((err = lg_buf_printf(path, "%s%s", plen ? "." : "", kids[i]->string)) < 0 ||
                (err = canon(kids[i], out, path)) < 0)
                goto obj_out;
            path->len = plen;
            path->ptr[plen] = '\0';
        }
        err = lg_buf_put(out, "}", 1);
    obj_out:
        lg_free(kids);
        return err;
    }
    return lg_error_set(LG_EINPUT, "%s: value of unknown JSON type", plen ? path->ptr : "(root)");
}

int lg_json_canonical(const cJSON *item, lg_buf *out)
{
    lg_buf path = LG_BUF_INIT;
    int err = lg_buf_grow(&path, 0);
    if (err >= 0)
        err = canon(item, out, &path);
    lg_buf_release(&path);
    return err;
}

int lg_manifest_check_name(const char *name)
{
    const char *s, *comp;
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 255)
        return lg_error_set(LG_EINPUT, "output name '%.80s': must be 1 to 255 bytes", name ? name : "");
    if (name[0] == '/')
        return lg_error_set(LG_EINPUT, "output name '%s': must be relative (no leading '/')", name);
    for (s = name; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
            return lg_error_set(LG_EINPUT, "output name '%.80s': control character or backslash at byte %d", name,
                                (int)(s - name));
    for (comp = name;;) {
        const char *end = strchr(comp, '/');
        size_t n = end ? (size_t)(end - comp) : strlen(comp);
        if (n == 0)
            return lg_error_set(LG_EINPUT, "output name '%s': empty path component", name);
        if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
            return lg_error_set(LG_EINPUT, "output name '%s': '.' and '..' components are not allowed", name);
        /* git refuses ".git" in trees on checkout (any case); never put one in the ledger's tree */
        if (n == 4 && strncasecmp(comp, ".git", 4) == 0)
            return lg_error_set(LG_EINPUT, "output name '%s': a '.git' component is not allowed", name);
        if (!end)
            break;
        comp = end + 1;
    }
    return 0;
}

static int is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9007199254740992.0;
}

/* Text that `show`, `log`, `query` and `check` print as it is: no C0/C1
 * control characters (ESC sequences, CR, CSI), which a rewritten manifest
 * used to move the cursor and overprint a reviewer's terminal (red team 2,
 * t7923). 0 when s is printable, else the byte offset + 1 of the first. */
static size_t control_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return (size_t)(p - (const unsigned char *)s) + 1;
    return 0;
}

static int check_text(const char *s, const char *where, const char *ctx, const char *what)
{
    size_t at = s ? control_at(s) : 0;
    if (at)
        return lg_error_set(LG_EINPUT, "%s: %s%s: control character at byte %zu (text must be printable)", where, ctx,
                            what, at - 1);
    return 0;
}

static int check_metrics(const cJSON *m, const char *where, const char *ctx)
{
    const cJSON *v;
    int err;
    if (!cJSON_IsObject(m))
        return lg_error_set(LG_EINPUT, "%s: %s.metrics: must be an object", where, ctx);
    cJSON_ArrayForEach(v, m) {
        if ((err = check_text(v->string, where, ctx, ".metrics (a name)")) < 0)
            return err;
        if (cJSON_IsNull(v))
            continue;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return lg_error_set(LG_EINPUT, "%s: %s.metrics.%s: must be a finite number or null", where, ctx, v->string);
    }
    return 0;
}

static int check_units(const cJSON *cond, const char *key, const char *where, int ci)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cond, key), *u;
    char ctx[128];
    int i = 0, err;
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return lg_error_set(LG_EINPUT, "%s: conditions[%d].%s: must be an array", where, ci, key);
    cJSON_ArrayForEach(u, arr) {
        snprintf(ctx, sizeof(ctx), "conditions[%d].%s[%d]", ci, key, i);
        if (!cJSON_IsObject(u))
            return lg_error_set(LG_EINPUT, "%s: %s: must be an object", where, ctx);
        if (strcmp(key, "pairs") == 0) {
            if (!is_int(cJSON_GetObjectItemCaseSensitive(u, "seed_a")) ||
                !is_int(cJSON_GetObjectItemCaseSensitive(u, "seed_b")))
                return lg_error_set(LG_EINPUT, "%s: %s: seed_a and seed_b must be integers", where, ctx);
        } else if (!is_int(cJSON_GetObjectItemCaseSensitive(u, "seed"))) {
            return lg_error_set(LG_EINPUT, "%s: %s.seed: must be an integer", where, ctx);
        }
        if (cJSON_GetObjectItemCaseSensitive(u, "status") && !lg_json_str(u, "status"))
            return lg_error_set(LG_EINPUT, "%s: %s.status: must be a string", where, ctx);
        if ((err = check_text(lg_json_str(u, "status"), where, ctx, ".status")) < 0)
            return err;
        if ((err = check_metrics(cJSON_GetObjectItemCaseSensitive(u, "metrics"), where, ctx)) < 0)
            return err;
        i++;
    }
    return 0;
}

int lg_results_check(const cJSON *results, const char *where)
{
    const cJSON *conds, *c, *d;
    char ctx[64];
    int i = 0, j, err;
    if (!cJSON_IsObject(results))
        return lg_error_set(LG_EINPUT, "%s: results must be a JSON object", where);
    conds = cJSON_GetObjectItemCaseSensitive(results, "conditions");
    if (!cJSON_IsArray(conds))
        return lg_error_set(LG_EINPUT, "%s: \"conditions\": missing or not an array", where);
    cJSON_ArrayForEach(c, conds) {
        const char *id = lg_json_str(c, "id");
        const cJSON *params;
        if (!cJSON_IsObject(c) || !id || !*id)
            return lg_error_set(LG_EINPUT, "%s: conditions[%d].id: missing or not a non-empty string", where, i);
        j = 0;
        cJSON_ArrayForEach(d, conds) {
            if (j >= i)
                break;
            if (strcmp(lg_json_str(d, "id"), id) == 0)
                return lg_error_set(LG_EINPUT, "%s: conditions[%d].id: \"%s\" repeats conditions[%d]", where, i, id, j);
            j++;
        }
        snprintf(ctx, sizeof ctx, "conditions[%d]", i);
        if ((err = check_text(id, where, ctx, ".id")) < 0)
            return err;
        params = cJSON_GetObjectItemCaseSensitive(c, "params");
        if (params && !cJSON_IsObject(params))
            return lg_error_set(LG_EINPUT, "%s: conditions[%d].params: must be an object", where, i);
        cJSON_ArrayForEach(d, params) {
            if ((err = check_text(d->string, where, ctx, ".params (a name)")) < 0 ||
                (err = check_text(lg_json_str(params, d->string), where, ctx, ".params (a value)")) < 0)
                return err;
        }
        if ((err = check_units(c, "cells", where, i)) < 0 || (err = check_units(c, "pairs", where, i)) < 0 ||
            (err = check_units(c, "seeds", where, i)) < 0)
            return err;
        i++;
    }
    return 0;
}

int lg_manifest_check(const cJSON *m, const char *where)
{
    static const char *const strs[] = {"kind", "study", "status", "created", "ledger_version", "engine_version"};
    const cJSON *v, *outs, *o;
    const char *prev_name = NULL;
    size_t i;
    int k = 0, err;

    if (!cJSON_IsObject(m))
        return lg_error_set(LG_EINPUT, "%s: manifest is not a JSON object", where);
    v = cJSON_GetObjectItemCaseSensitive(m, "format");
    if (cJSON_IsNumber(v) && v->valuedouble == 1)
        return lg_error_set(LG_EINPUT, "%s: format 1 manifest (this version reads format %d only; 'ledger init --migrate')",
                            where, LG_MANIFEST_FORMAT);
    if (!cJSON_IsNumber(v) || v->valuedouble != LG_MANIFEST_FORMAT)
        return lg_error_set(LG_EINPUT, "%s: \"format\": missing or not %d", where, LG_MANIFEST_FORMAT);
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!lg_json_str(m, strs[i]))
            return lg_error_set(LG_EINPUT, "%s: \"%s\": missing or not a string", where, strs[i]);
    cJSON_ArrayForEach(v, m) /* the top-level strings `show` prints (kind, study, backend, device, host, ...) */
        if (cJSON_IsString(v) && (err = check_text(v->valuestring, where, "", v->string)) < 0)
            return err;
    v = cJSON_GetObjectItemCaseSensitive(m, "nonce");
    if (!cJSON_IsString(v) || strlen(v->valuestring) != LG_NONCE_HEX ||
        strspn(v->valuestring, "0123456789abcdef") != LG_NONCE_HEX)
        return lg_error_set(LG_EINPUT, "%s: \"nonce\": missing or not %d lowercase hex digits", where, LG_NONCE_HEX);
    /* format 2: where a run sits (seq, prev) is chain.json's business, not the manifest's */
    if (cJSON_GetObjectItemCaseSensitive(m, "seq") || cJSON_GetObjectItemCaseSensitive(m, "prev"))
        return lg_error_set(LG_EINPUT, "%s: \"seq\"/\"prev\" belong in chain.json, not in a format %d manifest",
                            where, LG_MANIFEST_FORMAT);
    v = cJSON_GetObjectItemCaseSensitive(m, "results");
    if (v && !cJSON_IsNull(v) && (err = lg_results_check(v, where)) < 0)
        return err;
    outs = cJSON_GetObjectItemCaseSensitive(m, "outputs");
    if (!cJSON_IsArray(outs))
        return lg_error_set(LG_EINPUT, "%s: \"outputs\": missing or not an array", where);
    cJSON_ArrayForEach(o, outs) {
        const char *name = lg_json_str(o, "name"), *sha = lg_json_str(o, "sha256");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
        if (!name || lg_manifest_check_name(name) < 0)
            return lg_error_set(LG_EINPUT, "%s: outputs[%d].name: missing or invalid", where, k);
        if (!sha || !lg_sha256_hex_valid(sha))
            return lg_error_set(LG_EINPUT, "%s: outputs[%d].sha256: not a SHA-256 digest", where, k);
        if (!is_int(size) || size->valuedouble < 0)
            return lg_error_set(LG_EINPUT, "%s: outputs[%d].size: not a size", where, k);
        if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "in_tree")))
            return lg_error_set(LG_EINPUT, "%s: outputs[%d].in_tree: not a boolean", where, k);
        if (prev_name && strcmp(prev_name, name) >= 0)
            return lg_error_set(LG_EINPUT, "%s: outputs[%d]: names not sorted or repeated ('%s')", where, k, name);
        prev_name = name;
        k++;
    }
    return 0;
}

/* ---- chain entries ----------------------------------------------------------- */

int lg_chain_json_make(long seq, const char *run_id, const char *prev, lg_buf *out)
{
    if (seq < 1 || !lg_sha256_hex_valid(run_id) || (prev && !lg_sha256_hex_valid(prev)))
        return lg_error_set(LG_EINTERNAL, "chain entry: bad seq, run id or prev");
    /* canonical by construction: keys sorted (format, prev, run, seq), no whitespace */
    if (prev)
        return lg_buf_printf(out, "{\"format\":%d,\"prev\":\"%s\",\"run\":\"%s\",\"seq\":%ld}", LG_CHAIN_FORMAT,
                             prev, run_id, seq);
    return lg_buf_printf(out, "{\"format\":%d,\"prev\":null,\"run\":\"%s\",\"seq\":%ld}", LG_CHAIN_FORMAT, run_id,
                         seq);
}

/* Reads `"` + 64 lowercase hex + `"` at *p into out. */
static int take_digest(const char **p, const char *end, char out[65])
{
    const char *s = *p;
    if (end - s < 66 || s[0] != '"' || s[65] != '"')
        return 0;
    memcpy(out, s + 1, 64);
    out[64] = '\0';
    if (!lg_sha256_hex_valid(out))
        return 0;
    *p = s + 66;
    return 1;
}

static int take(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

int lg_chain_json_parse(const char *bytes, size_t len, const char *where, lg_chain_link *out)
{
    /* The canonical form is fixed, so this reads it literally (no JSON parser,
     * no allocation): {"format":2,"prev":null|"<hex>","run":"<hex>","seq":N} */
    const char *p = bytes, *end = bytes + len;
    long seq = 0;
    int ok;

    memset(out, 0, sizeof(*out));
    ok = len <= 1024 && take(&p, end, "{\"format\":2,\"prev\":") &&
         (take(&p, end, "null") || take_digest(&p, end, out->prev)) && take(&p, end, ",\"run\":") &&
         take_digest(&p, end, out->run_id) && take(&p, end, ",\"seq\":") && p < end && *p >= '1' && *p <= '9';
    while (ok && p < end && *p >= '0' && *p <= '9' && seq < 1000000000000L)
        seq = seq * 10 + (*p++ - '0');
    ok = ok && take(&p, end, "}") && p == end;
    if (!ok)
        return lg_error_set(LG_EINPUT,
                            "%s: " LG_CHAIN_FILE " is not {\"format\":2,\"prev\":null|DIGEST,\"run\":ID,\"seq\":N} "
                            "in canonical form",
                            where);
    out->seq = seq;
    return lg_sha256_buf(bytes, len, out->digest);
}
