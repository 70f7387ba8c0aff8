/*
 * cmd_import.c - 'ledger import DIR... --study NAME': SAELens-format SAEs
 * trained elsewhere (cfg.json + sae_weights.safetensors per folder) become a
 * run of kind "import", so that claims can use the consistency of any SAEs,
 * e.g. two public SAEs that differ only in their seed.
 *
 * Every folder is loaded and validated (ledger/saelens.h: shapes against
 * cfg.json, finite values, size limits) before the ledger is even opened, so
 * bad input exits 2 and leaves the ledger unchanged.
 *
 * Evidence, in the results format of engine/run.h: one condition ("imported"
 * or --condition) with a cell per SAE and a pair per two SAEs of the same
 * shape, with the metrics `ledger run` records for its own seed pairs and
 * computed the same way (engine/run.c): MMCS with the ABSOLUTE cosine
 * (HUSAI's PWMCC), its signed variant as mmcs_signed, and the Hungarian-matched
 * MCC and shared fraction when d_sae <= --hungarian-max. A cell's "seed" is the
 * SAE's cfg.metadata.seed when every SAE has a distinct one (an export of
 * ours has), else its position on the command line (0, 1, ...). The imported
 * files themselves are stored as outputs saes/seed-<s>/{cfg.json,
 * sae_weights.safetensors}.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "engine/consistency.h"
#include "engine/study.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/saelens.h"

#define IMPORT_MAX_SAES 64

static int num(cJSON *obj, const char *key, double v)
{
    /* NaN would be written as null by cJSON; callers only pass computed values */
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : lg_error_set(LG_ENOMEM, "out of memory");
}

static int same_shape(const lg_saelens_sae *a, const lg_saelens_sae *b)
{
    return a->cfg.d_in == b->cfg.d_in && a->cfg.d_sae == b->cfg.d_sae;
}

/* Refuses two arguments that are the same SAE: the same folder (after
 * resolving links and relative paths), byte-identical weight files, or
 * identical decoders (e.g. one SAE saved twice in different dtypes). */
static int check_duplicates(char **dirs, const lg_saelens_sae *saes, int n)
{
    char (*dig)[65] = NULL;
    char **real = NULL;
    lg_buf p = LG_BUF_INIT;
    int i, j, err = 0;
    if (n < 2)
        return 0;
    if (!(dig = lg_calloc((size_t)n, sizeof(*dig))) || !(real = lg_calloc((size_t)n, sizeof(*real)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        real[i] = realpath(dirs[i], NULL);
        if ((err = lg_path_join(&p, dirs[i], LG_SAELENS_WEIGHTS)) < 0 || (err = lg_sha256_file(p.ptr, dig[i], NULL)) < 0)
            goto out;
    }
    for (i = 0; i < n; i++)
        for (j = 0; j < i; j++) {
            const char *why = NULL;
            if (real[i] && real[j] && strcmp(real[i], real[j]) == 0)
                why = "the same folder";
            else if (strcmp(dig[i], dig[j]) == 0)
                why = "byte-identical " LG_SAELENS_WEIGHTS;
            else if (same_shape(&saes[i], &saes[j]) &&
                     memcmp(saes[i].W_dec, saes[j].W_dec,
                            (size_t)saes[i].cfg.d_sae * (size_t)saes[i].cfg.d_in * sizeof(float)) == 0)
                why = "identical decoders";
            if (why) {
                err = lg_error_set(LG_EINPUT,
                                   "%s and %s are the same SAE (%s): their pair would record mmcs = 1 as evidence",
                                   dirs[j], dirs[i], why);
                goto out;
            }
        }
out:
    for (i = 0; real && i < n; i++)
        free(real[i]);
    lg_free(real);
    lg_free(dig);
    lg_buf_release(&p);
    return err;
}

int cmd_import(lg_cli *cli, int argc, char **argv)
{
    const char *study = NULL, *condition = "imported";
    double threshold = 0.7, max_elements = (double)((uint64_t)1 << 26);
    int json = 0, hungarian_max = 4096;
    const lg_opt opts[] = {
        {"study", 's', LG_OPT_STRING, &study, "NAME", "study name of the import run (required)"},
        {"condition", 0, LG_OPT_STRING, &condition, "ID", "condition id of the imported SAEs (default imported)"},
        {"shared-threshold", 0, LG_OPT_DOUBLE, &threshold, "X", "shared fraction counts matches above X (default 0.7)"},
        {"hungarian-max", 0, LG_OPT_INT, &hungarian_max, "N", "matched MCC only when d_sae <= N (default 4096)"},
        {"max-elements", 0, LG_OPT_DOUBLE, &max_elements, "N", "largest d_in x d_sae accepted per SAE (default 2^26)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the run id, seeds and pairs as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "import", "ledger import --study NAME [options] DIR...",
        "Imports SAELens-format SAEs (each DIR holds cfg.json and sae_weights.safetensors), validates\n"
        "them, computes the cross-seed consistency (MMCS with |cos|, matched MCC, shared fraction) of\n"
        "every pair of the same shape and records it all as a run of kind \"import\".",
        opts, 1, -1, 0};
    lg_saelens_limits lim;
    lg_saelens_sae *saes = NULL;
    long long *seeds = NULL;
    double *pm = NULL, *pc = NULL;
    int nargs, rc, err = 0, n = 0, i, j, by_meta = 1, npairs = 0;
    char **args;
    cJSON *results = NULL, *extra = NULL, *cond, *cells, *pairs, *sarr, *params, *imp;
    lg_run_file *files = NULL;
    char **names = NULL;
    lg_ledger *lg = NULL;
    char run_id[65] = "";
    lg_buf tmp = LG_BUF_INIT;
    uint64_t total = 0;
    const char *c;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (!study || !*study) {
        fprintf(stderr, "ledger import: --study NAME is required\n");
        return 2;
    }
    if (!lg_study_name_valid(study)) { /* as a spec's "name" (ledger run) */
        fprintf(stderr, "ledger import: --study: '%.100s': use 1-100 characters of [A-Za-z0-9._-]\n", study);
        return 2;
    }
    for (c = condition; *c; c++)
        if ((unsigned char)*c < 0x20)
            break;
    if (!*condition || *c || strlen(condition) >= 128) {
        fprintf(stderr, "ledger import: --condition: must be 1 to 127 printable characters\n");
        return 2;
    }
    /* max_elements <= 2^40 (= the largest d_in x d_sae anyway): the cast below and 4 x it stay in range */
    if (!(threshold > 0 && threshold < 1) || hungarian_max < 0 || !(max_elements >= 1 && max_elements <= 1099511627776.0)) {
        fprintf(stderr, "ledger import: --shared-threshold must be in (0, 1), --hungarian-max >= 0, --max-elements in [1, 2^40]\n");
        return 2;
    }
    if (nargs > IMPORT_MAX_SAES) {
        fprintf(stderr, "ledger import: %d folders given; at most %d SAEs per import\n", nargs, IMPORT_MAX_SAES);
        return 2;
    }
    lg_saelens_limits_init(&lim);
    lim.max_elements = (uint64_t)max_elements;
    if (!(saes = lg_calloc((size_t)nargs, sizeof(*saes))) || !(seeds = lg_calloc((size_t)nargs, sizeof(*seeds))) ||
        !(pm = lg_calloc((size_t)nargs * nargs, sizeof(double))) ||
        !(pc = lg_calloc((size_t)nargs * nargs, sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }

    /* load and validate everything first: bad input never reaches the ledger */
    for (n = 0; n < nargs; n++) {
        if ((err = lg_saelens_load(args[n], &lim, &saes[n])) < 0) {
            if (err == LG_ENOTFOUND)
                err = LG_EINPUT;
            goto out;
        }
        total += (uint64_t)saes[n].cfg.d_in * (uint64_t)saes[n].cfg.d_sae;
        if (total > 4 * lim.max_elements) {
            err = lg_error_set(LG_EINPUT, "%s: the SAEs together exceed %llu decoder elements", args[n],
                               (unsigned long long)(4 * lim.max_elements));
            n++;
            goto out;
        }
        if (saes[n].meta_seed < 0)
            by_meta = 0;
    }
    /* the same SAE twice would make a pair with mmcs = 1: never evidence */
    if ((err = check_duplicates(args, saes, n)) < 0)
        goto out;
    for (i = 0; i < n && by_meta; i++)
        for (j = 0; j < i; j++)
            if (saes[i].meta_seed == saes[j].meta_seed)
                by_meta = 0;
    for (i = 0; i < n; i++)
        seeds[i] = by_meta ? saes[i].meta_seed : i;

    /* results: one condition, a cell per SAE, a pair per same-shape pair */
    if (!(results = cJSON_CreateObject()) || !cJSON_AddNumberToObject(results, "format", 1) ||
        !cJSON_AddStringToObject(results, "study", study) || !(params = cJSON_CreateObject()) ||
        !cJSON_AddItemToObject(cJSON_AddObjectToObject(results, "data"), "source", cJSON_CreateString("saelens-import")) ||
        !(cond = cJSON_CreateObject()) || !cJSON_AddItemToArray(cJSON_AddArrayToObject(results, "conditions"), cond) ||
        !cJSON_AddStringToObject(cond, "id", condition) || !cJSON_AddItemToObject(cond, "params", params) ||
        !cJSON_AddStringToObject(params, "source", "saelens") || !(cells = cJSON_AddArrayToObject(cond, "cells")) ||
        !(pairs = cJSON_AddArrayToObject(cond, "pairs")) || !(sarr = cJSON_AddArrayToObject(cond, "seeds"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 1; i < n && strcmp(saes[i].architecture, saes[0].architecture) == 0; i++)
        ;
    if (n > 0 && i == n && !cJSON_AddStringToObject(params, "architecture", saes[0].architecture)) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 1; i < n && same_shape(&saes[i], &saes[0]); i++)
        ;
    if (n > 0 && i == n &&
        (num(params, "d_in", saes[0].cfg.d_in) < 0 || num(params, "d_sae", saes[0].cfg.d_sae) < 0)) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        cJSON *cell = cJSON_CreateObject(), *m;
        if (!cell || !cJSON_AddItemToArray(cells, cell) || !cJSON_AddNumberToObject(cell, "seed", (double)seeds[i]) ||
            !cJSON_AddStringToObject(cell, "status", "ok") || !(m = cJSON_AddObjectToObject(cell, "metrics")) ||
            num(m, "d_in", saes[i].cfg.d_in) < 0 || num(m, "d_sae", saes[i].cfg.d_sae) < 0) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++) {
            cJSON *pair, *m;
            if (!same_shape(&saes[i], &saes[j]))
                continue;
            if (!(pair = cJSON_CreateObject()) || !cJSON_AddItemToArray(pairs, pair) ||
                !cJSON_AddNumberToObject(pair, "seed_a", (double)seeds[i]) ||
                !cJSON_AddNumberToObject(pair, "seed_b", (double)seeds[j]) ||
                !(m = cJSON_AddObjectToObject(pair, "metrics"))) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            if ((err = lg_saelens_pair_metrics(saes[i].W_dec, saes[j].W_dec, saes[i].cfg.d_sae, saes[i].cfg.d_in,
                                               threshold, hungarian_max, m, &pm[i * n + j], &pc[i * n + j])) < 0) {
                lg_error_wrap("%s vs %s", args[i], args[j]);
                goto out;
            }
            pm[j * n + i] = pm[i * n + j];
            pc[j * n + i] = pc[i * n + j];
            npairs++;
        }
    /* per-seed means over the pairs the seed is part of (engine/run.c's "seeds") */
    for (i = 0; i < n; i++) {
        double sm = 0, sc = 0;
        int cnt = 0;
        cJSON *s, *m;
        for (j = 0; j < n; j++)
            if (j != i && same_shape(&saes[i], &saes[j])) {
                sm += pm[i * n + j];
                sc += pc[i * n + j];
                cnt++;
            }
        if (!cnt)
            continue;
        if (!(s = cJSON_CreateObject()) || !cJSON_AddItemToArray(sarr, s) ||
            !cJSON_AddNumberToObject(s, "seed", (double)seeds[i]) || !(m = cJSON_AddObjectToObject(s, "metrics")) ||
            num(m, "mmcs_mean", sm / cnt) < 0 || (isfinite(sc) && num(m, "mcc_mean", sc / cnt) < 0)) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }

    /* outputs: the imported files themselves; extra: where they came from */
    if (!(files = lg_calloc(2 * (size_t)n + 1, sizeof(*files))) || !(names = lg_calloc(2 * (size_t)n + 1, sizeof(char *))) ||
        !(extra = cJSON_CreateObject()) || !(imp = cJSON_AddObjectToObject(extra, "import")) ||
        !cJSON_AddStringToObject(imp, "format", "saelens") || !cJSON_AddStringToObject(imp, "seeds_from", by_meta ? "metadata" : "order") ||
        /* the matching options, so that verify --recompute derives the same pairs */
        !cJSON_AddNumberToObject(imp, "shared_threshold", threshold) || !cJSON_AddNumberToObject(imp, "hungarian_max", hungarian_max) ||
        !(sarr = cJSON_AddArrayToObject(imp, "saes"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        int f;
        if (!s || !cJSON_AddItemToArray(sarr, s) || !cJSON_AddNumberToObject(s, "seed", (double)seeds[i]) ||
            !cJSON_AddStringToObject(s, "dir", args[i]) || !cJSON_AddStringToObject(s, "architecture", saes[i].architecture) ||
            num(s, "d_in", saes[i].cfg.d_in) < 0 || num(s, "d_sae", saes[i].cfg.d_sae) < 0) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        for (f = 0; f < 2; f++) {
            const char *fn = f ? LG_SAELENS_WEIGHTS : LG_SAELENS_CFG;
            size_t at = 2 * (size_t)i + f;
            lg_buf_clear(&tmp);
            if ((err = lg_buf_printf(&tmp, "saes/seed-%lld/%s", seeds[i], fn)) < 0 || !(names[at] = lg_strdup(tmp.ptr))) {
                err = err < 0 ? err : LG_ENOMEM;
                goto out;
            }
            lg_buf_clear(&tmp);
            if ((err = lg_path_join(&tmp, args[i], fn)) < 0 || !(files[at].path = lg_strdup(tmp.ptr))) {
                err = err < 0 ? err : LG_ENOMEM;
                goto out;
            }
            files[at].name = names[at];
            files[at].media_type = f ? "application/vnd.safetensors" : "application/json";
        }
    }

    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    {
        lg_run_input in;
        memset(&in, 0, sizeof in);
        in.kind = "import";
        in.study = study;
        in.results = results;
        in.extra = extra;
        in.files = files;
        in.nfiles = 2 * (size_t)n;
        in.status = "ok";
        if ((err = lg_ledger_record(lg, &in, run_id)) < 0)
            goto out;
    }
    if (json) {
        cJSON *r = cJSON_CreateObject();
        err = cli_print_json(r, r && cJSON_AddStringToObject(r, "run_id", run_id) &&
                                    cJSON_AddStringToObject(r, "kind", "import") &&
                                    cJSON_AddStringToObject(r, "condition", condition) &&
                                    cJSON_AddNumberToObject(r, "saes", n) &&
                                    cJSON_AddItemToObject(r, "pairs", cJSON_Duplicate(pairs, 1)));
    } else {
        printf("import %.12s recorded: study %s, condition %s, %d SAE%s, %d pair%s (seeds from %s)\n", run_id, study,
               condition, n, n == 1 ? "" : "s", npairs, npairs == 1 ? "" : "s", by_meta ? "cfg metadata" : "argument order");
        for (i = 0; i < n; i++)
            for (j = i + 1; j < n; j++)
                if (same_shape(&saes[i], &saes[j]))
                    printf("  seeds %lld/%lld: mmcs %.6f  mcc %s%.6f\n", seeds[i], seeds[j], pm[i * n + j],
                           isfinite(pc[i * n + j]) ? "" : "(not computed) ", isfinite(pc[i * n + j]) ? pc[i * n + j] : 0.0);
    }
out:
    for (i = 0; i < n && saes; i++)
        lg_saelens_sae_release(&saes[i]);
    for (i = 0; i < 2 * n; i++) { /* files and names are allocated separately: either may be NULL */
        if (files)
            lg_free((char *)files[i].path);
        if (names)
            lg_free(names[i]);
    }
    lg_free(files);
    lg_free(names);
    lg_free(saes);
    lg_free(seeds);
    lg_free(pm);
    lg_free(pc);
    lg_buf_release(&tmp);
    cJSON_Delete(results);
    cJSON_Delete(extra);
    return err < 0 ? cli_fail("import", err) : 0;
}
