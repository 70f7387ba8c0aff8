/*
 * evidence_int.h - what the evidence files share (not an API: only
 * evidence*.c include it). evidence.c holds the context, the run list and
 * the providers; evidence_index.c the index cross-check; evidence_fresh.c
 * the freshness of a run (staleness by meaning, signatures);
 * evidence_claims.c the claim files. The context and the run entries are
 * defined here so that each file reads and fills the same per-run cache.
 */
#ifndef LG_EVIDENCE_INT_H
#define LG_EVIDENCE_INT_H

#include <sqlite3.h>

#include "ledger/evidence.h"
#include "ledger/sign.h"

#define SPEC_FILE_MAX (16u * 1024 * 1024) /* engine/study.c's limit on a study file */
#define SEARCH_MAX_FILES 4096             /* files looked at when a study file moved */
#define SEARCH_MAX_DEPTH 4
#define SEARCH_MAX_BYTES (64u * 1024 * 1024) /* bytes of candidate files read in one search */

typedef struct {
    int done;
    lg_evidence status;
    char *reason;
} run_fact;

typedef struct {
    lg_run_info info;
    cJSON *m;          /* verified manifest; NULL until loaded */
    int index_checked; /* its index rows matched the manifest */
    run_fact fact[2];  /* [0] latest-run claims, [1] claims pinned to this run */
} run_ent;

struct lg_evidence_ctx {
    lg_ledger *lg;
    sqlite3 *db;
    run_ent *runs; /* the ledger's run list, by seq */
    size_t nruns;
    int listed;
    /* answer buffers, valid until the next call */
    double *values;
    char **labels;
    size_t n, cap;
    char **strs; /* grid values */
    size_t nstrs;
    char run_id[65];
    char engine[64];
    lg_buf reason;
    int require_signed; /* lg_evidence_set_require_signed */
    int keys_loaded;
    lg_keyring keys; /* trusted keys, loaded on first use (ev_trust_keys) */
};

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

/* ---- shared helpers (each documented at its definition) ---- */

int ev_check_index(lg_evidence_ctx *ev, run_ent *e);
int ev_cmp_str(const void *a, const void *b);
int ev_db_err(sqlite3 *db, const char *what);
int ev_load_run(lg_evidence_ctx *ev, run_ent *e);
int ev_run_fact_get(lg_evidence_ctx *ev, run_ent *e, int pinned, const run_fact **out);
int ev_strlist_add(strlist *l, char *s);
int ev_trust_keys(lg_evidence_ctx *ev, const lg_keyring **out);
void ev_strlist_release(strlist *l);

#endif
