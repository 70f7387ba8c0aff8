/*
 * cmd_run.c - 'ledger run STUDY.json': execute a study with the embedded
 * engine and commit it as one run.
 *
 * Outputs are written to a staging folder under .ledger/tmp/ and recorded
 * from there (lg_ledger_record hashes each into the store and commits the
 * manifest); the staging folder is removed afterwards whatever happened, so
 * a killed run leaves at most a stale staging folder, which `ledger gc`
 * removes. A diverged run is recorded with status "failed" (kept for the
 * record, never evidence) and exits 1.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/run.h"
#include "engine/study.h"
#include "kernels/cuda.h"
#include "ledger/cli.h"
#include "ledger/evidence.h"
#include "ledger/ledger.h"
#include "ledger/sign.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Remove a folder tree (staging folders only). */
static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

typedef struct {
    int tty;
    int quiet;
    double last;
} progress_state;

static void show_progress(void *ctx, const lg_run_progress *p)
{
    progress_state *ps = ctx;
    double now = p->elapsed, frac, eta;
    if (ps->quiet || !ps->tty)
        return;
    if (now - ps->last < 0.2 && p->step != p->steps)
        return;
    ps->last = now;
    frac = p->work_total > 0 ? p->work_done / p->work_total : (double)p->cells_done / p->cells_total;
    if (frac > 1)
        frac = 1;
    eta = frac > 0.001 ? now * (1 - frac) / frac : 0;
    if (isnan(p->loss))
        fprintf(stderr, "\r\033[K[%d/%d cells] %s seed %llu done  %.0fs elapsed, ETA %.0fs", p->cells_done,
                p->cells_total, p->condition, (unsigned long long)p->seed, now, eta);
    else
        fprintf(stderr, "\r\033[K[%d/%d cells] %s seed %llu step %ld/%ld loss %.4g fvu %.3f  ETA %.0fs", p->cells_done,
                p->cells_total, p->condition, (unsigned long long)p->seed, p->step, p->steps, p->loss, p->fvu, eta);
}

static void lock_notify(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "ledger run: %s\n", msg);
}

int cmd_run(int argc, char **argv)
{
    const char *backend_name = "auto", *sign = getenv("LEDGER_SIGN_KEY");
    int dry_run = 0, json = 0, quiet = 0, lock_timeout = 30;
    const lg_opt opts[] = {
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "cpu, cuda or auto (default: cuda when a GPU is usable)"},
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "print the plan (conditions x seeds) and exit"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the result (or the plan) as JSON"},
        {"quiet", 'q', LG_OPT_FLAG, &quiet, NULL, "no progress on stderr"},
        {"lock-timeout", 0, LG_OPT_INT, &lock_timeout, "SECONDS", "wait this long for another writer (default 30)"},
        {"sign", 0, LG_OPT_STRING, &sign, "KEY",
         "sign the run with this key (a name from 'ledger key list' or a PEM path; default $LEDGER_SIGN_KEY)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"run", "ledger run [options] STUDY.json",
                              "Executes every cell (condition x seed) of a study with the embedded engine, stores\n"
                              "every output in the artifact store and commits one run to the ledger. Progress\n"
                              "(cells, loss, ETA) is shown on stderr when it is a terminal. A study whose training\n"
                              "diverges is recorded as failed (never evidence) and exits 1.",
                              opts, 1, 1};
    int nargs, rc, err = 0;
    char **args;
    lg_study *study = NULL;
    lg_ledger *lg = NULL;
    const lg_backend *be = NULL;
    lg_run_result res;
    lg_run_file *files = NULL;
    lg_buf staging = LG_BUF_INIT, key_path = LG_BUF_INIT;
    char run_id[65] = "", relbuf[PATH_MAX];
    progress_state ps = {cli_progress_enabled(), 0, -1};
    size_t i;

    memset(&res, 0, sizeof res);
    if ((rc = lg_opts_parse(&spec, argc, argv, &nargs, &args)) != 0)
        return rc == 1 ? 0 : 2;
    ps.quiet = quiet;
    if ((err = lg_study_load(args[0], &study)) < 0)
        return cli_fail("run", err);
    if (dry_run) {
        if (json) {
            cJSON *plan = lg_study_plan_json(study);
            char *text = plan ? cJSON_Print(plan) : NULL;
            if (text)
                printf("%s\n", text);
            free(text);
            cJSON_Delete(plan);
            rc = text ? 0 : cli_fail("run", lg_error_set(LG_ENOMEM, "out of memory"));
        } else {
            lg_buf plan = LG_BUF_INIT;
            if ((err = lg_study_plan_text(study, &plan)) < 0)
                rc = cli_fail("run", err);
            else
                fputs(plan.ptr, stdout);
            lg_buf_release(&plan);
        }
        lg_study_free(study);
        return rc;
    }
    if (sign && *sign && (err = lg_key_resolve(sign, &key_path)) < 0) /* before hours of training */
        goto out;
    if ((err = lg_backend_get(backend_name, &be)) < 0)
        goto out;
#ifdef LEDGER_HAVE_CUDA
    if (!quiet && strcmp(backend_name, "auto") == 0 && be == lg_backend_cpu())
        fprintf(stderr, "ledger run: note: backend auto: using the CPU (%s)\n",
                lg_cuda_unavailable_reason());
#endif
    if ((err = lg_ledger_open(".", &lg)) < 0)
        goto out;
    lg_ledger_set_lock_wait(lg, lock_timeout, lock_notify, NULL);
    if ((err = lg_buf_printf(&staging, "%s/tmp", lg_ledger_dir(lg))) < 0 || (err = lg_mkdir_p(staging.ptr, 0755)) < 0 ||
        (err = lg_buf_printf(&staging, "/run-%ld-XXXXXX", (long)getpid())) < 0)
        goto out;
    if (!mkdtemp(staging.ptr)) {
        err = lg_error_set(LG_EIO, "%s: cannot create a staging folder", staging.ptr);
        goto out;
    }
    if (!quiet)
        fprintf(stderr, "ledger run: %s: %d cells on %s (%s)\n", study->name, lg_study_n_cells(study), be->name,
                be->device);
    {
        lg_run_options ro = {be, staging.ptr, show_progress, &ps, 0, NULL};
        err = lg_study_execute(study, &ro, &res);
    }
    if (ps.tty && !quiet)
        fprintf(stderr, "\r\033[K");
    if (err < 0 && !res.diverged)
        goto out;
    if (!(files = lg_calloc(res.nfiles ? res.nfiles : 1, sizeof(*files)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < res.nfiles; i++) {
        files[i].name = res.files[i].name;
        files[i].path = res.files[i].path;
        files[i].media_type = res.files[i].media_type;
    }
    {
        lg_run_input in;
        cJSON *extra = cJSON_CreateObject();
        char meaning[65];
        int rerr;
        /* the spec's meaning (canonical JSON without "description"), which staleness compares (evidence.h) */
        if (!extra || lg_spec_canonical_digest(study->json, meaning) < 0 ||
            !cJSON_AddStringToObject(extra, "spec_canonical_sha256", meaning)) {
            cJSON_Delete(extra);
            err = lg_error_code() ? lg_error_code() : LG_ENOMEM;
            goto out;
        }
        memset(&in, 0, sizeof in);
        in.kind = "run";
        in.study = study->name;
        in.study_path = cli_repo_relative(lg_ledger_root(lg), study->path, relbuf, sizeof relbuf);
        in.spec_digest = study->spec_digest;
        in.data_digest = res.data_digest;
        in.backend = be->name;
        in.device = be->device;
        in.spec = study->json;
        in.results = res.results;
        in.files = files;
        in.nfiles = res.nfiles;
        in.status = res.diverged ? "failed" : "ok";
        in.sign_key_path = key_path.len ? key_path.ptr : NULL;
        in.extra = extra;
        rerr = lg_ledger_record(lg, &in, run_id);
        cJSON_Delete(extra);
        if (rerr < 0) {
            err = rerr;
            goto out;
        }
    }
    if (res.diverged) {
        fprintf(stderr, "ledger run: %s: training diverged: %s (recorded as failed run %.12s; not evidence)\n",
                study->name, res.failure, run_id);
        err = LG_EDIVERGED;
        goto out;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *text;
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "study", study->name);
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddStringToObject(o, "backend", be->name);
        cJSON_AddNumberToObject(o, "cells", lg_study_n_cells(study));
        cJSON_AddNumberToObject(o, "outputs", (double)res.nfiles);
        text = cJSON_Print(o);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else
        printf("run %.12s recorded: study %s, %d cells, %zu outputs, backend %s\n", run_id, study->name,
               lg_study_n_cells(study), res.nfiles, be->name);
out:
    if (staging.ptr && staging.len && lg_is_dir(staging.ptr))
        rm_tree(staging.ptr);
    rc = err < 0 ? (err == LG_EDIVERGED ? 1 : cli_fail("run", err)) : 0;
    lg_free(files);
    lg_run_result_release(&res);
    lg_buf_release(&staging);
    lg_buf_release(&key_path);
    lg_ledger_free(lg);
    lg_study_free(study);
    return rc;
}
