/*
 * main.c - the ledger command table (STYLE.md 1, git's git.c): one row per
 * command, one file per command (ledger/cmd_<name>.c). The command's return
 * value is the process exit code: 0 ok, 1 a check failed, 2 usage or bad
 * input, 3 internal or I/O error.
 *
 * The needs column says what main.c sets up for the command, so no command
 * repeats it: CLI_NEEDS_LEDGER, the ledger of the current directory, opened
 * by cli_ledger() and closed here after the command returns;
 * CLI_NEEDS_WRITE_LOCK, the option --lock-timeout SECONDS (default 30)
 * added to the command's option table by cli_parse() and one lock-notify
 * callback ("ledger CMD: waiting for ..."); both live in cli.c, beside the
 * command files that call them, so that the library of commands never
 * calls into this file (main.c -> cmd_*.c -> cli.c, no circle). The ledger is opened when the
 * command asks for it, after it has checked its own arguments, so bad
 * input is refused (exit 2) before the ledger is touched, and a command
 * that does not reach the ledger (--dry-run, 'key generate') runs outside
 * one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger_version.h"

typedef struct {
    const char *name;
    lg_cmd_fn fn;
    unsigned needs; /* CLI_NEEDS_* */
    const char *help;
} cmd_row;

#define LEDGER CLI_NEEDS_LEDGER
#define WRITES (CLI_NEEDS_LEDGER | CLI_NEEDS_WRITE_LOCK)

static const cmd_row commands[] = {
    {"init", cmd_init, LEDGER, "make the current git repository a ledger (creates one if needed)"},
    {"run", cmd_run, WRITES, "execute a study, store its artifacts, commit the run"},
    {"gather", cmd_gather, WRITES, "record the seed groups staged by 'run --shard I/N' as one run"},
    {"status", cmd_status, LEDGER, "seed groups of a sharded study: staged, running, missing"},
    {"submit", cmd_submit, LEDGER, "submit a study to Slurm as a job array of shards plus a gather job"},
    {"record", cmd_record, WRITES, "record files produced elsewhere as a run"},
    {"log", cmd_log, LEDGER, "list runs"},
    {"show", cmd_show, LEDGER, "show one run"},
    {"diff", cmd_diff, LEDGER, "compare two runs: spec keys, digests, per-condition metric deltas"},
    {"check", cmd_check, LEDGER, "evaluate claims against the evidence"},
    {"verify", cmd_verify, LEDGER, "check integrity and all claims (CI gate)"},
    {"replay", cmd_replay, LEDGER, "re-execute a recorded run and compare it bit for bit"},
    {"report", cmd_report, WRITES, "render a claim-checked Markdown report"},
    {"query", cmd_query, LEDGER, "read-only SQL over the index (--csv, --jsonl)"},
    {"table", cmd_table, LEDGER, "one row per cell, pair or seed of a run (--csv, --json)"},
    {"export", cmd_export, WRITES, "export SAEs of a run (SAELens format)"},
    {"import", cmd_import, WRITES, "import SAELens-format SAEs as a run"},
    {"reindex", cmd_reindex, WRITES, "rebuild the SQLite index from the git ledger"},
    {"gc", cmd_gc, WRITES, "remove temp files and unreferenced objects"},
    {"sync", cmd_sync_ledger, WRITES, "share the ledger with a git remote (re-chains local runs after the remote's)"},
    {"push", cmd_push, LEDGER, "copy store objects to a directory remote"},
    {"pull", cmd_pull, LEDGER, "copy store objects from a directory remote"},
    {"key", cmd_key, LEDGER, "manage signing keys"},
};

#undef LEDGER
#undef WRITES

/* Runs one command with its row's needs; closes what main.c opened. */
static int run_command(const cmd_row *row, int argc, char **argv)
{
    lg_cli cli;
    int rc;
    memset(&cli, 0, sizeof cli);
    cli.name = row->name;
    cli.needs = row->needs;
    cli.lock_timeout = CLI_LOCK_TIMEOUT_DEFAULT;
    rc = row->fn(&cli, argc, argv);
    lg_ledger_free(cli.lg);
    return cli_finish(row->name, rc);
}

static void usage(FILE *out)
{
    size_t i;
    fprintf(out, "usage: ledger [--version] [--help] COMMAND [ARGS]\n\n"
                 "Evidence-locked claims ledger for SAE seed-consistency studies.\n\ncommands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'ledger COMMAND --help' (or 'ledger help COMMAND') describes a command.\n"
                 "exit codes: 0 ok, 1 a check failed, 2 usage or bad input, 3 internal or I/O error\n");
}

int main(int argc, char **argv)
{
    size_t i;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 && argc >= 3) {
        /* 'ledger help CMD' is 'ledger CMD --help' */
        static char help_flag[] = "--help";
        char *sub[2];
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                sub[0] = argv[2];
                sub[1] = help_flag;
                return run_command(&commands[i], 2, sub);
            }
        fprintf(stderr, "ledger: unknown command '%s' (see 'ledger --help')\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return cli_finish("help", 0);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ledger %s\n", LEDGER_VERSION);
        return cli_finish("version", 0);
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return run_command(&commands[i], argc - 1, argv + 1);
    fprintf(stderr, "ledger: unknown command '%s' (see 'ledger --help')\n", argv[1]);
    return 2;
}
