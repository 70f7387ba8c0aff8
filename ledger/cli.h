/*
 * cli.h - what the command files share: the command signatures, error
 * printing and the stdout check (STYLE.md 1-2). Only the CLI prints.
 */
#ifndef LG_CLI_H
#define LG_CLI_H

#include <cjson/cJSON.h>

#include "base/base.h"
#include "ledger/opts.h"
#include "engine/backend.h"
#include "engine/run.h"
#include "engine/study.h"

struct lg_ledger;

/* The needs column of main.c's command table: what main.c sets up for a
 * command (git.c's RUN_SETUP and friends). */
#define CLI_NEEDS_LEDGER 0x1     /* the command works on the ledger of the current
                                    directory: cli_ledger() opens it, main.c closes it */
#define CLI_NEEDS_WRITE_LOCK 0x2 /* it writes (takes the writer lock): main.c adds
                                    --lock-timeout SECONDS (default 30) to its options and
                                    reports a wait for the lock once, "ledger CMD: ..." */

#define CLI_LOCK_TIMEOUT_DEFAULT 30 /* seconds: --lock-timeout when not given */

/* One command invocation, made by main.c from the command's table row. */
typedef struct lg_cli {
    const char *name;     /* the command's name, for messages */
    unsigned needs;       /* CLI_NEEDS_* */
    int lock_timeout;     /* --lock-timeout (CLI_NEEDS_WRITE_LOCK), seconds */
    struct lg_ledger *lg; /* set by cli_ledger; owned and closed by main.c */
} lg_cli;

/* Each command: argv[0] is the command name; returns the process exit code. */
typedef int (*lg_cmd_fn)(lg_cli *cli, int argc, char **argv);

int cmd_init(lg_cli *cli, int argc, char **argv);
int cmd_run(lg_cli *cli, int argc, char **argv);
int cmd_record(lg_cli *cli, int argc, char **argv);
int cmd_log(lg_cli *cli, int argc, char **argv);
int cmd_show(lg_cli *cli, int argc, char **argv);
int cmd_diff(lg_cli *cli, int argc, char **argv);
int cmd_table(lg_cli *cli, int argc, char **argv);
int cmd_check(lg_cli *cli, int argc, char **argv);
int cmd_verify(lg_cli *cli, int argc, char **argv);
int cmd_replay(lg_cli *cli, int argc, char **argv);
int cmd_report(lg_cli *cli, int argc, char **argv);
int cmd_query(lg_cli *cli, int argc, char **argv);
int cmd_export(lg_cli *cli, int argc, char **argv);
int cmd_import(lg_cli *cli, int argc, char **argv);
int cmd_reindex(lg_cli *cli, int argc, char **argv);
int cmd_gc(lg_cli *cli, int argc, char **argv);
int cmd_key(lg_cli *cli, int argc, char **argv);
int cmd_push(lg_cli *cli, int argc, char **argv);
int cmd_sync_ledger(lg_cli *cli, int argc, char **argv);
int cmd_pull(lg_cli *cli, int argc, char **argv);
int cmd_gather(lg_cli *cli, int argc, char **argv);
int cmd_status(lg_cli *cli, int argc, char **argv);
int cmd_submit(lg_cli *cli, int argc, char **argv);

/* The command's option parser: lg_opts_parse over the command's
 * table plus the options its needs add (--lock-timeout). Returns
 * LG_OPTS_RUN to go on, or the exit code (0 after --help, 2 usage). */
int cli_parse(lg_cli *cli, const lg_cmd_spec *spec, int argc, char **argv, int *nargs, char ***args);
/* The ledger of the current directory, opened on first use with the lock
 * wait the command's needs ask for (--lock-timeout and the one lock-notify,
 * "ledger CMD: waiting for ..."). Commands call it after checking their own input, so bad
 * input is refused before the ledger is touched. *out is borrowed: main.c
 * closes it after the command returns. LG_EINTERNAL when the command's row
 * does not declare CLI_NEEDS_LEDGER. */
int cli_ledger(lg_cli *cli, struct lg_ledger **out);

/* Print "ledger CMD: <last error>" to stderr and return the exit code for err. */
int cli_fail(const char *cmd, int err);
/* Flush stdout; on failure (full disk, closed pipe) print an error and return 3. */
int cli_finish(const char *cmd, int rc);
/* `path` as recorded in a manifest's study_path: relative to the repository
 * root `root` when the file is inside it, else absolute (evidence.c resolves
 * it against the root, so a path relative to the current directory would be
 * wrong from a subdirectory). Falls back to `path` when it cannot be
 * resolved. Returns buf or path. */
const char *cli_repo_relative(const char *root, const char *path, char *buf, size_t n);
/* One study, one name (cli_study.c): LG_EINPUT, naming both files, when an
 * earlier run of `study` was recorded from another file that still exists
 * and still declares this name. study_file: the file about to be recorded
 * (as given on the command line); NULL skips the check. */
int cli_check_study_name(struct lg_ledger *lg, const char *study, const char *study_file);
/* Records the result of executing study s on backend be as a run of kind
 * "run" (cli_study.c): its output files, results, spec, digests and
 * extra.spec_canonical_sha256. `ledger run` and `ledger gather` both call it,
 * so a gathered run's manifest has the same fields as a one-process run's.
 * sign_key_path may be NULL. run_id gets the 64-hex id. */
int cli_record_study_run(struct lg_ledger *lg, const lg_study *s, const lg_backend *be, const lg_run_result *res,
                         const char *sign_key_path, char run_id[65]);
/* --json output: prints o formatted, with a newline, when built is true
 * (every field was added), then deletes o. Returns 0, or LG_ENOMEM with
 * the message set when o is NULL, incomplete or cannot be printed. */
int cli_print_json(cJSON *o, int built);
/* True when stderr is a terminal (progress is shown only then). */
int cli_progress_enabled(void);
/* With LEDGER_FAST_READ=trace, prints to stderr which way a read-only command
 * reached the index: "ledger CMD: read path: index (current)" or "... full
 * (WHY)" (ledger/index_current.h). Tests use it to see the fast path taken. */
void cli_trace_read_path(const char *cmd, int fast, const char *why);

#endif
