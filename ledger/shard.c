/*
 * shard.c - shards, gather and the running markers (see shard.h).
 *
 * Why groups, and why markers: a seed group is what the engine trains in one
 * go, and its marker (written last, temp + fsync + rename, carrying the plan
 * digest and each weight file's SHA-256) is already what stop/resume trusts.
 * A shard is therefore a resume run restricted to its groups: re-running it
 * skips the groups whose markers match, a killed shard leaves at most weight
 * files without a marker (which nothing takes as complete), and shards never
 * write the same file unless they train the same group (then the same bytes,
 * each through its own temp file). The gather is a resume run that may not
 * train: it re-hashes every staged weight file, reads the weights back bit
 * for bit and evaluates them, so its results and files are those of one
 * uninterrupted `ledger run` on the same backend.
 *
 * Running markers (running/shard-I-of-N.json: pid, host, Slurm job id) are
 * created with O_EXCL, so one process at a time works as shard I/N; a marker
 * whose pid is dead on this host, or that names this Slurm job (a requeued
 * task), is stale and taken over. They inform 'ledger status'; correctness
 * never depends on them.
 */
#define _XOPEN_SOURCE 700
#include "ledger/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "engine/engine.h"
#include "ledger/cli.h"
#include "ledger/manifest.h"

int shard_parse(const char *arg, int *index, int *count)
{
    char *end;
    long i, n;
    /* digits '/' digits, nothing else (strtol alone would take spaces and signs) */
    size_t a = strspn(arg, "0123456789");
    if (a == 0 || a > 6 || arg[a] != '/' || strspn(arg + a + 1, "0123456789") != strlen(arg + a + 1) ||
        strlen(arg + a + 1) == 0 || strlen(arg + a + 1) > 6)
        goto bad;
    errno = 0;
    i = strtol(arg, &end, 10);
    if (end == arg || *end != '/' || errno)
        goto bad;
    n = strtol(end + 1, &end, 10);
    if (*end || errno || end[-1] == '/' || n < 1 || n > 100000 || i < 1 || i > n || arg[0] == '+' || arg[0] == ' ')
        goto bad;
    *index = (int)i;
    *count = (int)n;
    return 0;
bad:
    return lg_error_set(LG_EINPUT, "--shard '%s': expected I/N with 1 <= I <= N <= 100000 (e.g. 2/4)", arg);
}

int shard_plan_open(lg_ledger *lg, const lg_study *s, const lg_backend *be, const char *stage_root, shard_plan *out)
{
    int err;
    memset(out, 0, sizeof *out);
    if ((err = lg_study_plan_digest(s, be, out->plan, out->data)) < 0)
        return err;
    if (stage_root)
        return lg_buf_printf(&out->dir, "%s/%s", stage_root, out->plan);
    return lg_buf_printf(&out->dir, "%s/shards/%s", lg_ledger_dir(lg), out->plan);
}

void shard_plan_release(shard_plan *p)
{
    if (p)
        lg_buf_release(&p->dir);
}

int shard_check(const lg_study *s, const lg_backend *be, const shard_plan *p, lg_run_result *res)
{
    lg_run_options ro;
    memset(&ro, 0, sizeof ro);
    ro.be = be;
    ro.outdir = p->dir.ptr;
    ro.check_only = 1;
    ro.plan_digest = p->plan;
    return lg_study_execute(s, &ro, res);
}

void shard_group_label(const lg_study *s, const lg_run_group *g, char *buf, size_t n)
{
    if (g->n == 1)
        snprintf(buf, n, "group %d (condition %s, seed %llu)", g->index + 1, g->condition,
                 (unsigned long long)s->seeds[g->first]);
    else
        snprintf(buf, n, "group %d (condition %s, seeds %llu..%llu)", g->index + 1, g->condition,
                 (unsigned long long)s->seeds[g->first], (unsigned long long)s->seeds[g->first + g->n - 1]);
}

static const char *state_name(int st)
{
    return st == LG_GROUP_TRAINED ? "trained" : st == LG_GROUP_STAGED ? "staged" : st == LG_GROUP_MISSING ? "missing"
                                                                                                          : "other";
}

/* [{"group": 1, "condition": ID, "seeds": [...], "shard_of_n": ..., "state": ...}] */
static cJSON *groups_json(const lg_study *s, const lg_run_result *res, int only_state)
{
    cJSON *a = cJSON_CreateArray();
    int i, j;
    for (i = 0; a && i < res->ngroups; i++) {
        const lg_run_group *g = &res->groups[i];
        cJSON *o, *seeds;
        if (only_state >= 0 && g->state != only_state)
            continue;
        if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(a, o) ||
            !cJSON_AddNumberToObject(o, "group", g->index + 1) ||
            !cJSON_AddStringToObject(o, "condition", g->condition) || !(seeds = cJSON_AddArrayToObject(o, "seeds")) ||
            !cJSON_AddStringToObject(o, "state", state_name(g->state))) {
            cJSON_Delete(a);
            return NULL;
        }
        for (j = 0; j < g->n; j++)
            cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)s->seeds[g->first + j]));
    }
    return a;
}

static int print_json(cJSON *o)
{
    char *t = o ? cJSON_Print(o) : NULL;
    if (!t)
        return lg_error_set(LG_ENOMEM, "out of memory");
    printf("%s\n", t);
    cJSON_free(t);
    return 0;
}

/* ---- running markers --------------------------------------------------------- */

static void host_name(char *buf, size_t n)
{
    if (gethostname(buf, n) < 0)
        snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

/* 1 when the marker m is stale: its pid is dead on this host, or it names
 * the Slurm job this process runs as (the task was requeued). */
static int marker_stale(const cJSON *m)
{
    char host[256];
    const char *mh = lg_json_str(m, "host"), *job = lg_json_str(m, "slurm_job_id"), *myjob = getenv("SLURM_JOB_ID");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(m, "pid");
    host_name(host, sizeof host);
    if (job && *job && myjob && strcmp(job, myjob) == 0)
        return 1;
    if (mh && strcmp(mh, host) == 0 && cJSON_IsNumber(pid) && pid->valuedouble > 0 &&
        kill((pid_t)pid->valuedouble, 0) < 0 && errno == ESRCH)
        return 1;
    return 0;
}

static int read_json(const char *path, cJSON **out)
{
    lg_buf text = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_file_read(path, 1 << 16, &text)) < 0)
        goto out;
    if (!(*out = cJSON_ParseWithLength(text.ptr, text.len)))
        err = lg_error_set(LG_EINPUT, "%s: not valid JSON", path);
out:
    lg_buf_release(&text);
    return err;
}

/* index 0: the gather's marker (running/gather.json), not a shard's */
static int running_acquire(const shard_plan *p, int index, int count, lg_buf *path)
{
    char host[256], what[64];
    const char *job = getenv("SLURM_JOB_ID");
    int tries, err;
    lg_buf_clear(path);
    if (index > 0)
        snprintf(what, sizeof what, "shard %d/%d", index, count);
    else
        snprintf(what, sizeof what, "a gather of this plan");
    if ((err = lg_buf_printf(path, "%s/running", p->dir.ptr)) < 0 || (err = lg_mkdir_p(path->ptr, 0755)) < 0 ||
        (index > 0 ? (err = lg_buf_printf(path, "/shard-%d-of-%d.json", index, count))
                   : (err = lg_buf_puts(path, "/gather.json"))) < 0)
        return err;
    host_name(host, sizeof host);
    for (tries = 0; tries < 3; tries++) {
        int fd = open(path->ptr, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cJSON *m = NULL;
        if (fd >= 0) {
            cJSON *o = cJSON_CreateObject();
            char *text = NULL;
            if (o && cJSON_AddNumberToObject(o, "format", 1) && cJSON_AddNumberToObject(o, "shard", index) &&
                cJSON_AddNumberToObject(o, "shards", count) && cJSON_AddNumberToObject(o, "pid", (double)getpid()) &&
                cJSON_AddStringToObject(o, "host", host) &&
                cJSON_AddStringToObject(o, "slurm_job_id", job ? job : "") &&
                cJSON_AddNumberToObject(o, "started", (double)time(NULL)))
                text = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            err = text && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fsync(fd) == 0
                      ? 0
                      : lg_error_set(LG_EIO, "%s: cannot write: %s", path->ptr, strerror(errno));
            cJSON_free(text);
            close(fd);
            if (err < 0)
                unlink(path->ptr);
            return err;
        }
        if (errno != EEXIST)
            return lg_error_set(LG_EIO, "%s: cannot create: %s", path->ptr, strerror(errno));
        if (read_json(path->ptr, &m) == 0 && marker_stale(m)) {
            cJSON_Delete(m);
            unlink(path->ptr); /* a dead process's or this requeued job's */
            continue;
        }
        if (m) {
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(m, "pid");
            const char *mh = lg_json_str(m, "host"), *mj = lg_json_str(m, "slurm_job_id");
            err = lg_error_set(LG_ELOCKED,
                               "%s: %s is already running (pid %.0f on %s%s%s); if that process is gone, "
                               "remove this file",
                               path->ptr, what, cJSON_IsNumber(pid) ? pid->valuedouble : -1.0, mh ? mh : "?",
                               mj && *mj ? ", Slurm job " : "", mj && *mj ? mj : "");
            cJSON_Delete(m);
            return err;
        }
        lg_error_clear();
        sleep(1); /* being written by its creator */
    }
    return lg_error_set(LG_ELOCKED, "%s: %s is already running; if no process works on it, remove this file",
                        path->ptr, what);
}

/* ---- ledger run --shard I/N ---------------------------------------------------- */

static int write_plan_json(const lg_study *s, const lg_backend *be, const shard_plan *p)
{
    lg_buf path = LG_BUF_INIT;
    cJSON *o = NULL;
    char *t = NULL;
    int err;
    if ((err = lg_buf_printf(&path, "%s/plan.json", p->dir.ptr)) < 0)
        goto out;
    if (lg_path_exists(path.ptr))
        goto out;
    if (!(o = cJSON_CreateObject()) || !cJSON_AddNumberToObject(o, "format", 1) ||
        !cJSON_AddStringToObject(o, "study", s->name) || !cJSON_AddStringToObject(o, "plan_sha256", p->plan) ||
        !cJSON_AddStringToObject(o, "spec_sha256", s->spec_digest) ||
        !cJSON_AddStringToObject(o, "data_sha256", p->data) ||
        !cJSON_AddStringToObject(o, "engine_version", LG_ENGINE_VERSION) ||
        !cJSON_AddStringToObject(o, "backend", be->name) || !(t = cJSON_Print(o))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    err = lg_file_write_atomic(path.ptr, t, strlen(t));
out:
    cJSON_free(t);
    cJSON_Delete(o);
    lg_buf_release(&path);
    return err;
}

int shard_cmd_run(lg_ledger *lg, const shard_run_args *a)
{
    shard_plan p;
    lg_run_result res;
    lg_buf marker = LG_BUF_INIT;
    int err, rc = 0, i, mine = 0, have_marker = 0;

    memset(&res, 0, sizeof res);
    if ((err = shard_plan_open(lg, a->study, a->be, a->stage_root, &p)) < 0)
        goto out;
    if ((err = lg_mkdir_p(p.dir.ptr, 0755)) < 0 || (err = write_plan_json(a->study, a->be, &p)) < 0)
        goto out;
    if ((err = running_acquire(&p, a->index, a->count, &marker)) < 0)
        goto out;
    have_marker = 1;
    if (!a->quiet)
        fprintf(stderr, "ledger run: %s: shard %d/%d on %s, staging in %s\n", a->study->name, a->index, a->count,
                a->be->name, p.dir.ptr);
    {
        lg_run_options ro;
        memset(&ro, 0, sizeof ro);
        ro.be = a->be;
        ro.outdir = p.dir.ptr;
        ro.progress = a->progress;
        ro.progress_ctx = a->progress_ctx;
        ro.stop = a->stop;
        ro.shard_index = a->index;
        ro.shard_count = a->count;
        ro.plan_digest = p.plan;
        err = lg_study_execute(a->study, &ro, &res);
    }
    unlink(marker.ptr);
    have_marker = 0;
    if (err == LG_ESTOPPED) {
        int sig = a->stop && *a->stop ? (int)*a->stop : SIGINT;
        fprintf(stderr,
                "ledger run: shard %d/%d stopped by %s: %s. %d seed group%s of this shard staged; run the shard "
                "again to continue\n",
                a->index, a->count, sig == SIGTERM ? "SIGTERM" : "SIGINT", lg_error_msg(),
                res.groups_done + res.groups_resumed, res.groups_done + res.groups_resumed == 1 ? "" : "s");
        rc = 128 + sig;
        goto done;
    }
    if (err == LG_EDIVERGED) {
        fprintf(stderr, "ledger run: shard %d/%d: training diverged: %s (the group is not staged; a single-process "
                        "'ledger run' records the failed run)\n",
                a->index, a->count, lg_error_msg());
        rc = 1;
        goto done;
    }
    if (err < 0)
        goto out;
    for (i = 0; i < res.ngroups; i++)
        mine += res.groups[i].state != LG_GROUP_OTHER;
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *g = groups_json(a->study, &res, -1);
        cJSON_AddStringToObject(o, "study", a->study->name);
        cJSON_AddNumberToObject(o, "shard", a->index);
        cJSON_AddNumberToObject(o, "shards", a->count);
        cJSON_AddStringToObject(o, "plan_sha256", p.plan);
        cJSON_AddStringToObject(o, "staging", p.dir.ptr);
        cJSON_AddNumberToObject(o, "groups_total", res.ngroups);
        cJSON_AddNumberToObject(o, "groups_trained", res.groups_done);
        cJSON_AddNumberToObject(o, "groups_already_staged", res.groups_resumed);
        if (g)
            cJSON_AddItemToObject(o, "groups", g);
        err = print_json(o);
        cJSON_Delete(o);
        if (err < 0)
            goto out;
    } else
        printf("shard %d/%d of %s: %d of %d seed groups are this shard's: %d trained, %d already staged (%s)\n",
               a->index, a->count, a->study->name, mine, res.ngroups, res.groups_done, res.groups_resumed, p.dir.ptr);
out:
    if (err < 0)
        rc = cli_fail("run", err);
done:
    if (have_marker)
        unlink(marker.ptr);
    lg_buf_release(&marker);
    lg_run_result_release(&res);
    shard_plan_release(&p);
    return rc;
}

/* ---- gather ---------------------------------------------------------------------- */

int shard_cmd_gather(lg_ledger *lg, const lg_study *s, const lg_backend *be, const char *stage_root, int json,
                     int quiet, const char *sign_key_path)
{
    shard_plan p;
    lg_run_result chk, res;
    lg_buf marker = LG_BUF_INIT;
    char run_id[65] = "";
    int err, rc = 0, i, nmissing = 0;
    size_t k;

    memset(&chk, 0, sizeof chk);
    memset(&res, 0, sizeof res);
    if ((err = shard_plan_open(lg, s, be, stage_root, &p)) < 0)
        goto out;
    if ((err = cli_check_study_name(lg, s->name, s->path)) < 0)
        goto out;
    /* one gather at a time: a second one would race the first's removal of the folder */
    if ((err = lg_mkdir_p(p.dir.ptr, 0755)) < 0 || (err = running_acquire(&p, 0, 0, &marker)) < 0)
        goto out;
    /* every group staged, of this plan, with intact weight files? */
    if ((err = shard_check(s, be, &p, &chk)) < 0)
        goto out;
    for (i = 0; i < chk.ngroups; i++)
        nmissing += chk.groups[i].state == LG_GROUP_MISSING;
    if (nmissing) {
        char label[256];
        fprintf(stderr, "ledger gather: %s: %d of %d seed groups are not staged in %s:", s->name, nmissing,
                chk.ngroups, p.dir.ptr);
        for (i = 0, k = 0; i < chk.ngroups; i++)
            if (chk.groups[i].state == LG_GROUP_MISSING) {
                shard_group_label(s, &chk.groups[i], label, sizeof label);
                fprintf(stderr, "%s %s", k++ ? "," : "", label);
            }
        fprintf(stderr, ". Nothing recorded; run the shards that train them (ledger run --shard I/N %s) and "
                        "gather again\n",
                s->path);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "study", s->name);
            cJSON_AddStringToObject(o, "status", "incomplete");
            cJSON_AddStringToObject(o, "plan_sha256", p.plan);
            cJSON_AddNumberToObject(o, "groups_total", chk.ngroups);
            cJSON_AddItemToObject(o, "missing", groups_json(s, &chk, LG_GROUP_MISSING));
            print_json(o);
            cJSON_Delete(o);
        }
        rc = 1;
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "ledger gather: %s: all %d seed groups staged; evaluating on %s\n", s->name, chk.ngroups,
                be->name);
    {
        lg_run_options ro;
        memset(&ro, 0, sizeof ro);
        ro.be = be;
        ro.outdir = p.dir.ptr;
        ro.resume = 1;
        ro.staged_only = 1;
        ro.plan_digest = p.plan;
        err = lg_study_execute(s, &ro, &res);
    }
    if (err < 0 && !res.diverged)
        goto out;
    if ((err = cli_record_study_run(lg, s, be, &res, sign_key_path, run_id)) < 0)
        goto out;
    /* recorded: the staging folder is spent */
    lg_path_remove_tree(p.dir.ptr);
    if (res.diverged) {
        fprintf(stderr, "ledger gather: %s: %s (recorded as failed run %.12s; not evidence)\n", s->name, res.failure,
                run_id);
        rc = 1;
        goto done;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "study", s->name);
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddStringToObject(o, "backend", be->name);
        cJSON_AddStringToObject(o, "plan_sha256", p.plan);
        cJSON_AddNumberToObject(o, "groups", chk.ngroups);
        cJSON_AddNumberToObject(o, "cells", lg_study_n_cells(s));
        cJSON_AddNumberToObject(o, "outputs", (double)res.nfiles);
        err = print_json(o);
        cJSON_Delete(o);
        if (err < 0)
            goto out;
    } else
        printf("run %.12s recorded: study %s, %d cells from %d staged seed groups, %zu outputs, backend %s\n",
               run_id, s->name, lg_study_n_cells(s), chk.ngroups, res.nfiles, be->name);
out:
    if (err < 0)
        rc = cli_fail("gather", err);
done:
    if (marker.len) {
        /* the marker, and the folders it made if they hold nothing else */
        char *slash;
        unlink(marker.ptr);
        if ((slash = strrchr(marker.ptr, '/'))) {
            *slash = '\0';
            rmdir(marker.ptr);
        }
        rmdir(p.dir.ptr);
    }
    lg_buf_release(&marker);
    lg_run_result_release(&chk);
    lg_run_result_release(&res);
    shard_plan_release(&p);
    return rc;
}

/* ---- push / pull of staged groups ------------------------------------------------ */

static int copy_piece(void *ctx, const void *piece, size_t n) { return lg_atomic_write(ctx, piece, n); }

/* Copies src to dst (atomically) when its bytes hash to want; LG_ECHECK when not. */
static int copy_checked(const char *src, const char *dst, const char *want)
{
    lg_atomic_file f = {-1, NULL, NULL};
    char got[65];
    char *slash;
    int fd, err;
    lg_buf dir = LG_BUF_INIT;
    if ((err = lg_buf_puts(&dir, dst)) < 0)
        return err;
    slash = strrchr(dir.ptr, '/');
    *slash = '\0';
    err = lg_mkdir_p(dir.ptr, 0755);
    lg_buf_release(&dir);
    if (err < 0)
        return err;
    if ((fd = open(src, O_RDONLY)) < 0)
        return lg_error_set(LG_EIO, "%s: %s", src, strerror(errno));
    if ((err = lg_atomic_open(&f, dst)) < 0) {
        close(fd);
        return err;
    }
    err = lg_sha256_fd(fd, src, copy_piece, &f, got, NULL);
    close(fd);
    if (err == 0 && strcmp(got, want) != 0)
        err = lg_error_set(LG_ECHECK, "%s: its bytes hash to %.12s, its marker says %.12s: not copied", src, got, want);
    if (err < 0) {
        lg_atomic_abort(&f);
        return err;
    }
    return lg_atomic_commit(&f);
}

/* Copies every group that is complete in src (marker of this plan, files
 * re-hashed) and not already in dst: weight files first, each committed only
 * when its bytes hash as the marker says, the marker last; plan.json too. */
static int copy_groups(const lg_study *s, const lg_backend *be, const shard_plan *src, const char *dst, int dry_run,
                       int *copied, int *present)
{
    lg_run_result chk;
    lg_buf a = LG_BUF_INIT, b = LG_BUF_INIT, ta = LG_BUF_INIT, tb = LG_BUF_INIT;
    cJSON *m = NULL;
    char fid[160];
    int i, j, err;
    memset(&chk, 0, sizeof chk);
    *copied = *present = 0;
    if ((err = shard_check(s, be, src, &chk)) < 0)
        goto out;
    for (i = 0; i < chk.ngroups; i++) {
        const lg_run_group *g = &chk.groups[i];
        const cJSON *dg;
        if (g->state != LG_GROUP_STAGED)
            continue;
        lg_condition_file_id(g->condition, fid, sizeof fid);
        lg_buf_clear(&a);
        lg_buf_clear(&b);
        lg_buf_clear(&ta); /* lg_file_read appends */
        lg_buf_clear(&tb);
        if ((err = lg_buf_printf(&a, "%s/.resume/%s/group-%d.json", src->dir.ptr, fid, g->first)) < 0 ||
            (err = lg_buf_printf(&b, "%s/.resume/%s/group-%d.json", dst, fid, g->first)) < 0 ||
            (err = lg_file_read(a.ptr, 1 << 20, &ta)) < 0)
            goto out;
        if (lg_path_exists(b.ptr) && lg_file_read(b.ptr, 1 << 20, &tb) == 0 && tb.len == ta.len &&
            memcmp(tb.ptr, ta.ptr, ta.len) == 0) {
            (*present)++;
            continue;
        }
        lg_error_clear();
        (*copied)++;
        if (dry_run)
            continue;
        cJSON_Delete(m);
        if (!(m = cJSON_ParseWithLength(ta.ptr, ta.len)) ||
            cJSON_GetArraySize(dg = cJSON_GetObjectItemCaseSensitive(m, "weights_sha256")) != g->n) {
            err = lg_error_set(LG_EINPUT, "%s: not a group marker", a.ptr);
            goto out;
        }
        for (j = 0; j < g->n; j++) {
            const cJSON *h = cJSON_GetArrayItem(dg, j);
            unsigned long long seed = (unsigned long long)s->seeds[g->first + j];
            lg_buf_clear(&ta);
            lg_buf_clear(&tb);
            if (!cJSON_IsString(h) || !lg_sha256_hex_valid(h->valuestring)) {
                err = lg_error_set(LG_EINPUT, "%s: weights_sha256[%d] is not a digest", a.ptr, j);
                goto out;
            }
            if ((err = lg_buf_printf(&ta, "%s/cells/%s/seed-%llu.safetensors", src->dir.ptr, fid, seed)) < 0 ||
                (err = lg_buf_printf(&tb, "%s/cells/%s/seed-%llu.safetensors", dst, fid, seed)) < 0 ||
                (err = copy_checked(ta.ptr, tb.ptr, h->valuestring)) < 0)
                goto out;
        }
        /* the marker last: it is what makes the group complete there */
        lg_buf_clear(&ta);
        if ((err = lg_file_read(a.ptr, 1 << 20, &ta)) < 0)
            goto out;
        {
            char want[65];
            if ((err = lg_sha256_buf(ta.ptr, ta.len, want)) < 0 || (err = copy_checked(a.ptr, b.ptr, want)) < 0)
                goto out;
        }
    }
    if (!dry_run) {
        lg_buf_clear(&a);
        lg_buf_clear(&b);
        if ((err = lg_buf_printf(&a, "%s/plan.json", src->dir.ptr)) < 0 ||
            (err = lg_buf_printf(&b, "%s/plan.json", dst)) < 0)
            goto out;
        if (lg_path_exists(a.ptr) && !lg_path_exists(b.ptr)) {
            char want[65];
            lg_buf_clear(&ta);
            if ((err = lg_file_read(a.ptr, 1 << 20, &ta)) < 0 || (err = lg_sha256_buf(ta.ptr, ta.len, want)) < 0 ||
                (err = copy_checked(a.ptr, b.ptr, want)) < 0)
                goto out;
        }
    }
out:
    cJSON_Delete(m);
    lg_run_result_release(&chk);
    lg_buf_release(&a);
    lg_buf_release(&b);
    lg_buf_release(&ta);
    lg_buf_release(&tb);
    return err;
}

int shard_cmd_sync(lg_ledger *lg, int push, const char *study_path, const char *backend_name, const char *stage_root,
                   const char *remote, int dry_run, int json)
{
    const char *name = push ? "push" : "pull";
    lg_study *s = NULL;
    const lg_backend *be = NULL;
    shard_plan local, far;
    int err, copied = 0, present = 0, rc = 0;
    memset(&local, 0, sizeof local);
    memset(&far, 0, sizeof far);
    if ((err = lg_study_load(study_path, &s)) < 0 || (err = lg_backend_get(backend_name, &be)) < 0 ||
        (err = shard_plan_open(lg, s, be, stage_root, &local)) < 0)
        goto out;
    /* the remote's staging folder: DIR/shards/<plan sha256> */
    memcpy(far.plan, local.plan, sizeof far.plan);
    memcpy(far.data, local.data, sizeof far.data);
    if ((err = lg_buf_printf(&far.dir, "%s/shards/%s", remote, local.plan)) < 0)
        goto out;
    if (!push && !lg_is_dir(remote)) {
        err = lg_error_set(LG_ENOTFOUND, "%s: no such directory remote", remote);
        goto out;
    }
    err = push ? copy_groups(s, be, &local, far.dir.ptr, dry_run, &copied, &present)
               : copy_groups(s, be, &far, local.dir.ptr, dry_run, &copied, &present);
    if (err < 0)
        goto out;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "study", s->name);
        cJSON_AddStringToObject(o, "plan_sha256", local.plan);
        cJSON_AddBoolToObject(o, "dry_run", dry_run);
        cJSON_AddNumberToObject(o, "groups_copied", copied);
        cJSON_AddNumberToObject(o, "groups_present", present);
        err = print_json(o);
        cJSON_Delete(o);
        if (err < 0)
            goto out;
    } else
        printf("%s %s: %d staged seed group%s of %s %scopied, %d already there\n", name, remote, copied,
               copied == 1 ? "" : "s", s->name, dry_run ? "would be " : "", present);
out:
    if (err < 0)
        rc = cli_fail(name, err);
    shard_plan_release(&local);
    shard_plan_release(&far);
    lg_study_free(s);
    return rc;
}
