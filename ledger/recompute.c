/*
 * recompute.c - derive recorded results again from stored artifacts (see
 * recompute.h).
 *
 * Why this is worth doing without any key: the manifest's numbers are what
 * claims and reports read, and a contributor who can rewrite the ledger can
 * also rewrite those numbers and recompute every hash. The weights they
 * were derived from are content-addressed artifacts of the same run, and the
 * derivation is the engine's deterministic code, so recomputing it from the
 * stored bytes either gives the recorded numbers exactly or exposes them.
 * (Replacing the weights as well is caught by `ledger replay`, which trains
 * them again from the spec.)
 *
 * Invariant: nothing is computed from bytes that do not hash to the
 * recorded digest: each cell file is re-hashed before it is read.
 */
#include "ledger/recompute.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "engine/backend.h"
#include "engine/run.h"
#include "engine/consistency_obj.h"
#include "engine/sae.h"
#include "ledger/manifest.h"
#include "ledger/replay.h"
#include "ledger/saelens.h"

typedef struct {
    lg_ledger *lg;
    const lg_recompute_opts *o;
    lg_problems *ps;
    lg_recompute_stats *st;
    const char *subject; /* "run 3-ab12cd34ef56" */
} rctx;

/* An error problem about this run. */
static int problem(rctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(rctx *x, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int err;
    va_start(ap, fmt);
    msg = lg_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return LG_ENOMEM;
    err = lg_problems_add(x->ps, LG_PROBLEM_ERROR, "recompute", x->subject, "%s", msg);
    lg_free(msg);
    return err;
}

/* Compares the recomputed metrics *got with `recorded`, the metrics of the
 * recorded row `row`, or reports the row as missing when row is NULL;
 * frees *got either way. */
static int compare_row(rctx *x, const cJSON *row, const cJSON *recorded, cJSON **got, const char *what)
{
    int err = row ? lg_replay_compare_metrics(recorded, *got, what, "recomputed", NULL, 0, "recompute", x->subject,
                                              x->ps, &x->st->values)
                  : problem(x, "%s: missing from the recorded results", what);
    cJSON_Delete(*got);
    *got = NULL;
    return err;
}

/* Something that could not be recomputed for lack of an object or a data file. */
static int not_recomputed(rctx *x, const char *what, const char *why)
{
    x->st->not_recomputed++;
    return lg_problems_add(x->ps, x->o->require_artifacts ? LG_PROBLEM_ERROR : LG_PROBLEM_WARNING, "recompute",
                           x->subject, "%s: not recomputed: %s", what, why);
}

/* The trained weights of one cell from its stored file, re-hashed first.
 * *have = 0 (with a problem added) when they cannot be used. */
static int load_cell(rctx *x, const cJSON *m, const lg_condition *c, uint64_t seed, const lg_sae_config *cfg,
                     lg_sae_weights *w, int *have)
{
    char fid[160], name[256], got[65];
    const char *hex;
    lg_buf path = LG_BUF_INIT;
    lg_cell_sae cell;
    int err;

    *have = 0;
    memset(&cell, 0, sizeof cell);
    lg_condition_file_id(c->id, fid, sizeof fid);
    snprintf(name, sizeof name, "cells/%s/seed-%llu.safetensors", fid, (unsigned long long)seed);
    if (!(hex = lg_manifest_find_output(m, name))) {
        err = problem(x, "condition %s seed %llu: %s is not among the run's outputs", c->id, (unsigned long long)seed,
                      name);
        goto out;
    }
    if ((err = lg_ledger_artifact_path(x->lg, hex, &path)) < 0) {
        err = err == LG_ENOTFOUND ? not_recomputed(x, name, "missing from the local store")
                                  : problem(x, "%s: %s", name, lg_error_msg());
        goto out;
    }
    if ((err = lg_sha256_file(path.ptr, got, NULL)) < 0) {
        err = problem(x, "%s: %s", name, lg_error_msg());
        goto out;
    }
    if (strcmp(got, hex) != 0) {
        err = problem(x, "%s: object hashes to %s, the manifest says %s (not recomputed from it)", name, got, hex);
        goto out;
    }
    if ((err = lg_cell_sae_read(path.ptr, name, &cell)) < 0) {
        err = problem(x, "%s", lg_error_msg());
        goto out;
    }
    if (cell.w.d_in != cfg->d_in || cell.w.d_sae != cfg->d_sae) {
        err = problem(x, "%s: weights are [%d, %d], the spec says d_sae %d on %d-dimensional data", name, cell.w.d_sae,
                      cell.w.d_in, cfg->d_sae, cfg->d_in);
        goto out;
    }
    *w = cell.w;
    memset(&cell.w, 0, sizeof cell.w);
    *have = 1;
out:
    lg_cell_sae_release(&cell);
    lg_buf_release(&path);
    return err;
}

/* Every seed of `key` ("cells", "pairs", "seeds") recorded for cond must be
 * one the spec gives, each once. */
static int check_listed(rctx *x, const lg_study *s, const lg_condition *c, const cJSON *rc, const char *key)
{
    const cJSON *e;
    int pairs = strcmp(key, "pairs") == 0, n = 0, want, err;
    want = pairs ? s->n_seeds * (s->n_seeds - 1) / 2 : strcmp(key, "seeds") == 0 && s->n_seeds < 2 ? 0 : s->n_seeds;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rc, key)) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, pairs ? "seed_a" : "seed");
        const cJSON *b = pairs ? cJSON_GetObjectItemCaseSensitive(e, "seed_b") : NULL;
        int ia, ib = -1;
        for (ia = 0; ia < s->n_seeds && !(cJSON_IsNumber(a) && a->valuedouble == (double)s->seeds[ia]); ia++)
            ;
        if (pairs)
            for (ib = 0; ib < s->n_seeds && !(cJSON_IsNumber(b) && b->valuedouble == (double)s->seeds[ib]); ib++)
                ;
        n++;
        if (ia == s->n_seeds || (pairs && (ib == s->n_seeds || ib <= ia)))
            if ((err = problem(x, "condition %s: %s entry %d names seeds the spec does not pair this way", c->id, key,
                               n - 1)) < 0)
                return err;
    }
    if (n != want)
        return problem(x, "condition %s: %d %s recorded, the spec gives %d", c->id, n, key, want);
    return 0;
}

/* train.consistency (engine/consistency_obj.h): the held-out-seed metrics of
 * condition c's seeds need its weight-0 twin's decoders. *twin = the twin's
 * index (wb loaded unless it is c itself), or -1 when c has none or a twin
 * cell cannot be loaded (a problem is then added by load_cell). */
static int heldout_load(rctx *x, const cJSON *m, const lg_study *s, const lg_condition *c, int d,
                        const lg_sae_weights *w, lg_sae_weights *wb, int *twin)
{
    int b = lg_cobj_heldout_twin(s, (int)(c - s->conds)), i, have, err;
    lg_sae_config cfg;
    (void)w;
    *twin = -1;
    if (b < 0)
        return 0;
    if (b != (int)(c - s->conds)) {
        if ((err = lg_run_cell_config(s, &s->conds[b], d, &cfg)) < 0)
            return problem(x, "%s", lg_error_msg());
        for (i = 0; i < s->n_seeds; i++) {
            if ((err = load_cell(x, m, &s->conds[b], s->seeds[i], &cfg, &wb[i], &have)) < 0)
                return err;
            if (!have)
                return 0;
        }
    }
    *twin = b;
    return 0;
}

static int heldout_seed(const lg_study *s, const lg_condition *c, int d, const lg_sae_weights *w,
                        const lg_sae_weights *wb, int i, cJSON *got)
{
    const float *Wc[LG_MAX_SEEDS], *Wb[LG_MAX_SEEDS];
    int j;
    for (j = 0; j < s->n_seeds; j++) {
        Wc[j] = w[j].W_dec;
        Wb[j] = wb[j].W_dec;
    }
    return lg_cobj_heldout_seed(s, (int)(c - s->conds), d, Wc, Wb, i, got);
}

static int recompute_condition(rctx *x, const cJSON *m, const lg_study *s, const lg_condition *c, const cJSON *rc,
                               int d, lg_run_eval *ev, double rel)
{
    const int ns = s->n_seeds;
    lg_sae_weights w[LG_MAX_SEEDS];
    int have[LG_MAX_SEEDS];
    double *pm = NULL, *pc = NULL;
    lg_sae_config cfg;
    cJSON *got = NULL;
    char what[200];
    lg_sae_weights wb[LG_MAX_SEEDS]; /* train.consistency: the weight-0 twin's cells */
    int trained = !c->control_random && c->p.steps > 0, all = 1, i, j, err, twin = -1;

    memset(w, 0, sizeof w);
    memset(wb, 0, sizeof wb);
    if ((err = lg_run_cell_config(s, c, d, &cfg)) < 0) {
        err = problem(x, "%s", lg_error_msg());
        goto out;
    }
    if ((err = check_listed(x, s, c, rc, "cells")) < 0 || (err = check_listed(x, s, c, rc, "pairs")) < 0 ||
        (err = check_listed(x, s, c, rc, "seeds")) < 0)
        goto out;
    for (i = 0; i < ns; i++) {
        const cJSON *rcell = lg_results_find_seeded(rc, "cells", (double)s->seeds[i], -1);
        have[i] = 0;
        if (trained) {
            if ((err = load_cell(x, m, c, s->seeds[i], &cfg, &w[i], &have[i])) < 0)
                goto out;
        } else {
            /* a control=random cell: its weights are the initialisation (b_dec does not enter W_dec) */
            if ((err = lg_sae_init_weights(&cfg, lg_cobj_train_seed(c->p.consistency.weight, s->seeds[i]), NULL,
                                           &w[i])) < 0)
                goto out;
            have[i] = 1;
        }
        all &= have[i];
        if (!rcell || !have[i] || !ev)
            continue;
        snprintf(what, sizeof what, "condition %s seed %llu", c->id, (unsigned long long)s->seeds[i]);
        if (!(got = cJSON_CreateObject())) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = lg_run_eval_cell(ev, c, s->seeds[i], trained ? &w[i] : NULL, got)) < 0) {
            err = problem(x, "%s: %s", what, lg_error_msg());
            goto out;
        }
        if ((err = lg_replay_compare_metrics(cJSON_GetObjectItemCaseSensitive(rcell, "metrics"), got, what,
                                             "recomputed", "final_loss", rel, "recompute", x->subject, x->ps,
                                             &x->st->values)) < 0)
            goto out;
        cJSON_Delete(got);
        got = NULL;
        x->st->cells++;
    }
    if (!all || ns < 2)
        goto out;
    if (!(pm = lg_calloc((size_t)ns * ns, sizeof(double))) || !(pc = lg_calloc((size_t)ns * ns, sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < ns; i++)
        for (j = i + 1; j < ns; j++) {
            const cJSON *rp = lg_results_find_seeded(rc, "pairs", (double)s->seeds[i], (double)s->seeds[j]);
            snprintf(what, sizeof what, "condition %s pair %llu/%llu", c->id, (unsigned long long)s->seeds[i],
                     (unsigned long long)s->seeds[j]);
            if (!(got = cJSON_CreateObject())) {
                err = LG_ENOMEM;
                goto out;
            }
            if ((err = lg_run_pair_metrics(s, c, w[i].W_dec, w[j].W_dec, d, got, &pm[i * ns + j], &pc[i * ns + j],
                                           NULL)) < 0)
                goto out;
            pm[j * ns + i] = pm[i * ns + j];
            pc[j * ns + i] = pc[i * ns + j];
            if ((err = compare_row(x, rp, cJSON_GetObjectItemCaseSensitive(rp, "metrics"), &got, what)) < 0)
                goto out;
            x->st->pairs++;
        }
    if ((err = heldout_load(x, m, s, c, d, w, wb, &twin)) < 0)
        goto out;
    for (i = 0; i < ns; i++) {
        const cJSON *rs = lg_results_find_seeded(rc, "seeds", (double)s->seeds[i], -1);
        snprintf(what, sizeof what, "condition %s seed mean of %llu", c->id, (unsigned long long)s->seeds[i]);
        if (!(got = cJSON_CreateObject())) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = lg_run_seed_metrics(pm, pc, ns, i, got)) < 0)
            goto out;
        if (twin >= 0 && (err = heldout_seed(s, c, d, w, twin == (int)(c - s->conds) ? w : wb, i, got)) < 0)
            goto out;
        if ((err = compare_row(x, rs, cJSON_GetObjectItemCaseSensitive(rs, "metrics"), &got, what)) < 0)
            goto out;
    }
out:
    cJSON_Delete(got);
    for (i = 0; i < ns; i++) {
        lg_sae_weights_release(&w[i]);
        lg_sae_weights_release(&wb[i]);
    }
    lg_free(pm);
    lg_free(pc);
    return err;
}

/* ---- imports ------------------------------------------------------------------------- */

#define IMPORT_MAX 64

/* The pair metrics of an import run from its stored sae_weights.safetensors
 * (extra.import.saes names each SAE's seed and shape). Imports made before
 * the matching options were recorded are compared on the metrics that do not
 * depend on them (mmcs, mmcs_ab, mmcs_ba, mmcs_signed). */
static int recompute_import(rctx *x, const cJSON *m)
{
    const cJSON *imp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"), "import");
    const cJSON *saes = cJSON_GetObjectItemCaseSensitive(imp, "saes"), *e;
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(imp, "shared_threshold");
    const cJSON *hm = cJSON_GetObjectItemCaseSensitive(imp, "hungarian_max");
    const cJSON *cond = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions"), 0);
    const int have_opts = cJSON_IsNumber(thr) && cJSON_IsNumber(hm);
    float *W[IMPORT_MAX];
    double seed[IMPORT_MAX], *pm = NULL, *pc = NULL;
    int d_in[IMPORT_MAX], d_sae[IMPORT_MAX], n = 0, all = 1, i, j, err = 0, npairs = 0;
    cJSON *got = NULL, *rec = NULL;
    char what[160];

    memset(W, 0, sizeof W);
    if (!cJSON_IsArray(saes) || cJSON_GetArraySize(saes) > IMPORT_MAX || !cond)
        return problem(x, "import: extra.import.saes or the results' condition is missing or malformed");
    cJSON_ArrayForEach(e, saes) {
        const cJSON *sj = cJSON_GetObjectItemCaseSensitive(e, "seed"), *a = cJSON_GetObjectItemCaseSensitive(e, "d_in"),
                    *b = cJSON_GetObjectItemCaseSensitive(e, "d_sae");
        if (!cJSON_IsNumber(sj) || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 1 ||
            b->valuedouble < 1 || a->valuedouble * b->valuedouble > 1099511627776.0)
            return problem(x, "import: extra.import.saes[%d] lacks a seed or a valid shape", n);
        seed[n] = sj->valuedouble;
        d_in[n] = (int)a->valuedouble;
        d_sae[n] = (int)b->valuedouble;
        n++;
    }
    /* An import has one condition whose cells hold only each SAE's shape: a
     * forged cell metric (fvu, ...) or a second condition was never compared
     * and passed (tests/cli/t7908-import-extra-metrics.sh). */
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions")) != 1 &&
        (err = problem(x, "import: %d conditions recorded, an import has one",
                       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions")))) < 0)
        goto out;
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cond, "cells")) != n &&
        (err = problem(x, "import: %d cells recorded, it imported %d SAEs",
                       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cond, "cells")), n)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        const cJSON *rc = lg_results_find_seeded(cond, "cells", seed[i], -1);
        snprintf(what, sizeof what, "import cell of seed %.0f", seed[i]);
        if (!(got = cJSON_CreateObject()) || !cJSON_AddNumberToObject(got, "d_in", d_in[i]) ||
            !cJSON_AddNumberToObject(got, "d_sae", d_sae[i])) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = compare_row(x, rc, cJSON_GetObjectItemCaseSensitive(rc, "metrics"), &got, what)) < 0)
            goto out;
    }
    for (i = 0; i < n; i++) {
        char name[96], got_hex[65];
        const char *hex;
        lg_buf path = LG_BUF_INIT;
        snprintf(name, sizeof name, "saes/seed-%.0f/sae_weights.safetensors", seed[i]);
        if (!(hex = lg_manifest_find_output(m, name)))
            err = problem(x, "import: %s is not among the run's outputs", name);
        else if ((err = lg_ledger_artifact_path(x->lg, hex, &path)) < 0)
            err = err == LG_ENOTFOUND ? not_recomputed(x, name, "missing from the local store")
                                      : problem(x, "%s: %s", name, lg_error_msg());
        else if ((err = lg_sha256_file(path.ptr, got_hex, NULL)) < 0 || strcmp(got_hex, hex) != 0)
            err = problem(x, "%s: object does not hash to the manifest's %s (not recomputed from it)", name, hex);
        else if (lg_saelens_read_decoder(path.ptr, name, d_sae[i], d_in[i], &W[i]) < 0)
            err = problem(x, "%s", lg_error_msg());
        lg_buf_release(&path);
        if (err < 0)
            goto out;
        all &= W[i] != NULL;
    }
    if (!(pm = lg_calloc((size_t)n * n + 1, sizeof(double))) || !(pc = lg_calloc((size_t)n * n + 1, sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++) {
            const cJSON *rp;
            if (d_in[i] != d_in[j] || d_sae[i] != d_sae[j])
                continue;
            npairs++;
            if (!W[i] || !W[j])
                continue;
            snprintf(what, sizeof what, "import pair %.0f/%.0f", seed[i], seed[j]);
            rp = lg_results_find_seeded(cond, "pairs", seed[i], seed[j]);
            rec = rp ? cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rp, "metrics"), 1) : NULL;
            if (!(got = cJSON_CreateObject()) || (rp && cJSON_GetObjectItemCaseSensitive(rp, "metrics") && !rec)) {
                err = LG_ENOMEM;
                goto out;
            }
            if ((err = lg_saelens_pair_metrics(W[i], W[j], d_sae[i], d_in[i], have_opts ? thr->valuedouble : 0.7,
                                               have_opts ? (int)hm->valuedouble : 0, got, &pm[i * n + j],
                                               &pc[i * n + j])) < 0)
                goto out;
            pm[j * n + i] = pm[i * n + j];
            pc[j * n + i] = pc[i * n + j];
            if (!have_opts) { /* options unknown: leave out what depends on them */
                cJSON_DeleteItemFromObjectCaseSensitive(rec, "mcc");
                cJSON_DeleteItemFromObjectCaseSensitive(rec, "shared_frac");
            }
            err = compare_row(x, rp, rec, &got, what);
            cJSON_Delete(rec);
            rec = NULL;
            if (err < 0)
                goto out;
            x->st->pairs++;
        }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cond, "pairs")) != npairs &&
        (err = problem(x, "import: %d pairs recorded, its SAEs give %d", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cond, "pairs")), npairs)) < 0)
        goto out;
    if (!all || !have_opts) /* the per-seed means include mcc_mean, which needs the options */
        goto out;
    for (i = 0; i < n; i++) {
        const cJSON *rs = lg_results_find_seeded(cond, "seeds", seed[i], -1);
        double sm = 0, sc = 0;
        int cnt = 0;
        for (j = 0; j < n; j++) /* as cmd_import.c sums them */
            if (j != i && d_in[i] == d_in[j] && d_sae[i] == d_sae[j]) {
                sm += pm[i * n + j];
                sc += pc[i * n + j];
                cnt++;
            }
        if (!cnt)
            continue;
        snprintf(what, sizeof what, "import seed mean of %.0f", seed[i]);
        if (!(got = cJSON_CreateObject()) || !cJSON_AddNumberToObject(got, "mmcs_mean", sm / cnt) ||
            (isfinite(sc) && !cJSON_AddNumberToObject(got, "mcc_mean", sc / cnt))) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = compare_row(x, rs, cJSON_GetObjectItemCaseSensitive(rs, "metrics"), &got, what)) < 0)
            goto out;
    }
out:
    cJSON_Delete(got);
    cJSON_Delete(rec);
    for (i = 0; i < n; i++)
        lg_free(W[i]);
    lg_free(pm);
    lg_free(pc);
    return err;
}

int lg_recompute_run(lg_ledger *lg, const lg_run_info *info, const cJSON *m, const lg_recompute_opts *o,
                     lg_problems *ps, lg_recompute_stats *st)
{
    const char *kind = lg_json_str(m, "kind"), *status = lg_json_str(m, "status");
    const char *rec_data = lg_json_str(m, "data_digest"), *backend = lg_json_str(m, "backend");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(m, "results"), *rc, *dj;
    char subject[96], digest[65];
    const lg_backend *be = NULL;
    lg_run_eval *ev = NULL;
    lg_study *s = NULL;
    rctx x;
    int d = 0, i, err = 0;

    if (!kind || (strcmp(kind, "run") != 0 && strcmp(kind, "import") != 0) || !status || strcmp(status, "ok") != 0)
        return 0;
    snprintf(subject, sizeof subject, "run %ld-%.12s", info->seq, info->run_id);
    x.lg = lg;
    x.o = o;
    x.ps = ps;
    x.st = st;
    x.subject = subject;
    st->runs++;
    if (strcmp(kind, "import") == 0)
        return recompute_import(&x, m);
    lg_error_clear();
    if (lg_replay_load_study(lg, m, subject, &s) < 0)
        return problem(&x, "%s", lg_error_msg());
    if ((err = lg_replay_check_spec(lg, m, "recompute", subject, ps)) < 0)
        goto out;
    dj = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(results, "data"), "d");
    if (cJSON_IsNumber(dj) && dj->valuedouble >= 1 && dj->valuedouble <= (1 << 20))
        d = (int)dj->valuedouble;
    if (strcmp(s->data_source, "synthetic") == 0 && d != s->synth.d) {
        err = problem(&x, "results data.d is %d, the spec's synthetic data has d %d", d, s->synth.d);
        d = s->synth.d;
        if (err < 0)
            goto out;
    }
    /* the data, for the cell metrics */
    lg_error_clear();
    if (lg_replay_check_data(s, rec_data) < 0) {
        if ((err = not_recomputed(&x, "cell metrics", lg_error_msg())) < 0)
            goto out;
    } else if ((err = lg_backend_get("cpu", &be)) < 0 || (err = lg_run_eval_open(s, be, digest, &ev)) < 0) {
        err = problem(&x, "cell metrics: %s", lg_error_msg());
        ev = NULL;
        if (err < 0)
            goto out;
    } else if (!rec_data || strcmp(rec_data, digest) != 0) {
        if ((err = problem(&x, "data digest: recorded %s, the spec's data has %s", rec_data ? rec_data : "none",
                           digest)) < 0)
            goto out;
    }
    if (d < 1) {
        err = problem(&x, "results: data.d is missing, so the condition shapes are unknown");
        goto out;
    }
    cJSON_ArrayForEach(rc, cJSON_GetObjectItemCaseSensitive(results, "conditions")) {
        const char *id = lg_json_str(rc, "id");
        for (i = 0; id && i < s->n_conds && strcmp(s->conds[i].id, id) != 0; i++)
            ;
        if ((!id || i == s->n_conds) &&
            (err = problem(&x, "condition %s: recorded, but the spec has no such condition", id ? id : "(no id)")) < 0)
            goto out;
    }
    for (i = 0; i < s->n_conds; i++) {
        rc = lg_results_find_cond(results, s->conds[i].id);
        if (!rc)
            err = problem(&x, "condition %s: in the spec, missing from the recorded results", s->conds[i].id);
        else
            err = recompute_condition(&x, m, s, &s->conds[i], rc, d, ev,
                                      backend && strcmp(backend, "cpu") == 0 ? 0 : LG_RECOMPUTE_GPU_RTOL);
        if (err < 0)
            goto out;
    }
out:
    lg_run_eval_free(ev);
    lg_study_free(s);
    return err;
}

typedef struct {
    lg_ledger *lg;
    const lg_recompute_opts *o;
    lg_problems *ps;
    lg_recompute_stats *st;
} all_ctx;

static int each_run(void *ctx, const lg_run_info *info, const cJSON *m)
{
    all_ctx *a = ctx;
    return lg_recompute_run(a->lg, info, m, a->o, a->ps, a->st);
}

int lg_recompute_all(lg_ledger *lg, const lg_recompute_opts *o, lg_problems *ps, lg_recompute_stats *st)
{
    all_ctx a = {lg, o, ps, st};
    memset(st, 0, sizeof(*st));
    return lg_ledger_foreach_run(lg, each_run, &a);
}
