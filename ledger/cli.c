/*
 * cli.c - error printing and output checks shared by the command files.
 */
#include "ledger/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
