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
 *
 * Stop and resume: the first SIGINT or SIGTERM sets a flag that the engine
 * reads at every training step; the seed group in training is abandoned,
 * every finished group stays in the staging folder (weights plus a marker,
 * run.h), and the folder is kept as .ledger/resume/<spec sha256>/ with a
 * state.json (study, backend). The process exits 130 (SIGINT) or 143
 * (SIGTERM). A second signal kills at once. 'ledger run --resume' takes that
 * folder back as its staging folder and trains only the groups without a
 * marker; the results and artifact digests equal an uninterrupted run's.
 * A run that fails after finishing seed groups (an I/O error, a lock timeout
 * at record time) keeps them the same way. Nothing else removes a kept
 * folder but a completed run of the same spec (or rm -r).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
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
#include "ledger/manifest.h"
#include "ledger/shard.h"
#include "ledger/sign.h"

/* Remove a folder tree (staging folders only). */
typedef struct {
    int tty;
    int quiet;
    double last;
} progress_state;

/* When stderr is not a terminal (a batch job's log): one line per finished
 * cell, at most one every PLAIN_PROGRESS_EVERY seconds (the last cell's
 * always); while a seed group trains for longer than PLAIN_HEARTBEAT seconds
 * without a line, one step line (step, loss) that often, so a long cell
 * still shows where it is. */
#define PLAIN_PROGRESS_EVERY 5.0
#define PLAIN_HEARTBEAT 60.0

/* "seed 3", "seeds 1-5" (consecutive), "seeds 1,4,9" or "seeds 1..40 (12 seeds)" */
static void seeds_label(const lg_run_progress *p, char *buf, size_t n)
{
    int i, consecutive = 1;
    if (p->nseeds <= 1 || !p->seeds) {
        snprintf(buf, n, "seed %llu", (unsigned long long)p->seed);
        return;
    }
    for (i = 1; i < p->nseeds; i++)
        consecutive &= p->seeds[i] == p->seeds[i - 1] + 1;
    if (consecutive)
        snprintf(buf, n, "seeds %llu-%llu", (unsigned long long)p->seeds[0],
                 (unsigned long long)p->seeds[p->nseeds - 1]);
    else if (p->nseeds <= 4) {
        size_t len = (size_t)snprintf(buf, n, "seeds ");
        for (i = 0; i < p->nseeds && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%llu", i ? "," : "", (unsigned long long)p->seeds[i]);
    } else
        snprintf(buf, n, "seeds %llu..%llu (%d seeds)", (unsigned long long)p->seeds[0],
                 (unsigned long long)p->seeds[p->nseeds - 1], p->nseeds);
}

static void show_progress(void *ctx, const lg_run_progress *p)
{
    progress_state *ps = ctx;
    double now = p->elapsed, frac, eta;
    char who[96];
    const char *pre = ps->tty ? "\r\033[K" : "ledger run: ";
    const char *post = ps->tty ? "" : "\n";
    if (ps->quiet)
        return;
    if (ps->tty && now - ps->last < 0.2 && p->step != p->steps)
        return;
    if (!ps->tty && p->cells_done != p->cells_total) {
        if (isnan(p->loss) ? ps->last >= 0 && now - ps->last < PLAIN_PROGRESS_EVERY /* NaN loss: a finished cell */
                           : (ps->last >= 0 ? now - ps->last : now) < PLAIN_HEARTBEAT)
            return;
    }
    ps->last = now;
    frac = p->work_total > 0 ? p->work_done / p->work_total : (double)p->cells_done / p->cells_total;
    if (frac > 1)
        frac = 1;
    eta = frac > 0.001 ? now * (1 - frac) / frac : 0;
    seeds_label(p, who, sizeof who);
    if (isnan(p->loss))
        fprintf(stderr, "%s[%d/%d cells] %s %s done  %.0fs elapsed, ETA %.0fs%s", pre, p->cells_done, p->cells_total,
                p->condition, who, now, eta, post);
    else
        fprintf(stderr, "%s[%d/%d cells] %s %s step %ld/%ld loss %.4g fvu %.3f  ETA %.0fs%s", pre, p->cells_done,
                p->cells_total, p->condition, who, p->step, p->steps, p->loss, p->fvu, eta, post);
}

/* ---- stop on SIGINT / SIGTERM ---------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal) { /* a second signal: stop now */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

static void stop_handlers(int install)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = install ? on_stop_signal : SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* <ledger dir>/resume/<spec digest> */
static int resume_dir(lg_ledger *lg, const lg_study *study, lg_buf *out)
{
    lg_buf_clear(out);
    return lg_buf_printf(out, "%s/resume/%s", lg_ledger_dir(lg), study->spec_digest);
}

/* Keeps the staging folder of a stopped run as the study's resume folder. */
static int keep_for_resume(lg_ledger *lg, const lg_study *study, const lg_backend *be, const char *staging,
                           const lg_buf *keep)
{
    lg_buf state = LG_BUF_INIT;
    char *slash;
    int err;
    if ((err = lg_buf_printf(&state, "%s/state.json", staging)) < 0)
        goto out;
    /* the study name may hold any character: write it through cJSON */
    {
        cJSON *o = cJSON_CreateObject();
        char *t;
        if (!o || !cJSON_AddNumberToObject(o, "format", 1) || !cJSON_AddStringToObject(o, "study", study->name) ||
            !cJSON_AddStringToObject(o, "spec_sha256", study->spec_digest) ||
            !cJSON_AddStringToObject(o, "backend", be->name) || !(t = cJSON_Print(o))) {
            cJSON_Delete(o);
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        err = lg_file_write_atomic(state.ptr, t, strlen(t));
        cJSON_free(t);
        cJSON_Delete(o);
        if (err < 0)
            goto out;
    }
    slash = strrchr(keep->ptr, '/');
    *slash = '\0';
    err = lg_mkdir_p(keep->ptr, 0755);
    *slash = '/';
    if (err < 0)
        goto out;
    if (lg_is_dir(keep->ptr))
        lg_path_remove_tree(keep->ptr);
    if (rename(staging, keep->ptr) < 0)
        err = lg_error_set(LG_EIO, "%s: cannot keep the stopped run as %s: %s", staging, keep->ptr, strerror(errno));
out:
    lg_buf_release(&state);
    return err;
}

/* The backend a kept folder was trained on ("" when unreadable). */
static void kept_backend(const char *dir, char *buf, size_t n)
{
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT;
    cJSON *j = NULL;
    buf[0] = '\0';
    if (lg_buf_printf(&path, "%s/state.json", dir) == 0 && lg_file_read(path.ptr, 1 << 16, &text) == 0 &&
        (j = cJSON_ParseWithLength(text.ptr, text.len)) && lg_json_str(j, "backend"))
        snprintf(buf, n, "%s", lg_json_str(j, "backend"));
    cJSON_Delete(j);
    lg_buf_release(&path);
    lg_buf_release(&text);
    lg_error_clear();
}

int cmd_run(lg_cli *cli, int argc, char **argv)
{
    const char *backend_name = "auto", *sign = getenv("LEDGER_SIGN_KEY");
    const char *shard = NULL, *stage_dir = NULL;
    int dry_run = 0, json = 0, quiet = 0, resume = 0, gather = 0, shard_i = 0, shard_n = 0;
    const lg_opt opts[] = {
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "cpu, cuda or auto (default: cuda when a GPU is usable)"},
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "print the plan (conditions x seeds) and exit"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the result (or the plan) as JSON"},
        {"quiet", 'q', LG_OPT_FLAG, &quiet, NULL, "no progress on stderr"},
        {"resume", 0, LG_OPT_FLAG, &resume, NULL,
         "continue a run of this study stopped by Ctrl-C or SIGTERM (its finished seed groups are kept)"},
        {"shard", 0, LG_OPT_STRING, &shard, "I/N",
         "train only shard I of N (seed group g goes to shard (g-1) mod N + 1) into the study's shared staging "
         "folder; records nothing ('ledger gather' does)"},
        {"gather", 0, LG_OPT_FLAG, &gather, NULL, "record the staged shards as one run (same as 'ledger gather')"},
        {"stage-dir", 0, LG_OPT_STRING, &stage_dir, "DIR",
         "staging root for --shard/--gather (default .ledger/shards; must be shared by all shards)"},
        {"sign", 0, LG_OPT_STRING, &sign, "KEY",
         "sign the run with this key (a name from 'ledger key list' or a PEM path; default $LEDGER_SIGN_KEY)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"run", "ledger run [options] STUDY.json",
                              "Executes every cell (condition x seed) of a study with the embedded engine, stores\n"
                              "every output in the artifact store and commits one run to the ledger. Progress\n"
                              "(cells, loss, ETA) is shown on stderr (a line every few seconds when it is not a\n"
                              "terminal). A study whose training diverges is recorded as failed (never evidence) and\n"
                              "exits 1. Ctrl-C (SIGINT) or SIGTERM stops the run after keeping every finished seed\n"
                              "group (exit 130 / 143); 'ledger run --resume STUDY.json' continues it and records the\n"
                              "same artifacts an uninterrupted run would.",
                              opts, 1, 1, 0};
    int nargs, rc, err = 0;
    char **args;
    lg_study *study = NULL;
    lg_ledger *lg = NULL;
    const lg_backend *be = NULL;
    lg_run_result res;
    lg_buf staging = LG_BUF_INIT, key_path = LG_BUF_INIT, keep = LG_BUF_INIT;
    int resumed_from = 0, kept = 0;
    char run_id[65] = "";
    progress_state ps = {cli_progress_enabled(), 0, -1};

    memset(&res, 0, sizeof res);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    ps.quiet = quiet;
    if (shard && (err = shard_parse(shard, &shard_i, &shard_n)) < 0)
        return cli_fail("run", err);
    if ((shard != NULL) + gather + resume + dry_run > 1)
        return cli_fail("run", lg_error_set(LG_EINPUT, "--shard, --gather, --resume and --dry-run exclude each other"));
    if (stage_dir && !shard && !gather)
        return cli_fail("run", lg_error_set(LG_EINPUT, "--stage-dir needs --shard or --gather"));
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
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if (shard) {
        shard_run_args sa;
        memset(&sa, 0, sizeof sa);
        sa.study = study;
        sa.be = be;
        sa.stage_root = stage_dir;
        sa.index = shard_i;
        sa.count = shard_n;
        sa.json = json;
        sa.quiet = quiet;
        sa.progress = show_progress;
        sa.progress_ctx = &ps;
        sa.stop = &stop_signal;
        if ((err = cli_check_study_name(lg, study->name, study->path)) < 0)
            goto out;
        stop_signal = 0;
        stop_handlers(1);
        rc = shard_cmd_run(lg, &sa);
        stop_handlers(0);
        goto done;
    }
    if (gather) {
        rc = shard_cmd_gather(lg, study, be, stage_dir, json, quiet, key_path.len ? key_path.ptr : NULL);
        goto done;
    }
    if ((err = lg_buf_printf(&staging, "%s/tmp", lg_ledger_dir(lg))) < 0 || (err = lg_mkdir_p(staging.ptr, 0755)) < 0 ||
        (err = lg_buf_printf(&staging, "/run-%ld-XXXXXX", (long)getpid())) < 0)
        goto out;
    if (!mkdtemp(staging.ptr)) {
        err = lg_error_set(LG_EIO, "%s: cannot create a staging folder", staging.ptr);
        goto out;
    }
    /* one study, one name: before hours of training */
    if ((err = cli_check_study_name(lg, study->name, study->path)) < 0)
        goto out;
    if ((err = resume_dir(lg, study, &keep)) < 0)
        goto out;
    if (lg_is_dir(keep.ptr)) {
        if (resume) {
            char kb[32];
            kept_backend(keep.ptr, kb, sizeof kb);
            if (kb[0] && strcmp(kb, be->name) != 0) {
                err = lg_error_set(LG_EINPUT, "%s: the stopped run trained on backend %s; resume it with --backend %s",
                                   keep.ptr, kb, kb);
                goto out;
            }
            /* claim the kept folder: rename replaces the empty staging folder */
            if (rename(keep.ptr, staging.ptr) < 0) {
                err = lg_error_set(LG_EIO, "%s: cannot take the stopped run back: %s", keep.ptr, strerror(errno));
                goto out;
            }
            resumed_from = 1;
        } else if (!quiet)
            fprintf(stderr,
                    "ledger run: a stopped run of this study is kept in %s; this run starts over "
                    "('ledger run --resume' would continue it)\n",
                    keep.ptr);
    } else if (resume && !quiet)
        fprintf(stderr, "ledger run: nothing to resume for %s (spec sha256 %.12s); running from the start\n",
                study->path, study->spec_digest);
    if (!quiet)
        fprintf(stderr, "ledger run: %s: %d cells on %s (%s)%s\n", study->name, lg_study_n_cells(study), be->name,
                be->device, resumed_from ? ", resuming" : "");
    {
        lg_run_options ro;
        memset(&ro, 0, sizeof ro);
        ro.be = be;
        ro.outdir = staging.ptr;
        ro.progress = show_progress;
        ro.progress_ctx = &ps;
        ro.stop = &stop_signal;
        ro.resume = resumed_from;
        stop_signal = 0;
        stop_handlers(1);
        err = lg_study_execute(study, &ro, &res);
        stop_handlers(0);
    }
    if (ps.tty && !quiet)
        fprintf(stderr, "\r\033[K");
    if (err == LG_ESTOPPED) {
        int sig = stop_signal ? (int)stop_signal : SIGINT;
        int gerr = keep_for_resume(lg, study, be, staging.ptr, &keep);
        kept = 1; /* even when it cannot be moved: the finished groups are in the staging folder */
        if (gerr < 0) {
            fprintf(stderr, "ledger run: stopped; %s; the finished groups are in %s\n", lg_error_msg(), staging.ptr);
            rc = 3;
            goto done;
        }
        fprintf(stderr,
                "ledger run: stopped by %s: %s. Kept %d finished seed group%s (%d taken from the earlier stop) in %s; "
                "continue with: ledger run --resume %s\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT", lg_error_msg(), res.groups_done + res.groups_resumed,
                res.groups_done + res.groups_resumed == 1 ? "" : "s", res.groups_resumed, keep.ptr, study->path);
        rc = 128 + sig;
        goto done;
    }
    if (err < 0 && !res.diverged)
        goto out;
    if (resumed_from && !quiet)
        fprintf(stderr, "ledger run: resumed: %d seed group%s taken from the stopped run, %d trained now\n",
                res.groups_resumed, res.groups_resumed == 1 ? "" : "s", res.groups_done);
    if ((err = cli_record_study_run(lg, study, be, &res, key_path.len ? key_path.ptr : NULL, run_id)) < 0)
        goto out;
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
        cJSON_AddBoolToObject(o, "resumed", resumed_from);
        cJSON_AddNumberToObject(o, "seed_groups_trained", res.groups_done);
        cJSON_AddNumberToObject(o, "seed_groups_resumed", res.groups_resumed);
        text = cJSON_Print(o);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else
        printf("run %.12s recorded: study %s, %d cells, %zu outputs, backend %s\n", run_id, study->name,
               lg_study_n_cells(study), res.nfiles, be->name);
    /* recorded: a kept stopped run of this spec is obsolete */
    if (!res.diverged && keep.len && lg_is_dir(keep.ptr))
        lg_path_remove_tree(keep.ptr);
out:
    /* a run that failed after finishing seed groups (an I/O error, a lock
     * timeout at record time), or a resumed one, keeps them for --resume;
     * the one-line error says so */
    if (err < 0 && err != LG_EDIVERGED && !res.diverged && !kept && (resumed_from || res.groups_done > 0) &&
        keep.len) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        if (keep_for_resume(lg, study, be, staging.ptr, &keep) == 0) {
            kept = 1;
            lg_error_set(err, "%s (its finished seed groups are kept in %s: 'ledger run --resume %s' continues)", msg,
                         keep.ptr, study->path);
        } else
            lg_error_set(err, "%s", msg);
    }
    rc = err < 0 ? (err == LG_EDIVERGED ? 1 : cli_fail("run", err)) : 0;
done:
    if (!kept && staging.ptr && staging.len && lg_is_dir(staging.ptr))
        lg_path_remove_tree(staging.ptr);
    lg_run_result_release(&res);
    lg_buf_release(&staging);
    lg_buf_release(&key_path);
    lg_buf_release(&keep);
    lg_study_free(study);
    return rc;
}
