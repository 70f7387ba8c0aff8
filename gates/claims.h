/*
 * claims.h - the claim language: parse a claims file into an AST.
 *
 * A claims file (claims/NAME.claims) is line-based; the full reference is in
 * gates/CLAIMS.md ("Claim language"). In short:
 *
 *   claims-language 1                      # optional header
 *   claim trained-beats-random
 *     says "Trained TopK SAEs agree across seeds more than random-init SAEs"
 *     study small-topk
 *     run latest                           # or: run 3fa2c1 (pinned run id prefix)
 *     by k                                 # optional (or: for each k): one verdict per value of k
 *     stale-if engine-older-than 0.1.0     # optional
 *     sample trained = seed.mmcs_mean where control=trained k=8
 *     sample random  = seed.mmcs_mean where control=random and k=8
 *     sample other   = cell.fvu from other-study where k=8   # optional: another study's latest run
 *     require mean(trained) - mean(random) > 0
 *     require mannwhitney(trained, random, alternative=greater).p < 0.01
 *     correct holm                         # optional: Holm across the file's corrected p's
 *     expect pass                          # or: expect fail (documented negative result)
 *     requires stress-ood stress-random    # optional: gate claims (defined earlier in the file);
 *                                          # PASS only when every gate is ok, else BLOCKED
 *   end
 *
 * Parse errors are LG_EINPUT with the message "FILE:LINE:COL: message"
 * (1-based line and column). The parser never prints.
 */
#ifndef LG_CLAIMS_H
#define LG_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include "gates/stats.h"

/* Resource limits (untrusted input). */
#define LG_CLAIMS_MAX_FILE (1u << 20)   /* bytes */
#define LG_CLAIMS_MAX_LINE 4096         /* bytes per line, newline excluded */
#define LG_CLAIMS_MAX_CLAIMS 1000       /* per file */
#define LG_CLAIMS_MAX_SAMPLES 32        /* per claim */
#define LG_CLAIMS_MAX_REQUIRES 64       /* per claim */
#define LG_CLAIMS_MAX_FILTERS 32        /* per sample */
#define LG_CLAIMS_MAX_TERMS 16          /* per require expression */
#define LG_CLAIMS_MAX_NAME 128          /* ids, names, metric and filter keys */
#define LG_CLAIMS_MAX_SAYS 1024         /* the sentence */
#define LG_CLAIMS_MAX_GATES 32          /* claims named by `requires`, per claim */
#define LG_CLAIMS_MAX_RESAMPLES 1000000L

typedef enum { LG_UNIT_CELL = 0, LG_UNIT_PAIR = 1, LG_UNIT_SEED = 2 } lg_unit;

typedef enum { LG_OP_EQ = 0, LG_OP_NE, LG_OP_LT, LG_OP_LE, LG_OP_GT, LG_OP_GE } lg_op;

/* One filter on a condition's parameters: key op value. When both the
 * parameter and `value` parse as numbers they compare numerically ("4" ==
 * "4.0"); otherwise as strings (= and != only; <, <=, >, >= on strings never
 * match). A parameter the condition lacks never matches. */
typedef struct {
    char *key;
    lg_op op;
    char *value;
    int is_num;     /* value parsed as a finite number */
    double num;
} lg_filter;

/* True when a condition parameter value (NULL = absent) satisfies f. */
int lg_filter_match(const lg_filter *f, const char *param_value);
/* f = the filter key == value (borrowing both strings), numeric when value is
 * a finite decimal number (digits, sign, '.', 'e' only): what a report's
 * grouping and plots add to a sample's filters. */
void lg_filter_eq(lg_filter *f, const char *key, const char *value);

typedef struct {
    char *name;
    lg_unit unit;
    char *metric;
    char *study;         /* `from STUDY`: the sample's own study (its latest ok run), or NULL for
                            the claim's study (and its `run`) */
    lg_filter *filters;
    size_t nfilters;
    int line;
} lg_sample_decl;

typedef enum {
    LG_FN_CONST = 0,     /* a number literal */
    LG_FN_MEAN, LG_FN_SD, LG_FN_SE, LG_FN_MIN, LG_FN_MAX, LG_FN_MEDIAN, LG_FN_N,
    LG_FN_TCI,           /* t-based CI of the mean */
    LG_FN_BOOTSTRAP,     /* bootstrap CI of the mean */
    LG_FN_BOOTSTRAP_DIFF,/* bootstrap CI of mean(a) - mean(b) */
    LG_FN_WELCH, LG_FN_PAIRED, LG_FN_MANNWHITNEY, LG_FN_PERMUTATION,
    LG_FN_DIFF,          /* mean(a) - mean(b) */
    LG_FN_COHEN_D
} lg_fn;

typedef enum {
    LG_FIELD_VALUE = 0,  /* scalar functions */
    LG_FIELD_P, LG_FIELD_STAT /* .t or .u */, LG_FIELD_DF, LG_FIELD_EST, LG_FIELD_LO, LG_FIELD_HI
} lg_field;

/* One term of a require expression: sign * fn(samples, options).field */
typedef struct {
    int sign;            /* +1 or -1 */
    lg_fn fn;
    double constant;     /* LG_FN_CONST */
    int sample[2];       /* indexes into the claim's samples; -1 when unused */
    lg_field field;
    /* options (defaults: level 0.95, resamples 10000, seed 0, two-sided,
     * Mann-Whitney auto, bootstrap percentile) */
    double level;
    long resamples;
    uint64_t seed;
    lg_alternative alt;
    lg_mwu_method mwu;
    lg_boot_method boot;
    int line, col;
} lg_term;

typedef struct {
    lg_term *terms;
    size_t nterms;
    lg_op op;            /* LT, LE, GT or GE */
    double threshold;
    char *text;          /* the expression as written, e.g. "welch(a, b).p < 0.01" */
    int line;
} lg_require;

typedef struct {
    char *id;
    char *says;
    char *study;
    char *run;           /* pinned run id prefix; NULL = latest ok run of the study */
    char *engine_min;    /* stale-if engine-older-than VERSION; NULL = no policy */
    char *by_key;        /* `by KEY` / `for each KEY`: one verdict per value of this grid
                            parameter (eval adds KEY=value to every sample); NULL = none */
    lg_sample_decl *samples;
    size_t nsamples;
    lg_require *requires;
    size_t nrequires;
    char **gates;        /* `requires ID...`: ids of claims defined earlier in the same file (so no
                            cycles); the claim is BLOCKED unless every one of them is ok */
    size_t ngates;
    int correct_holm;    /* 1: its single-term .p requirements join the file's Holm family */
    int expect_fail;     /* 1: documented negative result */
    int line;
} lg_claim;

typedef struct {
    char *path;
    lg_claim *claims;
    size_t nclaims;
} lg_claim_file;

/* Parse `len` bytes of `text` (need not be NUL-terminated); `path` names the
 * file in error messages. On success *out is a new file the caller frees with
 * lg_claims_free. */
int lg_claims_parse(const char *path, const char *text, size_t len, lg_claim_file **out);
/* Read (at most LG_CLAIMS_MAX_FILE bytes) and parse a file. */
int lg_claims_load(const char *path, lg_claim_file **out);
void lg_claims_free(lg_claim_file *f);   /* accepts NULL */

/* Names, for rendering: "cell", "pair", "seed"; "<", "<=", ...; "mean", "welch", ...;
 * "p", "t"/"u", "df", "est", "lo", "hi", "value". */
const char *lg_unit_name(lg_unit u);
const char *lg_op_name(lg_op op);
const char *lg_fn_name(lg_fn fn);
const char *lg_field_name(lg_fn fn, lg_field field);
const char *lg_alternative_name(lg_alternative alt);
/* Compare with an operator; NaN never satisfies. */
int lg_op_holds(lg_op op, double a, double b);

#endif
