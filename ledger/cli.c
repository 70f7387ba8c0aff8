/*
 * cli.c - error printing and output checks shared by the command files.
 */
#include "ledger/cli.h"

#include <errno.h>
#include <stdio.h>
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

int cli_progress_enabled(void) { return isatty(STDERR_FILENO); }
