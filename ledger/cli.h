/*
 * cli.h - what the command files share: the command signatures, error
 * printing and the stdout check (STYLE.md 1-2). Only the CLI prints.
 */
#ifndef LG_CLI_H
#define LG_CLI_H

#include "base/base.h"
#include "ledger/opts.h"
#include "engine/backend.h"
#include "engine/run.h"
#include "engine/study.h"

/* Each command: argv[0] is the command name; returns the process exit code. */
typedef int (*lg_cmd_fn)(int argc, char **argv);

int cmd_init(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_sync_ledger(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_gather(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_submit(int argc, char **argv);

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
struct lg_ledger;
int cli_check_study_name(struct lg_ledger *lg, const char *study, const char *study_file);
/* Records the result of executing study s on backend be as a run of kind
 * "run" (cli_study.c): its output files, results, spec, digests and
 * extra.spec_canonical_sha256. `ledger run` and `ledger gather` both call it,
 * so a gathered run's manifest has the same fields as a one-process run's.
 * sign_key_path may be NULL. run_id gets the 64-hex id. */
int cli_record_study_run(struct lg_ledger *lg, const lg_study *s, const lg_backend *be, const lg_run_result *res,
                         const char *sign_key_path, char run_id[65]);
/* True when stderr is a terminal (progress is shown only then). */
int cli_progress_enabled(void);
/* With LEDGER_FAST_READ=trace, prints to stderr which way a read-only command
 * reached the index: "ledger CMD: read path: index (current)" or "... full
 * (WHY)" (ledger/index_current.h). Tests use it to see the fast path taken. */
void cli_trace_read_path(const char *cmd, int fast, const char *why);

#endif
