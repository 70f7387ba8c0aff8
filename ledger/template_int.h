/*
 * template_int.h - what the two pieces of the report-template parser share:
 * ledger/template.c (the pass over the text, the pieces, formats) and
 * template_directive.c (one directive's body). Only those two files include
 * it (and tests/fuzz/fuzz_template.c, which compiles both); nothing here is
 * API.
 */
#ifndef LG_TEMPLATE_INT_H
#define LG_TEMPLATE_INT_H

#include <stddef.h>

#include "ledger/template.h"

/* Where a directive body is in the template, for error messages. */
typedef struct {
    const char *path;
    const char *body;  /* directive body (between "{{" and "}}") */
    size_t len;
    int line, col;     /* of the body's first byte */
} dparser;

/* template_directive.c */
/* Frees what a parsed directive owns. */
void template_directive_release(lg_directive *d);
/* Parses one directive body into d. */
int template_parse_directive(const dparser *p, lg_directive *d);

#endif /* LG_TEMPLATE_INT_H */
