/*
 * problems.h - the list of problems a check reports: one lg_problem per
 * thing that is wrong (severity, area, subject, message), appended by every
 * verifier (verify.c, verify_base.c, verify_tree.c, sign.c, claims, reports)
 * and read by the CLI, which decides the exit code from lg_problems_failed().
 * A leaf of ledger/: it calls nothing in ledger/, so the verifiers that fill
 * it never call each other through it.
 */
#ifndef LG_PROBLEMS_H
#define LG_PROBLEMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/base.h"

typedef enum { LG_PROBLEM_ERROR = 0, LG_PROBLEM_WARNING = 1 } lg_problem_severity;

typedef struct {
    lg_problem_severity severity;
    char *area;    /* "chain", "manifest", "file", "object", "index", "claim", ... */
    char *subject; /* what: "run 3-ab12cd34ef56", "commit 1a2b3c4", "table samples" */
    char *message; /* what is wrong */
} lg_problem;

typedef struct {
    lg_problem *v;
    size_t n, cap;
} lg_problems;
#define LG_PROBLEMS_INIT {NULL, 0, 0}

/* Appends a problem (strings copied). 0 or LG_ENOMEM. */
int lg_problems_add(lg_problems *ps, lg_problem_severity sev, const char *area, const char *subject, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
void lg_problems_release(lg_problems *ps);
/* Number of problems with severity LG_PROBLEM_ERROR. */
size_t lg_problems_failed(const lg_problems *ps);
/* One line per problem: "error: <area>: <subject>: <message>" (or "missing:"/"warning:"). */
int lg_problems_format(const lg_problems *ps, lg_buf *out);
/* [{"severity": "error"|"warning", "area", "subject", "message"}]; cJSON_Delete. */
cJSON *lg_problems_to_json(const lg_problems *ps);

#endif
