/*
 * opts.h - table-driven option parsing for the commands (STYLE.md 1).
 *
 * Each command declares a table of lg_opt and a usage line; `--help` is
 * generated from the table. Positional arguments are compacted to the front
 * of argv in order.
 */
#ifndef LG_OPTS_H
#define LG_OPTS_H

#include <stdio.h>

typedef enum { LG_OPT_FLAG, LG_OPT_STRING, LG_OPT_INT, LG_OPT_DOUBLE, LG_OPT_END } lg_opt_kind;

typedef struct {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0 for none */
    lg_opt_kind kind;
    void *value;         /* int* (FLAG, INT), const char** (STRING), double* (DOUBLE) */
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
} lg_cmd_spec;

/* Parses argv[1..] (argv[0] is the command name). On success returns 0 and sets
 * *nargs / *args to the positional arguments. Returns 1 when --help was printed
 * (the command should return 0), or 2 after printing a usage error to stderr. */
int lg_opts_parse(const lg_cmd_spec *spec, int argc, char **argv, int *nargs, char ***args);
void lg_opts_help(const lg_cmd_spec *spec, FILE *out);

#endif
