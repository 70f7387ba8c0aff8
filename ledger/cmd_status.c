/*
 * cmd_status.c - 'ledger status STUDY.json': where a sharded run of a study
 * stands. Each seed group of the plan is staged (its marker matches and its
 * weight files hash as recorded), running (not staged, and the shard that
 * trains it holds a running marker with a live pid on this host or a Slurm
 * job id) or missing. Markers of dead processes on this host are reported
 * as stale. Reads only; exit 0 whatever the state (shard.h).
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/study.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/shard.h"

typedef struct {
    int shard, shards, live;
    double pid;
    char host[256], job[64];
} running_shard;

/* Reads dir/running/shard-*.json into *out (owned by the caller). */
static int read_running(const char *dir, running_shard **out, int *n)
{
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT;
    DIR *d;
    struct dirent *e;
    char myhost[256];
    int cap = 0, err = 0;
    *out = NULL;
    *n = 0;
    if (gethostname(myhost, sizeof myhost) < 0)
        myhost[0] = '\0';
    myhost[sizeof myhost - 1] = '\0';
    if ((err = lg_buf_printf(&path, "%s/running", dir)) < 0)
        goto out;
    if (!(d = opendir(path.ptr)))
        goto out; /* none */
    while ((e = readdir(d))) {
        cJSON *m;
        running_shard *r;
        const cJSON *pid;
        const char *h, *j;
        if (strncmp(e->d_name, "shard-", 6) != 0 || !strstr(e->d_name, ".json"))
            continue;
        lg_buf_clear(&path);
        lg_buf_clear(&text); /* lg_file_read appends */
        if (lg_buf_printf(&path, "%s/running/%s", dir, e->d_name) < 0 || lg_file_read(path.ptr, 1 << 16, &text) < 0 ||
            !(m = cJSON_ParseWithLength(text.ptr, text.len))) {
            lg_error_clear();
            continue;
        }
        if (*n == cap) {
            running_shard *p = lg_realloc(*out, (size_t)(cap = cap ? cap * 2 : 8) * sizeof(*p));
            if (!p) {
                cJSON_Delete(m);
                closedir(d);
                err = LG_ENOMEM;
                goto out;
            }
            *out = p;
        }
        r = &(*out)[(*n)++];
        memset(r, 0, sizeof *r);
        pid = cJSON_GetObjectItemCaseSensitive(m, "pid");
        r->pid = cJSON_IsNumber(pid) ? pid->valuedouble : -1;
        r->shard = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "shard"))
                       ? cJSON_GetObjectItemCaseSensitive(m, "shard")->valueint
                       : 0;
        r->shards = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "shards"))
                        ? cJSON_GetObjectItemCaseSensitive(m, "shards")->valueint
                        : 0;
        h = lg_json_str(m, "host");
        j = lg_json_str(m, "slurm_job_id");
        snprintf(r->host, sizeof r->host, "%s", h ? h : "?");
        snprintf(r->job, sizeof r->job, "%s", j ? j : "");
        if (strcmp(r->host, myhost) == 0)
            r->live = r->pid > 0 && (kill((pid_t)r->pid, 0) == 0 || errno == EPERM);
        else
            r->live = r->job[0] != '\0'; /* another node: a Slurm task is taken as running */
        cJSON_Delete(m);
    }
    closedir(d);
out:
    lg_buf_release(&path);
    lg_buf_release(&text);
    return err;
}

int cmd_status(lg_cli *cli, int argc, char **argv)
{
    const char *backend_name = "auto", *stage_dir = NULL;
    int json = 0;
    const lg_opt opts[] = {
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "the backend the shards run on: cpu, cuda or auto"},
        {"stage-dir", 0, LG_OPT_STRING, &stage_dir, "DIR", "staging root the shards use (default .ledger/shards)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"status", "ledger status [options] STUDY.json",
                              "Shows which seed groups of a sharded run ('ledger run --shard I/N') are staged,\n"
                              "running (their shard holds a running marker with a live pid on this host, or a\n"
                              "Slurm job id) and missing. Staged weight files are hashed again.",
                              opts, 1, 1, 0};
    int nargs, rc, err, i, j, nrun = 0, n_staged = 0, n_running = 0, n_missing = 0;
    char **args;
    lg_study *study = NULL;
    lg_ledger *lg = NULL;
    const lg_backend *be = NULL;
    shard_plan p;
    lg_run_result chk;
    running_shard *run = NULL;
    int *run_of = NULL; /* per group: the running shard index in run[] or -1 */
    cJSON *o = NULL, *ga = NULL, *ra = NULL;

    memset(&p, 0, sizeof p);
    memset(&chk, 0, sizeof chk);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    if ((err = lg_study_load(args[0], &study)) < 0 || (err = lg_backend_get(backend_name, &be)) < 0 ||
        (err = cli_ledger(cli, &lg)) < 0 || (err = shard_plan_open(lg, study, be, stage_dir, &p)) < 0 ||
        (err = shard_check(study, be, &p, &chk)) < 0 || (err = read_running(p.dir.ptr, &run, &nrun)) < 0)
        goto out;
    if (!(run_of = lg_calloc((size_t)(chk.ngroups ? chk.ngroups : 1), sizeof(int)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < chk.ngroups; i++) {
        run_of[i] = -1;
        if (chk.groups[i].state == LG_GROUP_STAGED) {
            n_staged++;
            continue;
        }
        for (j = 0; j < nrun; j++)
            if (run[j].live && run[j].shards > 0 && SHARD_OF(chk.groups[i].index, run[j].shards) == run[j].shard)
                run_of[i] = j;
        if (run_of[i] >= 0)
            n_running++;
        else
            n_missing++;
    }
    if (json) {
        if (!(o = cJSON_CreateObject()) || !(ga = cJSON_CreateArray()) || !(ra = cJSON_CreateArray())) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        cJSON_AddStringToObject(o, "study", study->name);
        cJSON_AddStringToObject(o, "plan_sha256", p.plan);
        cJSON_AddStringToObject(o, "backend", be->name);
        cJSON_AddStringToObject(o, "staging", p.dir.ptr);
        cJSON_AddNumberToObject(o, "groups_total", chk.ngroups);
        cJSON_AddNumberToObject(o, "staged", n_staged);
        cJSON_AddNumberToObject(o, "running", n_running);
        cJSON_AddNumberToObject(o, "missing", n_missing);
        for (j = 0; j < nrun; j++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddItemToArray(ra, r);
            cJSON_AddNumberToObject(r, "shard", run[j].shard);
            cJSON_AddNumberToObject(r, "shards", run[j].shards);
            cJSON_AddNumberToObject(r, "pid", run[j].pid);
            cJSON_AddStringToObject(r, "host", run[j].host);
            cJSON_AddStringToObject(r, "slurm_job_id", run[j].job);
            cJSON_AddStringToObject(r, "state", run[j].live ? "running" : "stale");
        }
        cJSON_AddItemToObject(o, "shards", ra);
        ra = NULL;
        for (i = 0; i < chk.ngroups; i++) {
            const lg_run_group *g = &chk.groups[i];
            cJSON *r = cJSON_CreateObject(), *seeds;
            cJSON_AddItemToArray(ga, r);
            cJSON_AddNumberToObject(r, "group", g->index + 1);
            cJSON_AddStringToObject(r, "condition", g->condition);
            seeds = cJSON_AddArrayToObject(r, "seeds");
            for (j = 0; j < g->n; j++)
                cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)study->seeds[g->first + j]));
            cJSON_AddStringToObject(r, "state", g->state == LG_GROUP_STAGED ? "staged"
                                                : run_of[i] >= 0            ? "running"
                                                                            : "missing");
        }
        cJSON_AddItemToObject(o, "groups", ga);
        ga = NULL;
        {
            char *t = cJSON_Print(o);
            if (!t) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            printf("%s\n", t);
            cJSON_free(t);
        }
    } else {
        char label[256];
        printf("study %s, plan %.12s on %s, staging %s\n", study->name, p.plan, be->name, p.dir.ptr);
        printf("seed groups: %d total, %d staged, %d running, %d missing\n", chk.ngroups, n_staged, n_running,
               n_missing);
        for (j = 0; j < nrun; j++)
            printf("shard %d/%d: %s (pid %.0f on %s%s%s)\n", run[j].shard, run[j].shards,
                   run[j].live ? "running" : "stale marker, process gone", run[j].pid, run[j].host,
                   run[j].job[0] ? ", Slurm job " : "", run[j].job);
        for (i = 0; i < chk.ngroups; i++) {
            shard_group_label(study, &chk.groups[i], label, sizeof label);
            if (chk.groups[i].state == LG_GROUP_STAGED)
                printf("  %s: staged\n", label);
            else if (run_of[i] >= 0)
                printf("  %s: running (shard %d/%d)\n", label, run[run_of[i]].shard, run[run_of[i]].shards);
            else
                printf("  %s: missing\n", label);
        }
    }
out:
    rc = err < 0 ? cli_fail("status", err) : 0;
    cJSON_Delete(o);
    cJSON_Delete(ga);
    cJSON_Delete(ra);
    lg_free(run);
    lg_free(run_of);
    lg_run_result_release(&chk);
    shard_plan_release(&p);
    lg_study_free(study);
    return rc;
}
