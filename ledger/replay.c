/*
 * replay.c - re-execute a recorded run and compare (see replay.h).
 *
 * Why exact comparison: the engine's results are a pure function of spec,
 * data, seed and backend (engine/README.md, "Determinism"), and manifests store numbers
 * in a form that reads back to the same double (manifest.h), so any
 * difference at all means the record is not what this code computes from
 * its inputs. Digests are only comparable on the backend the run was
 * recorded on; another backend is refused unless forced.
 *
 * What is compared: the data digest; every output the replay produced
 * (cell weights, and for a full replay every output including results.json)
 * against the recorded digest of the same name; every metric of every
 * replayed cell; pairs and per-seed means of the conditions whose seeds were
 * all replayed. A full replay also requires every recorded output and
 * condition to be produced again.
 */
#define _XOPEN_SOURCE 700
#include "ledger/replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifacts/json.h"
#include "base/sha256.h"
#include "engine/consistency_obj.h"
#include "ledger/manifest.h"

/* ---- the study of a run --------------------------------------------------------- */

int lg_replay_load_study(lg_ledger *lg, const cJSON *m, const char *label, lg_study **out)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(m, "spec");
    const char *sp = lg_json_str(m, "study_path");
    lg_buf path = LG_BUF_INIT;
    char *text = NULL;
    int err;

    *out = NULL;
    if (!cJSON_IsObject(spec)) {
        err = lg_error_set(LG_EINPUT, "%s: the manifest holds no study spec", label);
        goto out;
    }
    /* the spec's own path only resolves a relative data.path; without one, the repository root */
    if (sp && *sp == '/')
        err = lg_buf_puts(&path, sp);
    else
        err = lg_path_join(&path, lg_ledger_root(lg), sp && *sp ? sp : "study.json");
    if (err < 0)
        goto out;
    if (!(text = cJSON_PrintUnformatted(spec))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    if ((err = lg_study_parse(path.ptr, text, strlen(text), out)) < 0)
        lg_error_wrap("%s: recorded spec", label);
out:
    free(text);
    lg_buf_release(&path);
    return err;
}

int lg_replay_check_spec(lg_ledger *lg, const cJSON *m, const char *area, const char *label, lg_problems *ps)
{
    const char *sp = lg_json_str(m, "study_path"), *digest = lg_json_str(m, "spec_digest");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(m, "spec");
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT;
    cJSON *file = NULL;
    char got[65];
    int err = 0;

    {
        /* 'ledger run' names the run, and its results, after the spec: another name would
         * file one study's evidence under another's claims */
        const char *name = lg_json_str(spec, "name"), *study = lg_json_str(m, "study");
        const char *rstudy = lg_json_str(cJSON_GetObjectItemCaseSensitive(m, "results"), "study");
        if (name && ((study && strcmp(name, study) != 0) || (rstudy && strcmp(name, rstudy) != 0)) &&
            (err = lg_problems_add(ps, LG_PROBLEM_ERROR, area, label,
                                   "recorded as study \"%.100s\" (results: \"%.100s\"), but the embedded spec is \"%.100s\"",
                                   study ? study : "?", rstudy ? rstudy : "?", name)) < 0)
            return err;
    }
    if (!sp || !*sp || !digest || !spec)
        return 0;
    if ((err = *sp == '/' ? lg_buf_puts(&path, sp) : lg_path_join(&path, lg_ledger_root(lg), sp)) < 0)
        goto out;
    /* the file as it is now: only when it still has the recorded digest does it say what the spec was */
    if (lg_path_check_regular(path.ptr) < 0 || lg_file_read(path.ptr, 16u << 20, &text) < 0 ||
        lg_sha256_buf(text.ptr, text.len, got) < 0 || strcmp(got, digest) != 0 ||
        lg_json_parse(path.ptr, text.ptr, text.len, &file) < 0) {
        lg_error_clear();
        goto out;
    }
    if (!cJSON_Compare(file, spec, 1))
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, area, label,
                              "the embedded spec differs from %s, whose bytes have the recorded spec digest %.12s",
                              sp, digest);
out:
    cJSON_Delete(file);
    lg_buf_release(&path);
    lg_buf_release(&text);
    return err;
}

int lg_replay_check_data(const lg_study *s, const char *recorded)
{
    char got[65];
    int err;
    if (strcmp(s->data_source, "file") != 0)
        return 0;
    if (!lg_path_exists(s->data_path))
        return lg_error_set(LG_EINPUT, "%s: data file missing (recorded data digest %s)", s->data_path,
                            recorded ? recorded : "none");
    if ((err = lg_path_check_regular(s->data_path)) < 0 || (err = lg_sha256_file(s->data_path, got, NULL)) < 0)
        return err; /* a FIFO would block the hash: refused by the first check */
    if (!recorded || strcmp(got, recorded) != 0)
        return lg_error_set(LG_EINPUT, "%s: data file hashes to %s, the run recorded %s", s->data_path, got,
                            recorded ? recorded : "no data digest");
    return 0;
}

/* ---- sampling ------------------------------------------------------------------ */

typedef struct {
    int random;  /* a control=random cell: drawn after every trained cell */
    char key[65];
    int index;   /* c * n_seeds + i */
} cell_key;

static int cmp_key(const void *a, const void *b)
{
    const cell_key *x = a, *y = b;
    int c = x->random - y->random;
    if (!c)
        c = strcmp(x->key, y->key);
    return c ? c : x->index - y->index;
}

int lg_replay_select(const lg_study *s, const char *run_id, uint64_t sample_seed, int n, unsigned char *mask)
{
    int total = s->n_conds * s->n_seeds, c, i, err = 0;
    cell_key *keys = NULL;
    lg_buf b = LG_BUF_INIT;

    if (n <= 0 || n >= total) {
        memset(mask, 1, (size_t)total);
        return 0;
    }
    memset(mask, 0, (size_t)total);
    if (!(keys = lg_calloc((size_t)total, sizeof(*keys))))
        return LG_ENOMEM;
    for (c = 0; c < s->n_conds; c++)
        for (i = 0; i < s->n_seeds; i++) {
            cell_key *k = &keys[c * s->n_seeds + i];
            lg_buf_clear(&b);
            if ((err = lg_buf_printf(&b, "ledger-replay-v1\n%s\n%llu\n%s\n%llu\n", run_id,
                                     (unsigned long long)sample_seed, s->conds[c].id,
                                     (unsigned long long)s->seeds[i])) < 0 ||
                (err = lg_sha256_buf(b.ptr, b.len, k->key)) < 0)
                goto out;
            k->index = c * s->n_seeds + i;
            k->random = s->conds[c].control_random;
        }
    qsort(keys, (size_t)total, sizeof(*keys), cmp_key);
    for (i = 0; i < n; i++)
        mask[keys[i].index] = 1;
out:
    lg_free(keys);
    lg_buf_release(&b);
    return err;
}

/* ---- comparing ------------------------------------------------------------------ */

static void fmt_value(const cJSON *v, char *buf, size_t n)
{
    if (!v)
        snprintf(buf, n, "absent");
    else if (cJSON_IsNumber(v)) {
        int prec;
        for (prec = 15; prec <= 17; prec++) { /* the shortest form that reads back exactly */
            snprintf(buf, n, "%.*g", prec, v->valuedouble);
            if (strtod(buf, NULL) == v->valuedouble)
                break;
        }
    }
    else if (cJSON_IsNull(v))
        snprintf(buf, n, "null");
    else
        snprintf(buf, n, "(not a number)");
}

static int value_is_nan(const cJSON *v)
{
    return cJSON_IsNull(v) || (cJSON_IsNumber(v) && isnan(v->valuedouble));
}

static int values_equal(const cJSON *a, const cJSON *b, double rel)
{
    double x, y;
    if (value_is_nan(a) || value_is_nan(b))
        return value_is_nan(a) && value_is_nan(b);
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b))
        return 0;
    x = a->valuedouble;
    y = b->valuedouble;
    if (x == y)
        return 1;
    return rel > 0 && fabs(x - y) <= rel * fmax(fabs(x), fabs(y));
}

int lg_replay_compare_metrics(const cJSON *recorded, const cJSON *got, const char *what, const char *verb,
                              const char *skip, double rel, const char *area, const char *subject, lg_problems *ps,
                              size_t *compared)
{
    const cJSON *v;
    int err = 0;
    cJSON_ArrayForEach(v, got) {
        const cJSON *r = cJSON_IsObject(recorded) ? cJSON_GetObjectItemCaseSensitive(recorded, v->string) : NULL;
        char a[40], b[40];
        if (skip && strcmp(v->string, skip) == 0)
            continue;
        if (compared)
            (*compared)++;
        if (r && values_equal(r, v, rel))
            continue;
        fmt_value(r, a, sizeof a);
        fmt_value(v, b, sizeof b);
        if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, area, subject, "%s: %s: recorded %s, %s %s", what, v->string,
                                   a, verb, b)) < 0)
            return err;
    }
    cJSON_ArrayForEach(v, recorded) {
        if ((skip && strcmp(v->string, skip) == 0) || (cJSON_IsObject(got) && cJSON_GetObjectItemCaseSensitive(got, v->string)))
            continue;
        if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, area, subject, "%s: %s: recorded, but the engine %s no such metric",
                                   what, v->string, strcmp(verb, "replayed") == 0 ? "replayed" : "computes")) < 0)
            return err;
    }
    return 0;
}

const cJSON *lg_results_find_cond(const cJSON *results, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(results, "conditions")) {
        const char *cid = lg_json_str(c, "id");
        if (cid && strcmp(cid, id) == 0)
            return c;
    }
    return NULL;
}

const cJSON *lg_results_find_seeded(const cJSON *cond, const char *key, double a, double b)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cond, key)) {
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(e, b < 0 ? "seed" : "seed_a");
        const cJSON *sb = b < 0 ? NULL : cJSON_GetObjectItemCaseSensitive(e, "seed_b");
        if (cJSON_IsNumber(sa) && sa->valuedouble == a && (b < 0 || (cJSON_IsNumber(sb) && sb->valuedouble == b)))
            return e;
    }
    return NULL;
}

const char *lg_manifest_find_output(const cJSON *m, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const char *n = lg_json_str(o, "name");
        if (n && strcmp(n, name) == 0)
            return lg_json_str(o, "sha256");
    }
    return NULL;
}

/* Compares one replayed condition with the record. */
static int compare_condition(const cJSON *rec_results, const cJSON *cj, int full, lg_replay_result *out,
                             lg_problems *ps)
{
    const char *id = lg_json_str(cj, "id");
    const cJSON *rc = lg_results_find_cond(rec_results, id), *e;
    char subject[200], what[96];
    int err = 0;
    static const char *const arrays[] = {"cells", "pairs", "seeds"};
    size_t k;

    snprintf(subject, sizeof subject, "condition %s", id);
    if (!rc)
        return lg_problems_add(ps, LG_PROBLEM_ERROR, "cell", subject, "replayed, but not in the recorded results");
    for (k = 0; k < 3; k++) {
        int pairs = k == 1;
        if (k > 0 && !full)
            break;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cj, arrays[k])) {
            const cJSON *sa = cJSON_GetObjectItemCaseSensitive(e, pairs ? "seed_a" : "seed");
            const cJSON *sb = pairs ? cJSON_GetObjectItemCaseSensitive(e, "seed_b") : NULL;
            const cJSON *r = lg_results_find_seeded(rc, arrays[k], sa->valuedouble, pairs ? sb->valuedouble : -1);
            if (pairs)
                snprintf(what, sizeof what, "pair %.0f/%.0f", sa->valuedouble, sb->valuedouble);
            else
                snprintf(what, sizeof what, "%s %.0f", k == 0 ? "seed" : "seed mean of", sa->valuedouble);
            if (!r) {
                if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, k == 0 ? "cell" : "metric", subject,
                                           "%s: replayed, but not recorded", what)) < 0)
                    return err;
                continue;
            }
            if (k == 0) {
                const char *st = lg_json_str(e, "status"), *rst = lg_json_str(r, "status");
                if ((!st) != (!rst) || (st && strcmp(st, rst) != 0))
                    if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "cell", subject, "%s: status recorded %s, replayed %s",
                                               what, rst ? rst : "absent", st ? st : "absent")) < 0)
                        return err;
            }
            if ((err = lg_replay_compare_metrics(cJSON_GetObjectItemCaseSensitive(r, "metrics"),
                                                 cJSON_GetObjectItemCaseSensitive(e, "metrics"), what, "replayed", NULL,
                                                 0, "metric", subject, ps, &out->values_compared)) < 0)
                return err;
        }
        /* a full condition: the record must not hold entries the replay did not produce */
        if (full)
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rc, arrays[k])) {
                const cJSON *sa = cJSON_GetObjectItemCaseSensitive(e, pairs ? "seed_a" : "seed");
                const cJSON *sb = pairs ? cJSON_GetObjectItemCaseSensitive(e, "seed_b") : NULL;
                if (!cJSON_IsNumber(sa) || (pairs && !cJSON_IsNumber(sb)) ||
                    !lg_results_find_seeded(cj, arrays[k], sa->valuedouble, pairs ? sb->valuedouble : -1)) {
                    if (pairs && cJSON_IsNumber(sa) && cJSON_IsNumber(sb))
                        snprintf(what, sizeof what, "pair %.0f/%.0f", sa->valuedouble, sb->valuedouble);
                    else if (cJSON_IsNumber(sa))
                        snprintf(what, sizeof what, "%s %.0f", k == 0 ? "seed" : "seed mean of", sa->valuedouble);
                    else
                        snprintf(what, sizeof what, "a %s entry without seeds", arrays[k]);
                    if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, k == 0 ? "cell" : "metric", subject,
                                               "%s: recorded, but the replay does not produce it", what)) < 0)
                        return err;
                }
            }
    }
    return 0;
}

/* ---- the replay ------------------------------------------------------------------ */

int lg_replay_run(lg_ledger *lg, const char *ref, const lg_replay_opts *o, lg_replay_result *out, lg_problems *ps)
{
    cJSON *m = NULL;
    lg_run_info info;
    lg_study *s = NULL;
    const lg_backend *be = NULL;
    unsigned char *mask = NULL;
    lg_run_result res;
    lg_buf staging = LG_BUF_INIT;
    const char *kind, *status, *rec_backend, *rec_data;
    const cJSON *rec_results, *cj;
    char label[64];
    size_t i;
    int c, j, err, full_run;

    memset(out, 0, sizeof(*out));
    memset(&res, 0, sizeof res);
    if ((err = lg_ledger_load_manifest(lg, ref, &m, &info, NULL)) < 0)
        goto out;
    memcpy(out->run_id, info.run_id, sizeof out->run_id);
    snprintf(label, sizeof label, "run %.12s", info.run_id);
    kind = lg_json_str(m, "kind");
    status = lg_json_str(m, "status");
    rec_backend = lg_json_str(m, "backend");
    rec_data = lg_json_str(m, "data_digest");
    rec_results = cJSON_GetObjectItemCaseSensitive(m, "results");
    if (!kind || strcmp(kind, "run") != 0) {
        err = lg_error_set(LG_EINPUT, "%s: kind \"%s\": only runs made by 'ledger run' (kind \"run\") can be replayed",
                           label, kind ? kind : "?");
        goto out;
    }
    if (!status || strcmp(status, "ok") != 0) {
        err = lg_error_set(LG_EINPUT, "%s: status \"%s\": a failed run is not evidence and is not replayed", label,
                           status ? status : "?");
        goto out;
    }
    if (!rec_backend) {
        /* 'ledger run' always records its backend: a "run" without one was made some other way
         * (ledger record --kind run); replay it on the CPU and say so */
        if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "run", label,
                                   "no backend recorded: not a manifest written by 'ledger run'")) < 0)
            goto out;
        rec_backend = o->backend ? o->backend : "cpu";
    }
    if (strcmp(rec_backend, "cpu") != 0 && strcmp(rec_backend, "cuda") != 0) {
        err = lg_error_set(LG_EINPUT, "%s: recorded backend \"%s\" is not cpu or cuda", label, rec_backend);
        goto out;
    }
    snprintf(out->recorded_backend, sizeof out->recorded_backend, "%s", rec_backend);
    if (o->backend && strcmp(o->backend, rec_backend) != 0 && !o->force_backend) {
        err = lg_error_set(LG_EINPUT,
                           "%s was recorded on the %s backend; digests are only comparable on the same backend "
                           "(--force-backend replays on %s anyway)",
                           label, rec_backend, o->backend);
        goto out;
    }
    if ((err = lg_backend_get(o->backend ? o->backend : rec_backend, &be)) < 0)
        goto out;
    snprintf(out->backend, sizeof out->backend, "%s", be->name);
    if ((err = lg_replay_load_study(lg, m, label, &s)) < 0)
        goto out;
    if ((err = lg_replay_check_spec(lg, m, "spec", label, ps)) < 0)
        goto out;
    if ((err = lg_replay_check_data(s, rec_data)) < 0)
        goto out;
    out->cells_total = lg_study_n_cells(s);
    if (!(mask = lg_malloc((size_t)out->cells_total)) || !(out->cells = cJSON_CreateArray())) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    if ((err = lg_replay_select(s, info.run_id, o->sample_seed, o->n_cells, mask)) < 0)
        goto out;
    if (strcmp(be->name, "cpu") != 0) {
        /* only the CPU backend is known to train a seed alone bit-identically to the
         * seed-batched run; elsewhere a sampled cell brings every seed of its condition */
        for (c = 0; c < s->n_conds; c++) {
            int any = 0;
            for (j = 0; j < s->n_seeds; j++)
                any |= mask[c * s->n_seeds + j];
            memset(mask + c * s->n_seeds, any, (size_t)s->n_seeds);
        }
    }
    for (c = 0; c < s->n_conds; c++) {
        /* train.consistency couples the seeds of a condition (engine/consistency_obj.h):
         * a sampled cell brings every seed, and the weight-0 twin its held-out metrics
         * are computed against */
        int any = 0, b;
        if (!(s->conds[c].p.consistency.weight > 0) || s->conds[c].control_random)
            continue;
        for (j = 0; j < s->n_seeds; j++)
            any |= mask[c * s->n_seeds + j];
        if (!any)
            continue;
        memset(mask + c * s->n_seeds, 1, (size_t)s->n_seeds);
        if ((b = lg_cobj_heldout_twin(s, c)) >= 0)
            memset(mask + b * s->n_seeds, 1, (size_t)s->n_seeds);
    }
    for (c = 0; c < s->n_conds; c++) {
        int all = 1;
        for (j = 0; j < s->n_seeds; j++) {
            cJSON *cell;
            if (!mask[c * s->n_seeds + j]) {
                all = 0;
                continue;
            }
            out->cells_replayed++;
            if (!(cell = cJSON_CreateObject()) || !cJSON_AddItemToArray(out->cells, cell) ||
                !cJSON_AddStringToObject(cell, "condition", s->conds[c].id) ||
                !cJSON_AddNumberToObject(cell, "seed", (double)s->seeds[j])) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
        }
        out->conditions_full += all;
    }
    full_run = out->cells_replayed == out->cells_total;

    /* staging folder: "<name>-<pid>-" so that gc removes what a killed replay leaves */
    if ((err = lg_buf_printf(&staging, "%s/tmp", lg_ledger_dir(lg))) < 0 || (err = lg_mkdir_p(staging.ptr, 0755)) < 0 ||
        (err = lg_buf_printf(&staging, "/replay-%ld-XXXXXX", (long)getpid())) < 0)
        goto out;
    if (!mkdtemp(staging.ptr)) {
        err = lg_error_set(LG_EIO, "%s: cannot create a staging folder", staging.ptr);
        lg_buf_clear(&staging);
        goto out;
    }
    {
        lg_run_options ro;
        memset(&ro, 0, sizeof ro);
        ro.be = be;
        ro.outdir = staging.ptr;
        ro.progress = o->progress;
        ro.progress_ctx = o->progress_ctx;
        ro.cells = mask;
        err = lg_study_execute(s, &ro, &res);
    }
    if (err == LG_EDIVERGED) {
        if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "run", label, "replay diverged (recorded as ok): %s",
                                   res.failure)) < 0)
            goto out;
    } else if (err < 0)
        goto out;

    /* data digest */
    if (res.data_digest[0] && (!rec_data || strcmp(rec_data, res.data_digest) != 0) &&
        (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "data", label, "data digest: recorded %s, replayed %s",
                               rec_data ? rec_data : "none", res.data_digest)) < 0)
        goto out;
    /* artifacts */
    for (i = 0; i < res.nfiles; i++) {
        const char *name = res.files[i].name, *rec;
        char got[65];
        if (!full_run && strcmp(name, "results.json") == 0) /* a partial replay's results differ by design */
            continue;
        out->artifacts_compared++;
        if ((err = lg_sha256_file(res.files[i].path, got, NULL)) < 0)
            goto out;
        rec = lg_manifest_find_output(m, name);
        if (!rec)
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "artifact", name, "produced by the replay, not recorded");
        else if (strcmp(rec, got) != 0)
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "artifact", name, "recorded %s, replayed %s", rec, got);
        if (err < 0)
            goto out;
    }
    if (full_run) {
        const cJSON *oj;
        cJSON_ArrayForEach(oj, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
            const char *name = lg_json_str(oj, "name");
            for (i = 0; name && i < res.nfiles && strcmp(res.files[i].name, name) != 0; i++)
                ;
            if (name && i == res.nfiles &&
                (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "artifact", name, "recorded, but the replay does not produce it")) < 0)
                goto out;
        }
        cJSON_ArrayForEach(cj, cJSON_GetObjectItemCaseSensitive(rec_results, "conditions")) {
            const char *id = lg_json_str(cj, "id");
            if (!id || !lg_results_find_cond(res.results, id))
                if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "cell", id ? id : "(no id)",
                                           "recorded condition that the spec does not produce")) < 0)
                    goto out;
        }
    }
    /* metrics */
    cJSON_ArrayForEach(cj, cJSON_GetObjectItemCaseSensitive(res.results, "conditions")) {
        const char *id = lg_json_str(cj, "id");
        int full = 0;
        for (c = 0; c < s->n_conds; c++)
            if (strcmp(s->conds[c].id, id) == 0) {
                for (full = 1, j = 0; j < s->n_seeds; j++)
                    full &= mask[c * s->n_seeds + j];
                break;
            }
        if ((err = compare_condition(rec_results, cj, full, out, ps)) < 0)
            goto out;
    }
    err = 0;
out:
    if (staging.len && lg_is_dir(staging.ptr))
        lg_path_remove_tree(staging.ptr);
    lg_run_result_release(&res);
    lg_buf_release(&staging);
    lg_free(mask);
    lg_study_free(s);
    cJSON_Delete(m);
    return err;
}

void lg_replay_result_release(lg_replay_result *r)
{
    if (!r)
        return;
    cJSON_Delete(r->cells);
    r->cells = NULL;
}
