/*
 * json.c - strict JSON parsing for untrusted input (see json.h).
 *
 * cJSON does the parsing; before it, one lexical pass over the bytes checks
 * the strings (no \u0000 escape, no raw control byte), and after it the tree
 * is walked once for duplicate keys (children sorted per object). The
 * trailing-bytes check uses the end position cJSON reports.
 */
#include "artifacts/json.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* line:col (1-based) of text + off. */
static void position(const char *text, size_t off, int *line, int *col)
{
    size_t i;
    *line = 1;
    *col = 1;
    for (i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else
            (*col)++;
    }
}

static int fail_at(const char *label, const char *text, size_t off, const char *what)
{
    int line, col;
    position(text, off, &line, &col);
    return lg_error_set(LG_EINPUT, "%s:%d:%d: %s", label, line, col, what);
}

/* Strings: no \u0000, no raw byte below 0x20 (a string that such a byte
 * ends early would read back differently). */
static int scan_strings(const char *label, const char *text, size_t len)
{
    size_t i;
    int in = 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (!in) {
            if (ch == '"')
                in = 1;
            continue;
        }
        if (ch == '"')
            in = 0;
        else if (ch < 0x20)
            return fail_at(label, text, i, "control character in a string (escape it)");
        else if (ch == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                return fail_at(label, text, i, "\\u0000 in a string");
            i++; /* the escaped character */
        }
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static int check_dups(const char *label, const cJSON *item, lg_buf *path)
{
    const cJSON *c;
    size_t plen = path->len, n = 0, i;
    int err = 0, k = 0;
    if (cJSON_IsObject(item)) {
        const cJSON **kids;
        cJSON_ArrayForEach(c, item) n++;
        if (n > 1) {
            if (!(kids = lg_calloc(n, sizeof(*kids))))
                return LG_ENOMEM;
            i = 0;
            cJSON_ArrayForEach(c, item) kids[i++] = c;
            qsort(kids, n, sizeof(*kids), cmp_name);
            for (i = 1; i < n && !err; i++)
                if (strcmp(kids[i - 1]->string, kids[i]->string) == 0)
                    err = lg_error_set(LG_EINPUT, "%s: %s: duplicate key \"%.100s\"", label, plen ? path->ptr : "(root)",
                                       kids[i]->string);
            lg_free(kids);
            if (err < 0)
                return err;
        }
        cJSON_ArrayForEach(c, item) {
            if ((err = lg_buf_printf(path, "%s%.100s", plen ? "." : "", c->string)) < 0 ||
                (err = check_dups(label, c, path)) < 0)
                return err;
            path->len = plen;
            path->ptr[plen] = '\0';
        }
    } else if (cJSON_IsArray(item)) {
        cJSON_ArrayForEach(c, item) {
            if ((err = lg_buf_printf(path, "[%d]", k++)) < 0 || (err = check_dups(label, c, path)) < 0)
                return err;
            path->len = plen;
            path->ptr[plen] = '\0';
        }
    }
    return 0;
}

int lg_json_parse(const char *label, const char *text, size_t len, cJSON **out)
{
    const char *end = NULL;
    lg_buf path = LG_BUF_INIT;
    cJSON *root = NULL;
    size_t i;
    int err;

    *out = NULL;
    if ((err = scan_strings(label, text, len)) < 0)
        return err;
    if (!(root = cJSON_ParseWithLengthOpts(text, len, &end, 0))) {
        const char *at = cJSON_GetErrorPtr();
        return fail_at(label, text, at && at >= text && at <= text + len ? (size_t)(at - text) : 0, "malformed JSON");
    }
    for (i = end && end >= text ? (size_t)(end - text) : len; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            err = fail_at(label, text, i, "unexpected bytes after the JSON document");
            goto out;
        }
    if ((err = lg_buf_grow(&path, 0)) < 0 || (err = check_dups(label, root, &path)) < 0)
        goto out;
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    lg_buf_release(&path);
    return err;
}
