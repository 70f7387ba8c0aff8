/*
 * claims_int.h - what the claim parser's files share (not an API: only
 * gates/claims*.c include it). claims.c parses the directives,
 * claims_scan.c holds the scanners it calls, claims_ast.c the AST's
 * filters, freeing and list growth. The parser state is one line with a
 * cursor; every error goes through cl_perr_at (FILE:LINE:COL).
 */
#ifndef LG_CLAIMS_INT_H
#define LG_CLAIMS_INT_H

#include <stddef.h>

#include "gates/claims.h"

typedef struct {
    const char *path;
    const char *lp;   /* current line (not NUL-terminated) */
    size_t ll;        /* its length */
    size_t c;         /* cursor in the line */
    int line;
    lg_claim_file *f;
} parser;
/* error at the cursor */
#define PERR(p, ...) cl_perr_at((p), (p)->c, __VA_ARGS__)

/* ---- shared helpers (each documented at its definition) ---- */

char cl_cur(parser *p);
int cl_at_end(parser *p);
int cl_expect_eol(parser *p);
int cl_keyword_is(parser *p, const char *kw);
int cl_parse_num(const char *s, size_t n, double *out);
int cl_perr_at(parser *p, size_t col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cl_scan_ident(parser *p, const char *extra, const char *what, char **out);
int cl_scan_number(parser *p, double *out);
int cl_scan_op(parser *p, lg_op *out);
int cl_scan_signed(parser *p, double *out);
int cl_scan_string(parser *p, char **out);
int cl_scan_word(parser *p, const char *allowed, const char *what, char **out);
void *cl_push(void **arr, size_t *n, size_t elem);
void cl_skip_ws(parser *p);

#endif
