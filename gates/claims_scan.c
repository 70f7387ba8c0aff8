/*
 * claims_scan.c - the scanners of the claim parser (claims.c): the line
 * cursor, identifiers, words, numbers, quoted strings, comparison operators
 * and keywords. The parser picks a scanner by context, which keeps
 * "two-sided" or "0.1.0" one word where a word is expected while "a - b"
 * in an expression is a subtraction. Every scanner reads only the current
 * line (never past its length) and reports errors at FILE:LINE:COL through
 * cl_perr_at.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "gates/claims.h"
#include "gates/claims_int.h"

/* ---- scanners ------------------------------------------------------------------------ */

int cl_at_end(parser *p) { return p->c >= p->ll; }
char cl_cur(parser *p) { return p->c < p->ll ? p->lp[p->c] : '\0'; }

void cl_skip_ws(parser *p)
{
    while (p->c < p->ll && (p->lp[p->c] == ' ' || p->lp[p->c] == '\t'))
        p->c++;
}

static int is_ident_start(char ch) { return isalpha((unsigned char)ch) || ch == '_'; }
static int is_ident_char(char ch) { return isalnum((unsigned char)ch) || ch == '_'; }

/* Identifier [A-Za-z_][A-Za-z0-9_]*, extra chars allowed from `extra`. */
int cl_scan_ident(parser *p, const char *extra, const char *what, char **out)
{
    size_t s;
    cl_skip_ws(p);
    s = p->c;
    if (!is_ident_start(cl_cur(p)))
        return cl_at_end(p) ? PERR(p, "expected %s", what) : PERR(p, "expected %s, found '%c'", what, cl_cur(p));
    while (!cl_at_end(p) && (is_ident_char(cl_cur(p)) || (extra && strchr(extra, cl_cur(p)))))
        p->c++;
    if (p->c - s > LG_CLAIMS_MAX_NAME)
        return cl_perr_at(p, s, "%s is longer than %d characters", what, LG_CLAIMS_MAX_NAME);
    if (!(*out = lg_strndup(p->lp + s, p->c - s)))
        return LG_ENOMEM;
    return 0;
}

/* A word: characters from `allowed` (plus alphanumerics), at least one. */
int cl_scan_word(parser *p, const char *allowed, const char *what, char **out)
{
    size_t s;
    cl_skip_ws(p);
    s = p->c;
    while (!cl_at_end(p) && (isalnum((unsigned char)cl_cur(p)) || strchr(allowed, cl_cur(p))))
        p->c++;
    if (p->c == s)
        return cl_at_end(p) ? PERR(p, "expected %s", what) : PERR(p, "expected %s, found '%c'", what, cl_cur(p));
    if (p->c - s > LG_CLAIMS_MAX_NAME)
        return cl_perr_at(p, s, "%s is longer than %d characters", what, LG_CLAIMS_MAX_NAME);
    if (!(*out = lg_strndup(p->lp + s, p->c - s)))
        return LG_ENOMEM;
    return 0;
}

/* Unsigned decimal number literal: digits [. digits] [e [+-] digits]. */
int cl_scan_number(parser *p, double *out)
{
    size_t s, e;
    cl_skip_ws(p);
    s = e = p->c;
    while (e < p->ll && isdigit((unsigned char)p->lp[e]))
        e++;
    if (e < p->ll && p->lp[e] == '.') {
        e++;
        while (e < p->ll && isdigit((unsigned char)p->lp[e]))
            e++;
    }
    if (e == s || (e == s + 1 && p->lp[s] == '.'))
        return PERR(p, "expected a number");
    if (e < p->ll && (p->lp[e] == 'e' || p->lp[e] == 'E')) {
        size_t t = e + 1;
        if (t < p->ll && (p->lp[t] == '+' || p->lp[t] == '-'))
            t++;
        if (t < p->ll && isdigit((unsigned char)p->lp[t])) {
            while (t < p->ll && isdigit((unsigned char)p->lp[t]))
                t++;
            e = t;
        }
    }
    if (!cl_parse_num(p->lp + s, e - s, out))
        return PERR(p, "'%.*s' is not a finite number", (int)(e - s > 40 ? 40 : e - s), p->lp + s);
    p->c = e;
    return 0;
}

/* Signed number: ['-'|'+'] number. */
int cl_scan_signed(parser *p, double *out)
{
    int neg = 0, err;
    cl_skip_ws(p);
    if (cl_cur(p) == '-' || cl_cur(p) == '+') {
        neg = cl_cur(p) == '-';
        p->c++;
    }
    if ((err = cl_scan_number(p, out)) < 0)
        return err;
    if (neg)
        *out = -*out;
    return 0;
}

/* "..." with \" and \\ escapes. */
int cl_scan_string(parser *p, char **out)
{
    lg_buf b = LG_BUF_INIT;
    size_t s;
    int err = 0;
    cl_skip_ws(p);
    s = p->c;
    if (cl_cur(p) != '"')
        return PERR(p, "expected a quoted sentence (\"...\")");
    p->c++;
    lg_buf_init(&b, LG_CLAIMS_MAX_SAYS);
    for (;;) {
        char ch;
        if (cl_at_end(p)) {
            err = cl_perr_at(p, s, "unterminated string");
            goto out;
        }
        ch = p->lp[p->c];
        if (ch == '"') {
            p->c++;
            break;
        }
        if (ch == '\\') {
            char n = p->c + 1 < p->ll ? p->lp[p->c + 1] : '\0';
            if (n != '"' && n != '\\') {
                err = PERR(p, "unknown escape (only \\\" and \\\\)");
                goto out;
            }
            ch = n;
            p->c++;
        } else if ((unsigned char)ch < 0x20) {
            err = PERR(p, "control character in a string");
            goto out;
        }
        if (lg_buf_put(&b, &ch, 1) < 0) {
            err = b.len >= LG_CLAIMS_MAX_SAYS ? cl_perr_at(p, s, "string longer than %d bytes", LG_CLAIMS_MAX_SAYS)
                                              : LG_ENOMEM;
            goto out;
        }
        p->c++;
    }
    if (b.len == 0) {
        err = cl_perr_at(p, s, "empty string");
        goto out;
    }
    if (!(*out = lg_buf_detach(&b)))
        err = LG_ENOMEM;
out:
    lg_buf_release(&b);
    return err;
}

/* Comparison operator: = == != < <= > >= */
int cl_scan_op(parser *p, lg_op *out)
{
    char a, b;
    cl_skip_ws(p);
    a = cl_cur(p);
    b = p->c + 1 < p->ll ? p->lp[p->c + 1] : '\0';
    if (a == '=' ) { *out = LG_OP_EQ; p->c += b == '=' ? 2 : 1; return 0; }
    if (a == '!' && b == '=') { *out = LG_OP_NE; p->c += 2; return 0; }
    if (a == '<') { *out = b == '=' ? LG_OP_LE : LG_OP_LT; p->c += b == '=' ? 2 : 1; return 0; }
    if (a == '>') { *out = b == '=' ? LG_OP_GE : LG_OP_GT; p->c += b == '=' ? 2 : 1; return 0; }
    return cl_at_end(p) ? PERR(p, "expected a comparison (=, !=, <, <=, >, >=)")
                     : PERR(p, "expected a comparison (=, !=, <, <=, >, >=), found '%c'", a);
}

int cl_expect_eol(parser *p)
{
    cl_skip_ws(p);
    if (!cl_at_end(p))
        return PERR(p, "unexpected '%c' (expected the end of the line)", cl_cur(p));
    return 0;
}

int cl_keyword_is(parser *p, const char *kw)
{
    size_t n = strlen(kw);
    cl_skip_ws(p);
    if (p->c + n <= p->ll && memcmp(p->lp + p->c, kw, n) == 0 &&
        (p->c + n == p->ll || p->lp[p->c + n] == ' ' || p->lp[p->c + n] == '\t')) {
        p->c += n;
        return 1;
    }
    return 0;
}
