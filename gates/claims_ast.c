/*
 * claims_ast.c - the claim AST's small services (see claims.h): filter
 * matching (a filter value that parses as a number compares numerically,
 * anything else as bytes), releasing a claim file (also a partial one: the
 * parser appends before it fills, claims.c), and the bounded array append
 * the parser grows its lists with.
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

/* ---- filters ------------------------------------------------------------------ */

int cl_parse_num(const char *s, size_t n, double *out)
{
    char buf[64], *end;
    double v;
    size_t i;
    if (n == 0 || n >= sizeof(buf))
        return 0;
    for (i = 0; i < n; i++) /* decimal only: no "inf", "nan", hex */
        if (!strchr("0123456789+-.eE", s[i]))
            return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtod(buf, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

int lg_filter_match(const lg_filter *f, const char *v)
{
    double x;
    if (!v)
        return 0;
    if (f->is_num && cl_parse_num(v, strlen(v), &x))
        return lg_op_holds(f->op, x, f->num);
    if (f->op == LG_OP_EQ)
        return strcmp(v, f->value) == 0;
    if (f->op == LG_OP_NE)
        return strcmp(v, f->value) != 0;
    return 0;
}

void lg_filter_eq(lg_filter *f, const char *key, const char *value)
{
    char *end;
    memset(f, 0, sizeof *f);
    f->key = (char *)key;
    f->op = LG_OP_EQ;
    f->value = (char *)value;
    f->num = strtod(value, &end);
    f->is_num = *value && !*end && isfinite(f->num) && strspn(value, "0123456789+-.eE") == strlen(value);
}

/* ---- freeing ---------------------------------------------------------------------- */

static void claim_release(lg_claim *c)
{
    size_t i, j;
    lg_free(c->id);
    lg_free(c->says);
    lg_free(c->study);
    lg_free(c->run);
    lg_free(c->engine_min);
    lg_free(c->by_key);
    for (i = 0; i < c->ngates; i++)
        lg_free(c->gates[i]);
    lg_free(c->gates);
    for (i = 0; i < c->nsamples; i++) {
        lg_sample_decl *s = &c->samples[i];
        lg_free(s->name);
        lg_free(s->metric);
        lg_free(s->study);
        for (j = 0; j < s->nfilters; j++) {
            lg_free(s->filters[j].key);
            lg_free(s->filters[j].value);
        }
        lg_free(s->filters);
    }
    lg_free(c->samples);
    for (i = 0; i < c->nrequires; i++) {
        lg_free(c->requires[i].terms);
        lg_free(c->requires[i].text);
    }
    lg_free(c->requires);
}

void lg_claims_free(lg_claim_file *f)
{
    size_t i;
    if (!f)
        return;
    for (i = 0; i < f->nclaims; i++)
        claim_release(&f->claims[i]);
    lg_free(f->claims);
    lg_free(f->path);
    lg_free(f);
}

/* Append one zeroed element to *arr (count *n), returning it or NULL (ENOMEM). */
void *cl_push(void **arr, size_t *n, size_t elem)
{
    char *p;
    /* grow by powers of two: capacity is implied by n */
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 1;
        p = lg_realloc(*arr, cap * elem);
        if (!p)
            return NULL;
        *arr = p;
    }
    p = (char *)*arr + *n * elem;
    memset(p, 0, elem);
    (*n)++;
    return p;
}
