/*
 * cli.c - what the command files share: the option parser with the options
 * a command's needs add (cli_parse), the ledger a command works on
 * (cli_ledger, with the one lock-notify callback), error printing and the
 * output checks. main.c's command table calls the commands; the commands
 * call this file; neither calls main.c.
 */
#include "ledger/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static void lock_notify(void *ctx, const char *msg)
{
    fprintf(stderr, "ledger %s: %s\n", (const char *)ctx, msg);
}

int cli_parse(lg_cli *cli, const lg_cmd_spec *spec, int argc, char **argv, int *nargs, char ***args)
{
    static const lg_opt lock_opt = {"lock-timeout", 0, LG_OPT_INT, NULL, "SECONDS",
                                    "wait this long for the ledger lock (default " STR(CLI_LOCK_TIMEOUT_DEFAULT) ")"};
    lg_cmd_spec full = *spec;
    lg_opt *opts;
    size_t n = 0;
    int rc;
    if (!(cli->needs & CLI_NEEDS_WRITE_LOCK))
        return lg_opts_parse(spec, argc, argv, nargs, args);
    /* the command's table, then the options its needs add */
    while (spec->opts && spec->opts[n].kind != LG_OPT_END)
        n++;
    if (!(opts = calloc(n + 2, sizeof(*opts)))) {
        fprintf(stderr, "ledger %s: out of memory\n", cli->name);
        return 3;
    }
    if (n)
        memcpy(opts, spec->opts, n * sizeof(*opts));
    opts[n] = lock_opt;
    opts[n].value = &cli->lock_timeout;
    opts[n + 1] = (lg_opt)LG_OPT_TABLE_END;
    full.opts = opts;
    rc = lg_opts_parse(&full, argc, argv, nargs, args);
    free(opts);
    return rc;
}

int cli_ledger(lg_cli *cli, struct lg_ledger **out)
{
    int err;
    *out = NULL;
    if (!(cli->needs & CLI_NEEDS_LEDGER))
        return lg_error_set(LG_EINTERNAL, "command '%s' does not declare that it needs the ledger", cli->name);
    if (!cli->lg) {
        if ((err = lg_ledger_open(".", &cli->lg)) < 0)
            return err;
        if (cli->needs & CLI_NEEDS_WRITE_LOCK)
            lg_ledger_set_lock_wait(cli->lg, cli->lock_timeout, lock_notify, (void *)cli->name);
    }
    *out = cli->lg;
    return 0;
}

int cli_fail(const char *cmd, int err)
{
    const char *msg = lg_error_msg();
    fprintf(stderr, "ledger %s: %s\n", cmd, *msg ? msg : "failed");
    return lg_exit_code(err < 0 ? err : LG_EINTERNAL);
}

int cli_finish(const char *cmd, int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ledger %s: writing output: %s\n", cmd, strerror(errno));
        return 3;
    }
    return rc;
}

int cli_print_json(cJSON *o, int built)
{
    char *text = o && built ? cJSON_Print(o) : NULL;
    int err = 0;
    if (text)
        printf("%s\n", text);
    else
        err = lg_error_set(LG_ENOMEM, "out of memory");
    cJSON_free(text);
    cJSON_Delete(o);
    return err;
}

int cli_progress_enabled(void) { return isatty(STDERR_FILENO); }

void cli_trace_read_path(const char *cmd, int fast, const char *why)
{
    const char *env = getenv("LEDGER_FAST_READ");
    if (!env || strcmp(env, "trace") != 0)
        return;
    if (fast)
        fprintf(stderr, "ledger %s: read path: index (current)\n", cmd);
    else
        fprintf(stderr, "ledger %s: read path: full (%s)\n", cmd, why ? why : "declined");
}

const char *cli_repo_relative(const char *root, const char *path, char *buf, size_t n)
{
    char real[PATH_MAX], rroot[PATH_MAX];
    size_t lr;
    if (!realpath(path, real))
        return path;
    if (!realpath(root, rroot)) /* the work dir may itself sit below a symlink */
        snprintf(rroot, sizeof rroot, "%s", root);
    lr = strlen(rroot);
    if (strncmp(real, rroot, lr) == 0 && real[lr] == '/') {
        snprintf(buf, n, "%s", real + lr + 1);
        return buf;
    }
    snprintf(buf, n, "%s", real);
    return buf;
}
