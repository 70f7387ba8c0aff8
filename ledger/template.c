/*
 * template.c - parser of report templates (see template.h).
 *
 * One pass over the bytes splits the text into pieces: literal runs, escapes
 * and directives. A directive's body is tokenised into '|'-separated
 * segments of whitespace-separated words ("..." strings may hold blanks and
 * '|'). The selector part (UNIT.METRIC where FILTERS) is not parsed here: it
 * is wrapped into a one-claim text and handed to lg_claims_parse, so that a
 * template filter means exactly what a claim filter means; error columns
 * are mapped back to the template.
 *
 * Invariants: the input is never read past `len`; every limit (file size,
 * directive length, number of directives, stats, by-parameters, bins) is
 * checked before anything grows; on error nothing is returned.
 *
 * The parser is two files that share ledger/template_int.h: this one holds
 * the formats, the pass over the text and the pieces; template_directive.c
 * tokenises and reads one directive's body (and names the statistics).
 */
#include "ledger/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ledger/template_int.h"

/* ---- the template -------------------------------------------------------------------- */

void lg_template_free(lg_template *t)
{
    size_t i;
    if (!t)
        return;
    for (i = 0; i < t->n; i++)
        template_directive_release(&t->d[i]);
    lg_free(t->d);
    lg_free(t->pieces);
    lg_free(t->path);
    lg_free(t->text);
    lg_free(t);
}

static int push_piece(lg_template *t, size_t *cap, size_t start, size_t len, long dir)
{
    if (len == 0 && dir < 0)
        return 0;
    if (dir < 0 && t->npieces && t->pieces[t->npieces - 1].dir < 0 &&
        t->pieces[t->npieces - 1].start + t->pieces[t->npieces - 1].len == start) {
        t->pieces[t->npieces - 1].len += len; /* extend the literal run */
        return 0;
    }
    if (lg_grow(&t->pieces, cap, t->npieces + 1, sizeof *t->pieces, 16) < 0)
        return LG_ENOMEM;
    t->pieces[t->npieces].start = start;
    t->pieces[t->npieces].len = len;
    t->pieces[t->npieces].dir = dir;
    t->npieces++;
    return 0;
}

/* A fence line: up to 3 spaces then ``` or ~~~. */
static int is_fence(const char *s, size_t n)
{
    size_t i = 0;
    while (i < 3 && i < n && s[i] == ' ')
        i++;
    return i + 3 <= n && ((s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`') ||
                          (s[i] == '~' && s[i + 1] == '~' && s[i + 2] == '~'));
}

int lg_template_parse(const char *path, const char *text, size_t len, lg_template **out)
{
    lg_template *t = NULL;
    size_t i = 0, lit = 0, pcap = 0, dcap = 0;
    int line = 1, err = 0, fence = 0;
    size_t line_start = 0;

    *out = NULL;
    if (len > LG_TEMPLATE_MAX_FILE)
        return lg_error_set(LG_EINPUT, "%s: template larger than %u bytes", path, LG_TEMPLATE_MAX_FILE);
    if (!(t = lg_calloc(1, sizeof(*t))))
        return LG_ENOMEM;
    if (!(t->path = lg_strdup(path)) || !(t->text = lg_malloc(len + 1))) {
        err = LG_ENOMEM;
        goto out;
    }
    if (len)
        memcpy(t->text, text, len);
    t->text[len] = '\0';
    t->len = len;
    text = t->text;
    while (i < len) {
        if (i == line_start) {
            const char *nl = memchr(text + i, '\n', len - i);
            size_t ll = nl ? (size_t)(nl - (text + i)) : len - i;
            if (is_fence(text + i, ll))
                fence = !fence;
            if (fence || is_fence(text + i, ll)) {
                i += ll + (nl ? 1 : 0);
                line_start = i;
                line += nl ? 1 : 0;
                continue;
            }
        }
        if (text[i] == '\0') {
            err = lg_error_set(LG_EINPUT, "%s:%d:%d: NUL byte in the template", path, line, (int)(i - line_start) + 1);
            goto out;
        }
        if (text[i] == '\n') {
            i++;
            line++;
            line_start = i;
            continue;
        }
        if (text[i] == '\\' && i + 2 < len && text[i + 1] == '{' && text[i + 2] == '{') {
            if ((err = push_piece(t, &pcap, lit, i - lit, -1)) < 0 || (err = push_piece(t, &pcap, i + 1, 2, -1)) < 0)
                goto out;
            i += 3;
            lit = i;
            continue;
        }
        if (text[i] == '{' && i + 1 < len && text[i + 1] == '{') {
            size_t b = i + 2, e = b;
            int inq = 0, col = (int)(i - line_start) + 1;
            dparser p;
            lg_directive *d;
            while (e < len && text[e] != '\n') {
                if (inq && text[e] == '\\' && e + 1 < len && text[e + 1] != '\n')
                    e++;
                else if (text[e] == '"')
                    inq = !inq;
                else if (!inq && text[e] == '}' && e + 1 < len && text[e + 1] == '}')
                    break;
                e++;
            }
            if (e >= len || text[e] != '}') {
                err = lg_error_set(LG_EINPUT, "%s:%d:%d: '{{' without '}}' on the same line%s", path, line, col,
                                   inq ? " (unterminated string)" : "");
                goto out;
            }
            if (e - b > LG_TEMPLATE_MAX_DIRECTIVE) {
                err = lg_error_set(LG_EINPUT, "%s:%d:%d: directive longer than %d bytes", path, line, col,
                                   LG_TEMPLATE_MAX_DIRECTIVE);
                goto out;
            }
            if (t->n == LG_TEMPLATE_MAX_DIRECTIVES) {
                err = lg_error_set(LG_EINPUT, "%s:%d:%d: more than %d directives", path, line, col,
                                   LG_TEMPLATE_MAX_DIRECTIVES);
                goto out;
            }
            for (size_t k = b; k < e; k++)
                if ((unsigned char)text[k] < 0x20 && text[k] != '\t') {
                    err = lg_error_set(LG_EINPUT, "%s:%d:%d: control character in a directive", path, line,
                                       (int)(k - line_start) + 1);
                    goto out;
                }
            if (t->n == dcap) {
                size_t nc = dcap ? dcap * 2 : 8;
                lg_directive *nd = lg_realloc(t->d, nc * sizeof(*nd));
                if (!nd) {
                    err = LG_ENOMEM;
                    goto out;
                }
                t->d = nd;
                dcap = nc;
            }
            d = &t->d[t->n];
            memset(d, 0, sizeof *d);
            t->n++;
            d->line = line;
            d->col = col;
            d->start = i;
            d->end = e + 2;
            p.path = path;
            p.body = text + b;
            p.len = e - b;
            p.line = line;
            p.col = col + 2;
            if ((err = template_parse_directive(&p, d)) < 0)
                goto out;
            if (d->kind == LG_DIR_PLOT) {
                size_t k;
                for (k = 0; k + 1 < t->n; k++)
                    if (t->d[k].kind == LG_DIR_PLOT && !strcmp(t->d[k].file, d->file)) {
                        err = lg_error_set(LG_EINPUT, "%s:%d:%d: file=%s is already written by the plot at line %d",
                                           path, line, col, d->file, t->d[k].line);
                        goto out;
                    }
            }
            if ((err = push_piece(t, &pcap, lit, i - lit, -1)) < 0 ||
                (err = push_piece(t, &pcap, i, d->end - i, (long)(t->n - 1))) < 0)
                goto out;
            i = d->end;
            lit = i;
            continue;
        }
        i++;
    }
    err = push_piece(t, &pcap, lit, len - lit, -1);
out:
    if (err < 0) {
        lg_template_free(t);
        return err;
    }
    *out = t;
    return 0;
}

int lg_template_load(const char *path, lg_template **out)
{
    lg_buf b = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_file_read(path, LG_TEMPLATE_MAX_FILE + 1, &b)) < 0)
        goto out;
    err = lg_template_parse(path, b.ptr ? b.ptr : "", b.len, out);
out:
    lg_buf_release(&b);
    return err;
}

int lg_template_walk(const lg_template *t, lg_template_fn fn, void *ctx)
{
    size_t i;
    int err;
    for (i = 0; i < t->npieces; i++) {
        const lg_template_piece *pc = &t->pieces[i];
        if (pc->dir >= 0)
            err = fn(ctx, NULL, 0, &t->d[pc->dir]);
        else
            err = fn(ctx, t->text + pc->start, pc->len, NULL);
        if (err < 0)
            return err;
    }
    return 0;
}
