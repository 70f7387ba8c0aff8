/*
 * main.c - the ledger command table (STYLE.md 1): one row per command, one
 * file per command (ledger/cmd_<name>.c). The command's return value is the
 * process exit code: 0 ok, 1 a check failed, 2 usage or bad input, 3 internal
 * or I/O error.
 */
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger_version.h"

typedef struct {
    const char *name;
    lg_cmd_fn fn;
    const char *help;
} cmd_row;

static const cmd_row commands[] = {
    {"init", cmd_init, "make the current git repository a ledger (creates one if needed)"},
    {"run", cmd_run, "execute a study, store its artifacts, commit the run"},
    {"gather", cmd_gather, "record the seed groups staged by 'run --shard I/N' as one run"},
    {"status", cmd_status, "seed groups of a sharded study: staged, running, missing"},
    {"submit", cmd_submit, "submit a study to Slurm as a job array of shards plus a gather job"},
    {"record", cmd_record, "record files produced elsewhere as a run"},
    {"log", cmd_log, "list runs"},
    {"show", cmd_show, "show one run"},
    {"diff", cmd_diff, "compare two runs: spec keys, digests, per-condition metric deltas"},
    {"check", cmd_check, "evaluate claims against the evidence"},
    {"verify", cmd_verify, "check integrity and all claims (CI gate)"},
    {"replay", cmd_replay, "re-execute a recorded run and compare it bit for bit"},
    {"report", cmd_report, "render a claim-checked Markdown report"},
    {"query", cmd_query, "read-only SQL over the index (--csv, --jsonl)"},
    {"table", cmd_table, "one row per cell, pair or seed of a run (--csv, --json)"},
    {"export", cmd_export, "export SAEs of a run (SAELens format)"},
    {"import", cmd_import, "import SAELens-format SAEs as a run"},
    {"reindex", cmd_reindex, "rebuild the SQLite index from the git ledger"},
    {"gc", cmd_gc, "remove temp files and unreferenced objects"},
    {"sync", cmd_sync_ledger, "share the ledger with a git remote (re-chains local runs after the remote's)"},
    {"push", cmd_push, "copy store objects to a directory remote"},
    {"pull", cmd_pull, "copy store objects from a directory remote"},
    {"key", cmd_key, "manage signing keys"},
};

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
                return cli_finish(commands[i].name, commands[i].fn(2, sub));
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
            return cli_finish(commands[i].name, commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "ledger: unknown command '%s' (see 'ledger --help')\n", argv[1]);
    return 2;
}
