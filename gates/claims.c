/*
 * claims.c - lexer and parser of the claim language (see claims.h, gates/CLAIMS.md).
 *
 * Design: the language is line-based, so the parser works one line at a time
 * with a cursor and small scanners (word, identifier, number, quoted string,
 * operator) chosen by context. That keeps "two-sided", "trained-beats-random"
 * and "0.1.0" single words where they are expected, while "a - b" in an
 * expression is a subtraction. Every error names FILE:LINE:COL of the first
 * offending character.
 *
 * Invariants: the AST is appended to as it is parsed (a claim is pushed before
 * its fields are filled), so lg_claims_free() releases a partial file on any
 * error; all strings are owned by the file; limits of claims.h are checked
 * before anything grows, and the input is never read past `len`.
 *
 * This file: the directives and the line loop. The scanners are in
 * claims_scan.c, filters and freeing in claims_ast.c (claims_int.h).
 */
#include "gates/claims.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "gates/claims_int.h"

int cl_perr_at(parser *p, size_t col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return lg_error_set(LG_EINPUT, "%s:%d:%zu: %s", p->path, p->line, col + 1, msg);
}

/* ---- names ------------------------------------------------------------------ */

const char *lg_unit_name(lg_unit u)
{
    return u == LG_UNIT_CELL ? "cell" : u == LG_UNIT_PAIR ? "pair" : "seed";
}

const char *lg_op_name(lg_op op)
{
    static const char *n[] = {"=", "!=", "<", "<=", ">", ">="};
    return (unsigned)op < 6 ? n[op] : "?";
}

const char *lg_alternative_name(lg_alternative alt)
{
    return alt == LG_ALT_GREATER ? "greater" : alt == LG_ALT_LESS ? "less" : "two-sided";
}

int lg_op_holds(lg_op op, double a, double b)
{
    if (isnan(a) || isnan(b))
        return 0;
    switch (op) {
    case LG_OP_EQ: return a == b;
    case LG_OP_NE: return a != b;
    case LG_OP_LT: return a < b;
    case LG_OP_LE: return a <= b;
    case LG_OP_GT: return a > b;
    case LG_OP_GE: return a >= b;
    }
    return 0;
}

/* Function table: name, number of samples, default field (-1: a field is required),
 * allowed fields (bit mask), allowed options (bit mask). */
enum { OPT_LEVEL = 1, OPT_RESAMPLES = 2, OPT_SEED = 4, OPT_ALT = 8, OPT_MWU = 16, OPT_BOOT = 32 };
#define FB(f) (1u << (f))

static const struct {
    const char *name;
    lg_fn fn;
    int nsamples;
    int default_field;
    unsigned fields;
    unsigned opts;
} fns[] = {
    {"mean", LG_FN_MEAN, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"sd", LG_FN_SD, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"se", LG_FN_SE, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"min", LG_FN_MIN, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"max", LG_FN_MAX, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"median", LG_FN_MEDIAN, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"n", LG_FN_N, 1, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"tci", LG_FN_TCI, 1, -1, FB(LG_FIELD_LO) | FB(LG_FIELD_HI) | FB(LG_FIELD_EST), OPT_LEVEL},
    {"bootstrap", LG_FN_BOOTSTRAP, 1, -1, FB(LG_FIELD_LO) | FB(LG_FIELD_HI) | FB(LG_FIELD_EST),
     OPT_LEVEL | OPT_RESAMPLES | OPT_SEED | OPT_BOOT},
    {"bootstrap_diff", LG_FN_BOOTSTRAP_DIFF, 2, -1, FB(LG_FIELD_LO) | FB(LG_FIELD_HI) | FB(LG_FIELD_EST),
     OPT_LEVEL | OPT_RESAMPLES | OPT_SEED | OPT_BOOT},
    {"welch", LG_FN_WELCH, 2, LG_FIELD_P, FB(LG_FIELD_P) | FB(LG_FIELD_STAT) | FB(LG_FIELD_DF) | FB(LG_FIELD_EST), OPT_ALT},
    {"paired", LG_FN_PAIRED, 2, LG_FIELD_P, FB(LG_FIELD_P) | FB(LG_FIELD_STAT) | FB(LG_FIELD_DF) | FB(LG_FIELD_EST), OPT_ALT},
    {"mannwhitney", LG_FN_MANNWHITNEY, 2, LG_FIELD_P, FB(LG_FIELD_P) | FB(LG_FIELD_STAT) | FB(LG_FIELD_EST), OPT_ALT | OPT_MWU},
    {"permutation", LG_FN_PERMUTATION, 2, LG_FIELD_P, FB(LG_FIELD_P) | FB(LG_FIELD_EST),
     OPT_ALT | OPT_RESAMPLES | OPT_SEED},
    {"diff", LG_FN_DIFF, 2, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
    {"cohen_d", LG_FN_COHEN_D, 2, LG_FIELD_VALUE, FB(LG_FIELD_VALUE), 0},
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

const char *lg_fn_name(lg_fn fn)
{
    size_t i;
    if (fn == LG_FN_CONST)
        return "const";
    for (i = 0; i < NFNS; i++)
        if (fns[i].fn == fn)
            return fns[i].name;
    return "?";
}

const char *lg_field_name(lg_fn fn, lg_field field)
{
    switch (field) {
    case LG_FIELD_P: return "p";
    case LG_FIELD_STAT: return fn == LG_FN_MANNWHITNEY ? "u" : "t";
    case LG_FIELD_DF: return "df";
    case LG_FIELD_EST: return "est";
    case LG_FIELD_LO: return "lo";
    case LG_FIELD_HI: return "hi";
    default: return "value";
    }
}

/* ---- directives ------------------------------------------------------------------------- */

static int parse_sample(parser *p, lg_claim *c)
{
    lg_sample_decl *s;
    char *unit = NULL;
    size_t ucol, i;
    int err;
    if (c->nsamples >= LG_CLAIMS_MAX_SAMPLES)
        return PERR(p, "more than %d samples in claim '%s'", LG_CLAIMS_MAX_SAMPLES, c->id);
    if (!(s = cl_push((void **)&c->samples, &c->nsamples, sizeof(*s))))
        return LG_ENOMEM;
    s->line = p->line;
    cl_skip_ws(p);
    ucol = p->c;
    if ((err = cl_scan_ident(p, NULL, "a sample name", &s->name)) < 0)
        return err;
    for (i = 0; i + 1 < c->nsamples; i++)
        if (!strcmp(c->samples[i].name, s->name))
            return cl_perr_at(p, ucol, "sample '%s' is already defined (line %d)", s->name, c->samples[i].line);
    cl_skip_ws(p);
    if (cl_cur(p) != '=')
        return PERR(p, "expected '=' after the sample name");
    p->c++;
    cl_skip_ws(p);
    ucol = p->c;
    if ((err = cl_scan_ident(p, NULL, "a unit (cell, pair or seed)", &unit)) < 0)
        return err;
    if (!strcmp(unit, "cell"))
        s->unit = LG_UNIT_CELL;
    else if (!strcmp(unit, "pair"))
        s->unit = LG_UNIT_PAIR;
    else if (!strcmp(unit, "seed"))
        s->unit = LG_UNIT_SEED;
    else
        err = cl_perr_at(p, ucol, "unknown unit '%s' (cell, pair or seed)", unit);
    lg_free(unit);
    if (err < 0)
        return err;
    if (cl_cur(p) != '.')
        return PERR(p, "expected '.' and a metric after the unit (e.g. pair.mmcs)");
    p->c++;
    if ((err = cl_scan_ident(p, ".", "a metric name", &s->metric)) < 0)
        return err;
    cl_skip_ws(p);
    if (cl_keyword_is(p, "from") && (err = cl_scan_word(p, "_.-", "a study name after 'from'", &s->study)) < 0)
        return err;
    cl_skip_ws(p);
    if (cl_at_end(p))
        return 0;
    if (!cl_keyword_is(p, "where"))
        return PERR(p, "expected 'from STUDY', 'where' and filters, or the end of the line");
    for (;;) {
        lg_filter *f;
        cl_skip_ws(p);
        if (cl_at_end(p))
            break;
        if (cl_keyword_is(p, "and"))
            continue;
        if (s->nfilters >= LG_CLAIMS_MAX_FILTERS)
            return PERR(p, "more than %d filters", LG_CLAIMS_MAX_FILTERS);
        if (!(f = cl_push((void **)&s->filters, &s->nfilters, sizeof(*f))))
            return LG_ENOMEM;
        if ((err = cl_scan_ident(p, ".-", "a parameter name", &f->key)) < 0 || (err = cl_scan_op(p, &f->op)) < 0)
            return err;
        cl_skip_ws(p);
        if (cl_cur(p) == '"') {
            if ((err = cl_scan_string(p, &f->value)) < 0)
                return err;
        } else if ((err = cl_scan_word(p, "_.+-:/@", "a value", &f->value)) < 0) {
            return err;
        }
        f->is_num = cl_parse_num(f->value, strlen(f->value), &f->num);
    }
    if (s->nfilters == 0)
        return PERR(p, "expected filters after 'where'");
    return 0;
}

static int find_sample(const lg_claim *c, const char *name)
{
    size_t i;
    for (i = 0; i < c->nsamples; i++)
        if (!strcmp(c->samples[i].name, name))
            return (int)i;
    return -1;
}

/* name(args)[.field] or a number */
/* The index of val in names[0..n), or -1. */
static int name_index(const char *val, const char *const *names, int n)
{
    int k;
    for (k = 0; k < n; k++)
        if (!strcmp(val, names[k]))
            return k;
    return -1;
}

static int parse_term(parser *p, lg_claim *c, lg_term *t)
{
    char *name = NULL, *key = NULL, *val = NULL;
    size_t i, col, fi = NFNS;
    int err = 0, nsam = 0;
    unsigned seen = 0;
    cl_skip_ws(p);
    t->line = p->line;
    t->col = (int)p->c + 1;
    t->sample[0] = t->sample[1] = -1;
    t->level = LG_STATS_DEFAULT_LEVEL;
    t->resamples = LG_STATS_DEFAULT_RESAMPLES;
    t->seed = LG_STATS_DEFAULT_SEED;
    t->alt = LG_ALT_TWO_SIDED;
    t->mwu = LG_MWU_AUTO;
    t->boot = LG_BOOT_PERCENTILE;
    if (isdigit((unsigned char)cl_cur(p)) || cl_cur(p) == '.') {
        t->fn = LG_FN_CONST;
        t->field = LG_FIELD_VALUE;
        return cl_scan_number(p, &t->constant);
    }
    col = p->c;
    if ((err = cl_scan_ident(p, NULL, "a function (mean, welch, bootstrap_diff, ...) or a number", &name)) < 0)
        goto out;
    for (i = 0; i < NFNS; i++)
        if (!strcmp(fns[i].name, name))
            fi = i;
    if (fi == NFNS) {
        err = cl_perr_at(p, col, "unknown function '%s'", name);
        goto out;
    }
    t->fn = fns[fi].fn;
    cl_skip_ws(p);
    if (cl_cur(p) != '(') {
        err = PERR(p, "expected '(' after '%s'", name);
        goto out;
    }
    p->c++;
    for (;;) {
        size_t acol;
        cl_skip_ws(p);
        acol = p->c;
        lg_free(key);
        key = NULL;
        lg_free(val);
        val = NULL;
        if ((err = cl_scan_ident(p, NULL, "a sample name or an option", &key)) < 0)
            goto out;
        cl_skip_ws(p);
        if (cl_cur(p) == '=') { /* option */
            unsigned bit;
            p->c++;
            if ((err = cl_scan_word(p, "_.+-", "an option value", &val)) < 0)
                goto out;
            bit = !strcmp(key, "level") ? OPT_LEVEL : !strcmp(key, "resamples") ? OPT_RESAMPLES
                : !strcmp(key, "seed") ? OPT_SEED : !strcmp(key, "alternative") ? OPT_ALT
                : !strcmp(key, "method") ? (fns[fi].opts & OPT_MWU ? OPT_MWU : OPT_BOOT) : 0;
            if (!bit || !(fns[fi].opts & bit)) {
                err = cl_perr_at(p, acol, "%s() has no option '%s'", name, key);
                goto out;
            }
            if (seen & bit) {
                err = cl_perr_at(p, acol, "option '%s' given twice", key);
                goto out;
            }
            seen |= bit;
            if (bit == OPT_LEVEL) {
                if (!cl_parse_num(val, strlen(val), &t->level) || !(t->level > 0 && t->level < 1)) {
                    err = cl_perr_at(p, acol, "level must be a number in (0, 1), e.g. 0.95");
                    goto out;
                }
            } else if (bit == OPT_RESAMPLES || bit == OPT_SEED) {
                char *end;
                unsigned long long v;
                errno = 0;
                v = strtoull(val, &end, 10);
                if (!isdigit((unsigned char)val[0]) || *end || errno == ERANGE ||
                    (bit == OPT_RESAMPLES && (v < 1 || v > (unsigned long long)LG_CLAIMS_MAX_RESAMPLES))) {
                    err = cl_perr_at(p, acol, bit == OPT_SEED ? "seed must be a non-negative integer"
                                                           : "resamples must be an integer in [1, 1000000]");
                    goto out;
                }
                if (bit == OPT_SEED)
                    t->seed = (uint64_t)v;
                else
                    t->resamples = (long)v;
            } else if (bit == OPT_ALT) {
                static const char *const alts[] = {"two-sided", "greater", "less"}; /* LG_ALT_* order */
                int k = name_index(val, alts, 3);
                if (k < 0) {
                    err = cl_perr_at(p, acol, "alternative must be two-sided, greater or less");
                    goto out;
                }
                t->alt = (lg_alternative)k;
            } else if (bit == OPT_MWU) {
                static const char *const methods[] = {"auto", "exact", "asymptotic"}; /* LG_MWU_* order */
                int k = name_index(val, methods, 3);
                if (k < 0) {
                    err = cl_perr_at(p, acol, "method must be auto, exact or asymptotic");
                    goto out;
                }
                t->mwu = (lg_mwu_method)k;
            } else {
                if (!strcmp(val, "percentile"))
                    t->boot = LG_BOOT_PERCENTILE;
                else if (!strcmp(val, "bca"))
                    t->boot = LG_BOOT_BCA;
                else {
                    err = cl_perr_at(p, acol, "method must be percentile or bca");
                    goto out;
                }
            }
        } else { /* sample */
            int si;
            if (seen) {
                err = cl_perr_at(p, acol, "samples come before options");
                goto out;
            }
            if (nsam >= fns[fi].nsamples) {
                err = cl_perr_at(p, acol, "%s() takes %d sample%s", name, fns[fi].nsamples,
                              fns[fi].nsamples > 1 ? "s" : "");
                goto out;
            }
            if ((si = find_sample(c, key)) < 0) {
                err = cl_perr_at(p, acol, "unknown sample '%s' (declare it with 'sample %s = ...' first)", key, key);
                goto out;
            }
            t->sample[nsam++] = si;
        }
        cl_skip_ws(p);
        if (cl_cur(p) == ',') {
            p->c++;
            continue;
        }
        if (cl_cur(p) == ')') {
            p->c++;
            break;
        }
        err = cl_at_end(p) ? PERR(p, "expected ',' or ')'") : PERR(p, "expected ',' or ')', found '%c'", cl_cur(p));
        goto out;
    }
    if (nsam < fns[fi].nsamples) {
        err = cl_perr_at(p, col, "%s() takes %d sample%s, got %d", name, fns[fi].nsamples,
                      fns[fi].nsamples > 1 ? "s" : "", nsam);
        goto out;
    }
    if (cl_cur(p) == '.') {
        size_t fcol;
        lg_field fld;
        p->c++;
        fcol = p->c;
        lg_free(key);
        key = NULL;
        if ((err = cl_scan_ident(p, NULL, "a field", &key)) < 0)
            goto out;
        fld = !strcmp(key, "p") ? LG_FIELD_P : !strcmp(key, "t") || !strcmp(key, "u") ? LG_FIELD_STAT
            : !strcmp(key, "df") ? LG_FIELD_DF : !strcmp(key, "est") ? LG_FIELD_EST
            : !strcmp(key, "lo") ? LG_FIELD_LO : !strcmp(key, "hi") ? LG_FIELD_HI : LG_FIELD_VALUE;
        if (fld == LG_FIELD_VALUE || !(fns[fi].fields & FB(fld)) ||
            (fld == LG_FIELD_STAT && strcmp(key, lg_field_name(t->fn, fld)))) {
            err = cl_perr_at(p, fcol, "%s() has no field '%s'", name, key);
            goto out;
        }
        t->field = fld;
    } else if (fns[fi].default_field < 0) {
        err = PERR(p, "%s() needs a field: .lo, .hi or .est", name);
        goto out;
    } else {
        t->field = (lg_field)fns[fi].default_field;
    }
out:
    lg_free(name);
    lg_free(key);
    lg_free(val);
    return err;
}

static int parse_require(parser *p, lg_claim *c)
{
    lg_require *r;
    size_t start;
    int sign = 1, err;
    if (c->nrequires >= LG_CLAIMS_MAX_REQUIRES)
        return PERR(p, "more than %d requirements in claim '%s'", LG_CLAIMS_MAX_REQUIRES, c->id);
    if (!(r = cl_push((void **)&c->requires, &c->nrequires, sizeof(*r))))
        return LG_ENOMEM;
    r->line = p->line;
    cl_skip_ws(p);
    start = p->c;
    if (cl_cur(p) == '-') {
        sign = -1;
        p->c++;
    }
    for (;;) {
        lg_term *t;
        if (r->nterms >= LG_CLAIMS_MAX_TERMS)
            return PERR(p, "more than %d terms in an expression", LG_CLAIMS_MAX_TERMS);
        if (!(t = cl_push((void **)&r->terms, &r->nterms, sizeof(*t))))
            return LG_ENOMEM;
        if ((err = parse_term(p, c, t)) < 0)
            return err;
        t->sign = sign;
        cl_skip_ws(p);
        if (cl_cur(p) == '+' || cl_cur(p) == '-') {
            sign = cl_cur(p) == '-' ? -1 : 1;
            p->c++;
            continue;
        }
        break;
    }
    {
        size_t ocol = p->c;
        if ((err = cl_scan_op(p, &r->op)) < 0)
            return err;
        if (r->op == LG_OP_EQ || r->op == LG_OP_NE)
            return cl_perr_at(p, ocol, "a requirement compares with <, <=, > or >=");
    }
    if ((err = cl_scan_signed(p, &r->threshold)) < 0)
        return err;
    {
        size_t end = p->c;
        if ((err = cl_expect_eol(p)) < 0)
            return err;
        while (end > start && (p->lp[end - 1] == ' ' || p->lp[end - 1] == '\t'))
            end--;
        if (!(r->text = lg_strndup(p->lp + start, end - start)))
            return LG_ENOMEM;
    }
    return 0;
}

/* requires ID [ID...]: gate claims, each defined earlier in this file (so the
 * dependencies form no cycle and are decided before the claim). */
static int parse_gates(parser *p, lg_claim *c)
{
    int err, any = 0;
    for (;;) {
        size_t col, i;
        char *id = NULL, **slot = NULL;
        cl_skip_ws(p);
        if (cl_at_end(p))
            break;
        col = p->c;
        if (!isalnum((unsigned char)cl_cur(p)))
            return PERR(p, "expected a claim id after 'requires'");
        if ((err = cl_scan_word(p, "-_.", "a claim id", &id)) < 0)
            return err;
        if (!strcmp(id, c->id))
            err = cl_perr_at(p, col, "claim '%s' cannot require itself", id);
        for (i = 0; i < c->ngates && !err; i++)
            if (!strcmp(c->gates[i], id))
                err = cl_perr_at(p, col, "'%s' is required twice", id);
        if (!err) {
            int found = 0;
            for (i = 0; p->f && i < p->f->nclaims && &p->f->claims[i] != c; i++)
                if (!strcmp(p->f->claims[i].id, id))
                    found = 1;
            if (!found)
                err = cl_perr_at(p, col, "requires '%s': no claim '%s' is defined before this one in the file", id, id);
        }
        if (!err && c->ngates >= LG_CLAIMS_MAX_GATES)
            err = cl_perr_at(p, col, "more than %d required claims", LG_CLAIMS_MAX_GATES);
        if (!err && !(slot = cl_push((void **)&c->gates, &c->ngates, sizeof(*slot))))
            err = LG_ENOMEM;
        if (err < 0) {
            lg_free(id);
            return err;
        }
        *slot = id;
        any = 1;
    }
    return any ? 0 : PERR(p, "expected claim ids after 'requires'");
}

/* Strip a trailing comment ('#' outside a string) and trailing blanks. */
static size_t line_content_len(const char *s, size_t n)
{
    size_t i;
    int in_str = 0;
    for (i = 0; i < n; i++) {
        if (in_str && s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '"')
            in_str = !in_str;
        else if (!in_str && s[i] == '#')
            break;
    }
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\r'))
        i--;
    return i;
}

/* One directive inside a claim. Returns 1 at 'end', 0 otherwise, < 0 on error. */
/* The rest of a line that is one of two keywords: *flag = first_value for
 * `first`, !first_value for `second`; anything else, or more on the line,
 * is an error ("expected 'first' or 'second'"). */
static int parse_choice(parser *p, const char *first, const char *second, int first_value, int *flag)
{
    if (cl_keyword_is(p, first))
        *flag = first_value;
    else if (cl_keyword_is(p, second))
        *flag = !first_value;
    else
        return PERR(p, "expected '%s' or '%s'", first, second);
    return cl_expect_eol(p);
}

static int parse_claim_line(parser *p, lg_claim *c, unsigned *seen)
{
    size_t kcol;
    char *kw = NULL;
    int err = 0;
    enum { S_SAYS = 1, S_STUDY = 2, S_RUN = 4, S_STALE = 8, S_CORRECT = 16, S_EXPECT = 32, S_BY = 64 };
    unsigned bit = 0;
    cl_skip_ws(p);
    kcol = p->c;
    if ((err = cl_scan_word(p, "-", "a directive", &kw)) < 0)
        return err;
    bit = !strcmp(kw, "says") ? S_SAYS : !strcmp(kw, "study") ? S_STUDY : !strcmp(kw, "run") ? S_RUN
        : !strcmp(kw, "stale-if") ? S_STALE : !strcmp(kw, "correct") ? S_CORRECT
        : !strcmp(kw, "expect") ? S_EXPECT : !strcmp(kw, "by") || !strcmp(kw, "for") ? S_BY : 0;
    if (bit && (*seen & bit)) {
        err = bit == S_BY ? cl_perr_at(p, kcol, "a second 'by' / 'for each' in claim '%s' (one grid parameter per claim)", c->id)
                          : cl_perr_at(p, kcol, "'%s' given twice in claim '%s'", kw, c->id);
        goto out;
    }
    *seen |= bit;
    if (!strcmp(kw, "end")) {
        if ((err = cl_expect_eol(p)) < 0)
            goto out;
        err = 1;
    } else if (bit == S_SAYS) {
        if ((err = cl_scan_string(p, &c->says)) == 0)
            err = cl_expect_eol(p);
    } else if (bit == S_STUDY) {
        if ((err = cl_scan_word(p, "_.-", "a study name", &c->study)) == 0)
            err = cl_expect_eol(p);
    } else if (bit == S_RUN) {
        if ((err = cl_scan_word(p, "_-", "'latest' or a run id prefix", &c->run)) == 0 &&
            (err = cl_expect_eol(p)) == 0 && !strcmp(c->run, "latest")) {
            lg_free(c->run);
            c->run = NULL;
        }
    } else if (bit == S_STALE) {
        size_t vcol;
        if (!cl_keyword_is(p, "engine-older-than")) {
            err = PERR(p, "expected 'engine-older-than VERSION'");
            goto out;
        }
        cl_skip_ws(p);
        vcol = p->c;
        if ((err = cl_scan_word(p, ".", "a version (e.g. 0.1.0)", &c->engine_min)) < 0)
            goto out;
        for (size_t i = 0; c->engine_min[i]; i++)
            if (!isdigit((unsigned char)c->engine_min[i]) &&
                !(c->engine_min[i] == '.' && i > 0 && c->engine_min[i + 1] && c->engine_min[i + 1] != '.')) {
                err = cl_perr_at(p, vcol, "'%s' is not a version (digits and dots, e.g. 0.1.0)", c->engine_min);
                goto out;
            }
        err = cl_expect_eol(p);
    } else if (bit == S_CORRECT) {
        err = parse_choice(p, "holm", "none", 1, &c->correct_holm);
    } else if (bit == S_EXPECT) {
        err = parse_choice(p, "pass", "fail", 0, &c->expect_fail);
    } else if (bit == S_BY) {
        /* by KEY | for each KEY: one verdict per value of the grid parameter KEY */
        if (!strcmp(kw, "for") && !cl_keyword_is(p, "each")) {
            err = PERR(p, "expected 'for each PARAM'");
            goto out;
        }
        if ((err = cl_scan_ident(p, ".-", "a grid parameter name", &c->by_key)) == 0)
            err = cl_expect_eol(p);
    } else if (!strcmp(kw, "sample")) {
        err = parse_sample(p, c);
    } else if (!strcmp(kw, "require")) {
        err = parse_require(p, c);
    } else if (!strcmp(kw, "requires")) {
        err = parse_gates(p, c);
    } else if (!strcmp(kw, "claim")) {
        err = cl_perr_at(p, kcol, "claim '%s' (line %d) has no 'end' before the next claim", c->id, c->line);
    } else {
        err = cl_perr_at(p, kcol, "unknown directive '%s' (says, study, run, stale-if, by, for each, sample, require, requires, correct, expect, end)", kw);
    }
out:
    lg_free(kw);
    return err;
}

static int check_claim(parser *p, lg_claim *c)
{
    if (!c->says)
        return lg_error_set(LG_EINPUT, "%s:%d:1: claim '%s' has no 'says \"...\"' sentence", p->path, c->line, c->id);
    if (!c->study)
        return lg_error_set(LG_EINPUT, "%s:%d:1: claim '%s' names no study ('study NAME')", p->path, c->line, c->id);
    if (c->nrequires == 0)
        return lg_error_set(LG_EINPUT, "%s:%d:1: claim '%s' has no 'require' line", p->path, c->line, c->id);
    return 0;
}

int lg_claims_parse(const char *path, const char *text, size_t len, lg_claim_file **out)
{
    parser P = {0};
    lg_claim_file *f = NULL;
    lg_claim *c = NULL;
    unsigned seen = 0;
    size_t pos = 0;
    int err = 0, any = 0;
    *out = NULL;
    P.path = path ? path : "<claims>";
    if (len > LG_CLAIMS_MAX_FILE)
        return lg_error_set(LG_EINPUT, "%s: larger than the limit of %u bytes", P.path, LG_CLAIMS_MAX_FILE);
    if (!(f = lg_calloc(1, sizeof(*f))) || !(f->path = lg_strdup(P.path))) {
        err = LG_ENOMEM;
        goto out;
    }
    P.f = f;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t raw = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char *kw = NULL;
        P.line++;
        P.lp = text + pos;
        P.c = 0;
        pos += raw + (nl ? 1 : 0);
        if (memchr(P.lp, '\0', raw)) {
            err = cl_perr_at(&P, (size_t)((const char *)memchr(P.lp, '\0', raw) - P.lp), "NUL byte in the file");
            goto out;
        }
        if (raw > LG_CLAIMS_MAX_LINE) {
            err = cl_perr_at(&P, LG_CLAIMS_MAX_LINE, "line longer than %d bytes", LG_CLAIMS_MAX_LINE);
            goto out;
        }
        P.ll = line_content_len(P.lp, raw);
        cl_skip_ws(&P);
        if (cl_at_end(&P))
            continue;
        if (c) {
            if ((err = parse_claim_line(&P, c, &seen)) < 0)
                goto out;
            if (err == 1) {
                if ((err = check_claim(&P, c)) < 0)
                    goto out;
                c = NULL;
            }
            continue;
        }
        {
            size_t kcol = P.c;
            if ((err = cl_scan_word(&P, "-", "'claim ID'", &kw)) < 0)
                goto out;
            if (!strcmp(kw, "claims-language")) {
                double v;
                lg_free(kw);
                if (any) {
                    err = cl_perr_at(&P, kcol, "'claims-language' must come first");
                    goto out;
                }
                cl_skip_ws(&P);
                kcol = P.c;
                if ((err = cl_scan_number(&P, &v)) < 0 || (err = cl_expect_eol(&P)) < 0)
                    goto out;
                if (v != 1) {
                    err = cl_perr_at(&P, kcol, "unsupported claims-language %g (this ledger reads 1)", v);
                    goto out;
                }
                any = 1;
                continue;
            }
            if (strcmp(kw, "claim")) {
                err = cl_perr_at(&P, kcol, "expected 'claim ID', found '%s'", kw);
                lg_free(kw);
                goto out;
            }
            lg_free(kw);
        }
        any = 1;
        if (f->nclaims >= LG_CLAIMS_MAX_CLAIMS) {
            err = cl_perr_at(&P, 0, "more than %d claims in one file", LG_CLAIMS_MAX_CLAIMS);
            goto out;
        }
        if (!(c = cl_push((void **)&f->claims, &f->nclaims, sizeof(*c)))) {
            err = LG_ENOMEM;
            goto out;
        }
        c->line = P.line;
        seen = 0;
        {
            size_t icol;
            cl_skip_ws(&P);
            icol = P.c;
            if (!isalnum((unsigned char)cl_cur(&P))) {
                err = PERR(&P, "expected a claim id (letters, digits, '-', '_', '.')");
                goto out;
            }
            if ((err = cl_scan_word(&P, "-_.", "a claim id", &c->id)) < 0 || (err = cl_expect_eol(&P)) < 0)
                goto out;
            for (size_t i = 0; i + 1 < f->nclaims; i++)
                if (!strcmp(f->claims[i].id, c->id)) {
                    err = cl_perr_at(&P, icol, "claim '%s' is already defined (line %d)", c->id, f->claims[i].line);
                    goto out;
                }
        }
    }
    if (c) {
        err = lg_error_set(LG_EINPUT, "%s:%d:1: claim '%s' has no 'end'", P.path, c->line, c->id);
        goto out;
    }
    *out = f;
    f = NULL;
    err = 0;
out:
    lg_claims_free(f);
    return err;
}

int lg_claims_load(const char *path, lg_claim_file **out)
{
    lg_buf b = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_file_read(path, LG_CLAIMS_MAX_FILE, &b)) < 0)
        goto out;
    err = lg_claims_parse(path, b.ptr, b.len, out);
out:
    lg_buf_release(&b);
    return err;
}
