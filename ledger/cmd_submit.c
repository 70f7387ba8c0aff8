/*
 * cmd_submit.c - 'ledger submit --slurm STUDY.json': run a study on a Slurm
 * cluster as a job array of shards plus a gather job (shard.h).
 *
 * Two batch scripts are written to .ledger/slurm/<spec sha256 prefix>-<time>-<pid>/
 * (with the jobs' logs): shards.sbatch, an array 0..N-1 whose task runs
 *   ledger run --shard $((SLURM_ARRAY_TASK_ID+1))/N STUDY
 * and gather.sbatch, which runs 'ledger gather STUDY' and is submitted with
 * --dependency=afterok:<array job id> (and --kill-on-invalid-dep=yes, so a
 * failed shard cancels it instead of leaving it pending for ever). Both are
 * submitted with 'sbatch --parsable' (found on PATH); the job ids are
 * printed. Scripts cd to the repository root and call this ledger binary by
 * its absolute path, so the repository and the binary must be at the same
 * paths on the compute nodes. Option values go into '#SBATCH' lines and
 * shell words: a value holding a line break is refused (exit 2), shell words
 * are single-quoted.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/study.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/shard.h"

#define MAX_EXTRA 64

/* 'text' single-quoted for the shell into b. */
static int shell_quote(lg_buf *b, const char *text)
{
    const char *p;
    int err = lg_buf_puts(b, "'");
    for (p = text; err == 0 && *p; p++)
        err = *p == '\'' ? lg_buf_puts(b, "'\\''") : lg_buf_put(b, p, 1);
    return err < 0 ? err : lg_buf_puts(b, "'");
}

static int check_value(const char *opt, const char *v)
{
    if (v && strpbrk(v, "\n\r"))
        return lg_error_set(LG_EINPUT, "--%s: a value may not hold a line break", opt);
    return 0;
}

typedef struct {
    const char *partition, *time, *gres, *mem, *account, *cpus, *job_name;
    const char *extra[MAX_EXTRA];
    int nextra;
} sbatch_opts;

static int common_lines(lg_buf *b, const sbatch_opts *o)
{
    int err = 0, i;
    if (o->partition)
        err = lg_buf_printf(b, "#SBATCH --partition=%s\n", o->partition);
    if (!err && o->time)
        err = lg_buf_printf(b, "#SBATCH --time=%s\n", o->time);
    if (!err && o->gres)
        err = lg_buf_printf(b, "#SBATCH --gres=%s\n", o->gres);
    if (!err && o->cpus)
        err = lg_buf_printf(b, "#SBATCH --cpus-per-task=%s\n", o->cpus);
    if (!err && o->mem)
        err = lg_buf_printf(b, "#SBATCH --mem=%s\n", o->mem);
    if (!err && o->account)
        err = lg_buf_printf(b, "#SBATCH --account=%s\n", o->account);
    for (i = 0; !err && i < o->nextra; i++)
        err = lg_buf_printf(b, "#SBATCH %s\n", o->extra[i]);
    return err;
}

/* Runs argv, its stdout into out (at most 4 KiB); 0 when it exits 0. */
static int run_capture(char *const argv[], lg_buf *out)
{
    int fds[2], status;
    pid_t pid;
    char buf[512];
    ssize_t n;
    lg_buf_clear(out);
    if (pipe(fds) < 0)
        return lg_error_set(LG_EIO, "pipe: %s", strerror(errno));
    if ((pid = fork()) < 0) {
        close(fds[0]);
        close(fds[1]);
        return lg_error_set(LG_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "ledger submit: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out->len < 4096)
            lg_buf_put(out, buf, (size_t)n);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return lg_error_set(LG_EIO, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return lg_error_set(LG_EIO, "%s %s failed (exit %d)", argv[0], argv[1],
                            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* "1234" or "1234;cluster\n" -> "1234" */
static int parse_job_id(const lg_buf *out, char *id, size_t n)
{
    size_t i = 0;
    while (out->ptr && i < out->len && i + 1 < n && out->ptr[i] >= '0' && out->ptr[i] <= '9') {
        id[i] = out->ptr[i];
        i++;
    }
    id[i] = '\0';
    if (i == 0)
        return lg_error_set(LG_EIO, "sbatch --parsable printed no job id ('%.60s')", out->ptr ? out->ptr : "");
    return 0;
}

int cmd_submit(lg_cli *cli, int argc, char **argv)
{
    const char *backend_name = "auto", *stage_dir = NULL, *ledger_bin = NULL;
    lg_opt_list sbatch = LG_OPT_LIST_INIT;
    int slurm = 0, shards = 4, dry_run = 0, json = 0;
    sbatch_opts so;
    const lg_opt opts[] = {
        {"slurm", 0, LG_OPT_FLAG, &slurm, NULL, "submit to Slurm with sbatch (the only scheduler so far; required)"},
        {"shards", 'N', LG_OPT_INT, &shards, "N", "number of shards, one array task each (default 4)"},
        {"partition", 'p', LG_OPT_STRING, &so.partition, "NAME", "#SBATCH --partition"},
        {"time", 't', LG_OPT_STRING, &so.time, "LIMIT", "#SBATCH --time (per task, e.g. 02:00:00)"},
        {"gres", 0, LG_OPT_STRING, &so.gres, "SPEC", "#SBATCH --gres (e.g. gpu:1)"},
        {"cpus-per-task", 'c', LG_OPT_STRING, &so.cpus, "N", "#SBATCH --cpus-per-task"},
        {"mem", 0, LG_OPT_STRING, &so.mem, "SIZE", "#SBATCH --mem (e.g. 16G)"},
        {"account", 'A', LG_OPT_STRING, &so.account, "NAME", "#SBATCH --account"},
        {"job-name", 'J', LG_OPT_STRING, &so.job_name, "NAME", "job name prefix (default ledger-<study>)"},
        {"sbatch", 0, LG_OPT_LIST, &sbatch, "LINE",
         "an extra '#SBATCH LINE' in both scripts (repeatable), e.g. --sbatch=--qos=long"},
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "backend of the shards and the gather (default auto)"},
        {"stage-dir", 0, LG_OPT_STRING, &stage_dir, "DIR", "staging root shared by all nodes (default .ledger/shards)"},
        {"ledger", 0, LG_OPT_STRING, &ledger_bin, "PATH", "the ledger binary on the nodes (default: this one)"},
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "print the two scripts, submit nothing"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the job ids (or the scripts) as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "submit", "ledger submit --slurm [options] STUDY.json",
        "Submits a study to Slurm: a job array of N shards (task i runs 'ledger run --shard\n"
        "$((i+1))/N STUDY.json') and a gather job ('ledger gather STUDY.json') that starts when\n"
        "every shard succeeded (--dependency=afterok). Prints both job ids. The repository,\n"
        "its .ledger/ (or --stage-dir), the data file and the ledger binary must be at the same\n"
        "paths on every node. Re-submitting after a failure trains only the groups not staged.",
        opts, 1, 1, 0};
    int nargs, rc = 0, err = 0, i;
    char **args, stamp[32], self[PATH_MAX], study_abs[PATH_MAX], idbuf[2][32];
    lg_study *study = NULL;
    lg_ledger *lg = NULL;
    lg_buf dir = LG_BUF_INIT, sh = LG_BUF_INIT, ga = LG_BUF_INIT, cmd = LG_BUF_INIT, path = LG_BUF_INIT,
           out = LG_BUF_INIT;
    char job_name[160];

    memset(&so, 0, sizeof so);

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN) {
        lg_opt_list_release(&sbatch);
        return rc;
    }

    rc = 0;
    for (i = 0; i < sbatch.n; i++) {
        if (!*sbatch.v[i]) {
            err = lg_error_set(LG_EINPUT, "--sbatch needs a value");
            goto out;
        }
        if (so.nextra == MAX_EXTRA) {
            err = lg_error_set(LG_EINPUT, "--sbatch: at most %d lines", MAX_EXTRA);
            goto out;
        }
        so.extra[so.nextra++] = sbatch.v[i];
    }
    if (!slurm) {
        err = lg_error_set(LG_EINPUT, "say where to submit: --slurm (the only scheduler supported)");
        goto out;
    }
    if (shards < 1 || shards > 100000) {
        err = lg_error_set(LG_EINPUT, "--shards %d: expected 1..100000", shards);
        goto out;
    }
    if ((err = check_value("partition", so.partition)) < 0 || (err = check_value("time", so.time)) < 0 ||
        (err = check_value("gres", so.gres)) < 0 || (err = check_value("cpus-per-task", so.cpus)) < 0 ||
        (err = check_value("mem", so.mem)) < 0 || (err = check_value("account", so.account)) < 0 ||
        (err = check_value("job-name", so.job_name)) < 0)
        goto out;
    for (i = 0; i < so.nextra; i++)
        if ((err = check_value("sbatch", so.extra[i])) < 0)
            goto out;
    /* the backend is resolved on the compute nodes ('auto' on a login node
     * without a GPU would say cpu): only its name is checked here */
    if (strcmp(backend_name, "cpu") != 0 && strcmp(backend_name, "cuda") != 0 && strcmp(backend_name, "auto") != 0) {
        err = lg_error_set(LG_EINPUT, "--backend %s: expected cpu, cuda or auto", backend_name);
        goto out;
    }
    if ((err = lg_study_load(args[0], &study)) < 0 || (err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if ((err = cli_check_study_name(lg, study->name, study->path)) < 0)
        goto out;
    if (!realpath(args[0], study_abs)) {
        err = lg_error_set(LG_EINPUT, "%s: %s", args[0], strerror(errno));
        goto out;
    }
    if (ledger_bin)
        snprintf(self, sizeof self, "%s", ledger_bin);
    else if (!realpath("/proc/self/exe", self)) {
        err = lg_error_set(LG_EIO, "cannot find this program's path (give --ledger PATH)");
        goto out;
    }
    {
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tmv);
    }
    if ((err = lg_buf_printf(&dir, "%s/slurm/%.12s-%s-%ld", lg_ledger_dir(lg), study->spec_digest, stamp, (long)getpid())) < 0)
        goto out;
    {
        /* job names: printable, no spaces */
        size_t k;
        snprintf(job_name, sizeof job_name, "%s", so.job_name ? so.job_name : "");
        if (!so.job_name)
            snprintf(job_name, sizeof job_name, "ledger-%s", study->name);
        for (k = 0; job_name[k]; k++)
            if ((unsigned char)job_name[k] <= ' ' || job_name[k] == '\'' || job_name[k] == '"')
                job_name[k] = '_';
    }
    /* the command a task runs, shell-quoted */
    if ((err = shell_quote(&cmd, self)) < 0 || (err = lg_buf_printf(&cmd, " run --backend ")) < 0 ||
        (err = shell_quote(&cmd, backend_name)) < 0)
        goto out;
    if (stage_dir && ((err = lg_buf_puts(&cmd, " --stage-dir ")) < 0 || (err = shell_quote(&cmd, stage_dir)) < 0))
        goto out;
    /* shards.sbatch */
    if ((err = lg_buf_printf(&sh, "#!/bin/bash\n#SBATCH --job-name=%s-shards\n#SBATCH --array=0-%d\n"
                                  "#SBATCH --output=%s/shard-%%a.log\n",
                             job_name, shards - 1, dir.ptr)) < 0 ||
        (err = common_lines(&sh, &so)) < 0 ||
        (err = lg_buf_printf(&sh, "# written by ledger submit: shard $((SLURM_ARRAY_TASK_ID+1)) of %d of study %s\n"
                                  "set -eu\ncd ",
                             shards, study->name)) < 0 ||
        (err = shell_quote(&sh, lg_ledger_root(lg))) < 0 ||
        (err = lg_buf_printf(&sh, "\nexec %s -q --shard \"$((SLURM_ARRAY_TASK_ID+1))/%d\" ", cmd.ptr, shards)) < 0 ||
        (err = shell_quote(&sh, study_abs)) < 0 || (err = lg_buf_puts(&sh, "\n")) < 0)
        goto out;
    /* gather.sbatch */
    if ((err = lg_buf_printf(&ga, "#!/bin/bash\n#SBATCH --job-name=%s-gather\n#SBATCH --output=%s/gather.log\n"
                                  "#SBATCH --kill-on-invalid-dep=yes\n",
                             job_name, dir.ptr)) < 0 ||
        (err = common_lines(&ga, &so)) < 0 ||
        (err = lg_buf_printf(&ga, "# written by ledger submit: records the %d shards of study %s as one run\n"
                                  "set -eu\ncd ",
                             shards, study->name)) < 0 ||
        (err = shell_quote(&ga, lg_ledger_root(lg))) < 0 || (err = lg_buf_puts(&ga, "\nexec ")) < 0 ||
        (err = shell_quote(&ga, self)) < 0 || (err = lg_buf_puts(&ga, " gather -q --backend ")) < 0 ||
        (err = shell_quote(&ga, backend_name)) < 0)
        goto out;
    if (stage_dir && ((err = lg_buf_puts(&ga, " --stage-dir ")) < 0 || (err = shell_quote(&ga, stage_dir)) < 0))
        goto out;
    if ((err = lg_buf_puts(&ga, " ")) < 0 || (err = shell_quote(&ga, study_abs)) < 0 ||
        (err = lg_buf_puts(&ga, "\n")) < 0)
        goto out;
    if (dry_run) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            char *t;
            cJSON_AddStringToObject(o, "study", study->name);
            cJSON_AddNumberToObject(o, "shards", shards);
            cJSON_AddStringToObject(o, "shards_script", sh.ptr);
            cJSON_AddStringToObject(o, "gather_script", ga.ptr);
            cJSON_AddStringToObject(o, "gather_dependency", "afterok:<array job id>");
            if ((t = cJSON_Print(o)))
                printf("%s\n", t);
            cJSON_free(t);
            cJSON_Delete(o);
        } else
            printf("# shards.sbatch (sbatch --parsable)\n%s\n# gather.sbatch (sbatch --parsable "
                   "--dependency=afterok:<array job id>)\n%s",
                   sh.ptr, ga.ptr);
        goto out;
    }
    if ((err = lg_mkdir_p(dir.ptr, 0755)) < 0)
        goto out;
    {
        const char *names[2] = {"shards.sbatch", "gather.sbatch"};
        const lg_buf *texts[2] = {&sh, &ga};
        for (i = 0; i < 2; i++) {
            lg_buf_clear(&path);
            if ((err = lg_buf_printf(&path, "%s/%s", dir.ptr, names[i])) < 0 ||
                (err = lg_file_write_atomic(path.ptr, texts[i]->ptr, texts[i]->len)) < 0)
                goto out;
        }
    }
    {
        char dep[64];
        lg_buf p0 = LG_BUF_INIT, p1 = LG_BUF_INIT;
        char *a0[4], *a1[5];
        lg_buf_printf(&p0, "%s/shards.sbatch", dir.ptr);
        lg_buf_printf(&p1, "%s/gather.sbatch", dir.ptr);
        a0[0] = "sbatch";
        a0[1] = "--parsable";
        a0[2] = p0.ptr;
        a0[3] = NULL;
        if ((err = run_capture(a0, &out)) < 0 || (err = parse_job_id(&out, idbuf[0], sizeof idbuf[0])) < 0) {
            /* nothing submitted: no scripts left behind */
            unlink(p0.ptr);
            unlink(p1.ptr);
            rmdir(dir.ptr);
            lg_buf_release(&p0);
            lg_buf_release(&p1);
            goto out;
        }
        snprintf(dep, sizeof dep, "--dependency=afterok:%s", idbuf[0]);
        a1[0] = "sbatch";
        a1[1] = "--parsable";
        a1[2] = dep;
        a1[3] = p1.ptr;
        a1[4] = NULL;
        if ((err = run_capture(a1, &out)) < 0 || (err = parse_job_id(&out, idbuf[1], sizeof idbuf[1])) < 0) {
            lg_error_wrap("the shards were submitted as job %s but the gather was not (cancel them with "
                          "'scancel %s', or run 'ledger gather' once they finish)",
                          idbuf[0], idbuf[0]);
            lg_buf_release(&p0);
            lg_buf_release(&p1);
            goto out;
        }
        lg_buf_release(&p0);
        lg_buf_release(&p1);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *t;
        cJSON_AddStringToObject(o, "study", study->name);
        cJSON_AddNumberToObject(o, "shards", shards);
        cJSON_AddStringToObject(o, "array_job_id", idbuf[0]);
        cJSON_AddStringToObject(o, "gather_job_id", idbuf[1]);
        cJSON_AddStringToObject(o, "spec_sha256", study->spec_digest);
        cJSON_AddStringToObject(o, "scripts", dir.ptr);
        if ((t = cJSON_Print(o)))
            printf("%s\n", t);
        cJSON_free(t);
        cJSON_Delete(o);
    } else
        printf("submitted %s: shards as array job %s (%d tasks), gather as job %s (afterok:%s); scripts and logs "
               "in %s\n",
               study->name, idbuf[0], shards, idbuf[1], idbuf[0], dir.ptr);
out:
    if (err < 0)
        rc = cli_fail("submit", err);
    lg_opt_list_release(&sbatch);
    lg_buf_release(&dir);
    lg_buf_release(&sh);
    lg_buf_release(&ga);
    lg_buf_release(&cmd);
    lg_buf_release(&path);
    lg_buf_release(&out);
    lg_study_free(study);
    return rc;
}
