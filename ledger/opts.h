/*
 * opts.h - table-driven option parsing for the commands (STYLE.md 1).
 *
 * Each command declares a table of lg_opt and a usage line; `--help` is
 * generated from the table. Positional arguments are compacted to the front
 * of argv in order. The parser returns the exit code itself (LG_OPTS_RUN
 * when the command should go on), so a command reads
 *
 *     if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
 *         return rc;
 *
 * (cli_parse, main.c: this parser plus the options main.c adds to the
 * table for the command's needs, such as --lock-timeout).
 */
#ifndef LG_OPTS_H
#define LG_OPTS_H

#include <stdio.h>

typedef enum { LG_OPT_FLAG, LG_OPT_STRING, LG_OPT_INT, LG_OPT_DOUBLE, LG_OPT_LIST, LG_OPT_END } lg_opt_kind;

/* A repeatable string option (LG_OPT_LIST): every occurrence is appended in
 * order. v points into argv (not copied); the array itself is owned by the
 * list: release it with lg_opt_list_release. */
typedef struct {
    const char **v; /* [n] */
    int n;
} lg_opt_list;
#define LG_OPT_LIST_INIT {NULL, 0}
void lg_opt_list_release(lg_opt_list *l);

typedef struct {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0 for none */
    lg_opt_kind kind;
    void *value;         /* int* (FLAG, INT), const char** (STRING), double* (DOUBLE), lg_opt_list* (LIST) */
    const char *argname; /* shown in help for options taking a value */
    const char *help;
} lg_opt;

#define LG_OPT_TABLE_END {NULL, 0, LG_OPT_END, NULL, NULL, NULL}

typedef struct {
    const char *name;        /* "run" */
    const char *usage;       /* "ledger run [options] STUDY.json" */
    const char *summary;     /* one paragraph for --help */
    const lg_opt *opts;
    int min_args, max_args;  /* positional count bounds; max -1 = unbounded */
    int stop_at_arg;         /* 1: options end at the first positional argument (a
                                subcommand's name); the rest are all positional */
} lg_cmd_spec;

/* What lg_opts_parse returns when the command should run. */
#define LG_OPTS_RUN (-1)

/* Parses argv[1..] (argv[0] is the command name). Returns LG_OPTS_RUN and
 * sets *nargs / *args to the positional arguments, or returns the exit code:
 * 0 after --help was printed, 2 after a usage error was printed to stderr,
 * 3 when memory ran out (a LIST option). */
int lg_opts_parse(const lg_cmd_spec *spec, int argc, char **argv, int *nargs, char ***args);
void lg_opts_help(const lg_cmd_spec *spec, FILE *out);

#endif
