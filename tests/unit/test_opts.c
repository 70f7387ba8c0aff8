/*
 * test_opts.c - the CLI's option parser (ledger/opts.c): the return value is
 * the exit code (LG_OPTS_RUN to go on), repeatable options keep every value
 * in order, positional arguments are compacted, stop_at_arg ends the options
 * at a subcommand's name. What the parser prints (usage errors, --help) goes
 * to /dev/null during each parse; the checks' own output is kept.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ledger/opts.h"
#include "tests/unit/check.h"

static const char *str_v;
static int flag_v, int_v;
static lg_opt_list list_v;

static const lg_opt table[] = {
    {"name", 'n', LG_OPT_STRING, &str_v, "NAME", "a string"},
    {"flag", 0, LG_OPT_FLAG, &flag_v, NULL, "a flag"},
    {"count", 0, LG_OPT_INT, &int_v, "N", "an integer"},
    {"cell", 'c', LG_OPT_LIST, &list_v, "CELL", "repeatable"},
    LG_OPT_TABLE_END};

static void reset(void)
{
    str_v = NULL;
    flag_v = int_v = 0;
    lg_opt_list_release(&list_v);
}

/* Parses a NULL-terminated argument list (argv[0] = "t") with bounds min..max. */
static int parse(int min, int max, int stop, int *nargs, char ***args, char **argv)
{
    lg_cmd_spec spec = {"t", "ledger t [options] ARGS", "test command", table, min, max, stop};
    int argc = 0, rc, out, err, null;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    out = dup(1);
    err = dup(2);
    null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    rc = lg_opts_parse(&spec, argc, argv, nargs, args);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    close(null);
    return rc;
}

static void test_list_keeps_every_value(void)
{
    char *argv[] = {"t", "--cell", "a", "pos1", "-c", "b", "--cell=c", "--name", "x", "pos2", NULL};
    int nargs = -1;
    char **args = NULL;
    reset();
    CHECK(parse(0, -1, 0, &nargs, &args, argv) == LG_OPTS_RUN);
    CHECK(list_v.n == 3);
    CHECK(list_v.n == 3 && strcmp(list_v.v[0], "a") == 0 && strcmp(list_v.v[1], "b") == 0 &&
          strcmp(list_v.v[2], "c") == 0);
    CHECK(str_v && strcmp(str_v, "x") == 0);
    CHECK(nargs == 2 && strcmp(args[0], "pos1") == 0 && strcmp(args[1], "pos2") == 0);
    reset();
    CHECK(list_v.n == 0 && list_v.v == NULL);
}

static void test_exit_codes(void)
{
    char *help[] = {"t", "--cell", "a", "--help", NULL};
    char *unknown[] = {"t", "--nosuch", NULL};
    char *noval[] = {"t", "--cell", NULL};
    char *badint[] = {"t", "--count", "x", NULL};
    char *flagval[] = {"t", "--flag=1", NULL};
    char *toomany[] = {"t", "a", "b", NULL};
    char *ok[] = {"t", "--flag", "--count=7", "a", NULL};
    int nargs;
    char **args;
    reset();
    CHECK(parse(0, -1, 0, &nargs, &args, help) == 0);      /* --help printed: exit 0 */
    CHECK(parse(0, -1, 0, &nargs, &args, unknown) == 2);   /* usage errors: exit 2 */
    CHECK(parse(0, -1, 0, &nargs, &args, noval) == 2);
    CHECK(parse(0, -1, 0, &nargs, &args, badint) == 2);
    CHECK(parse(0, -1, 0, &nargs, &args, flagval) == 2);
    CHECK(parse(0, 1, 0, &nargs, &args, toomany) == 2);
    CHECK(parse(1, 1, 0, &nargs, &args, ok) == LG_OPTS_RUN);
    CHECK(flag_v == 1 && int_v == 7 && nargs == 1 && strcmp(args[0], "a") == 0);
    reset();
}

static void test_stop_at_arg(void)
{
    /* "ledger key --flag sub --name x y": options end at "sub" */
    char *argv[] = {"t", "--flag", "sub", "--name", "x", "--", "y", NULL};
    int nargs;
    char **args;
    reset();
    CHECK(parse(1, -1, 1, &nargs, &args, argv) == LG_OPTS_RUN);
    CHECK(flag_v == 1 && str_v == NULL);
    CHECK(nargs == 5);
    CHECK(nargs == 5 && strcmp(args[0], "sub") == 0 && strcmp(args[1], "--name") == 0 && strcmp(args[2], "x") == 0 &&
          strcmp(args[3], "--") == 0 && strcmp(args[4], "y") == 0);
    reset();
}

CHECK_MAIN(T(test_list_keeps_every_value), T(test_exit_codes), T(test_stop_at_arg))
