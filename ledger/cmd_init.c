/*
 * cmd_init.c - 'ledger init': make the current git repository a ledger
 * (creating the repository when there is none). Idempotent: in a clone that
 * already has the ledger branch it sets up .ledger/ and rebuilds the index.
 */
#include <stdio.h>
#include <unistd.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"

static void print_migrated(void *ctx, long seq, const char *old_id, const char *new_id)
{
    (void)ctx;
    printf("run %ld: %.12s -> %.12s\n", seq, old_id, new_id);
}

int cmd_init(lg_cli *cli, int argc, char **argv)
{
    double small_max = -1;
    int migrate = 0, json = 0;
    const lg_opt opts[] = {
        {"migrate", 0, LG_OPT_FLAG, &migrate, NULL,
         "rewrite a format 1 ledger in format 2: every run id changes (old -> new printed), format 1 signatures "
         "are dropped (re-sign the runs), the old branch is kept at refs/ledger-format1/ledger"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {root, ledger_dir, branch, created_repo, created_branch, already}"},
        {"small-output-max", 0, LG_OPT_DOUBLE, &small_max, "BYTES",
         "outputs up to this size are also kept in the git tree (default 1048576)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"init", "ledger init [options]",
                              "Make the git repository containing the current directory a ledger: branch "
                              LG_LEDGER_REF ", .ledger/ (store, index, config; git-ignored through "
                              ".git/info/exclude). Creates a repository here when there is none. The work tree, "
                              "index and HEAD are not touched.",
                              opts, 0, 0, 0};
    lg_init_opts io = {0, 0};
    lg_init_result res;
    lg_ledger *lg = NULL;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (small_max >= 0) {
        if (small_max != (double)(uint64_t)small_max) {
            fprintf(stderr, "ledger init: --small-output-max: not a byte count\n");
            return 2;
        }
        io.small_output_max_set = 1;
        io.small_output_max = (uint64_t)small_max;
    } else if (small_max != -1) {
        fprintf(stderr, "ledger init: --small-output-max: not a byte count\n");
        return 2;
    }
    if (migrate) {
        lg_migrate_result mr;
        if ((err = lg_ledger_migrate(".", print_migrated, NULL, &mr)) < 0)
            return cli_fail("init", err);
        if (mr.already)
            printf("the ledger is format %d already: nothing to migrate\n", LG_LEDGER_FORMAT);
        else
            printf("migrated %zu run(s) to format %d; %zu format-1 signature(s) dropped (they signed the old ids: "
                   "sign the runs again); the old branch is refs/ledger-format1/ledger\n",
                   mr.runs, LG_LEDGER_FORMAT, mr.signatures_dropped);
        return cli_finish("init", 0);
    }
    if ((err = lg_ledger_init(".", &io, &res)) < 0)
        return cli_fail("init", err);
    if ((err = cli_ledger(cli, &lg)) < 0)
        return cli_fail("init", err);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (!o || !cJSON_AddStringToObject(o, "root", lg_ledger_root(lg)) ||
            !cJSON_AddStringToObject(o, "ledger_dir", lg_ledger_dir(lg)) ||
            !cJSON_AddStringToObject(o, "branch", LG_LEDGER_REF) ||
            !cJSON_AddBoolToObject(o, "created_repo", res.created_repo) ||
            !cJSON_AddBoolToObject(o, "created_branch", res.created_branch) ||
            !cJSON_AddBoolToObject(o, "already", res.already) || !(text = cJSON_Print(o))) {
            cJSON_Delete(o);
            return cli_fail("init", lg_error_set(LG_ENOMEM, "out of memory"));
        }
        printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
    }
    else if (res.already)
        printf("ledger already initialised in %s\n", lg_ledger_root(lg));
    else
        printf("initialised ledger in %s (%sbranch %s%s, %s/)\n", lg_ledger_root(lg),
               res.created_repo ? "new git repository, " : "", LG_LEDGER_REF,
               res.created_branch ? "" : " (existing)", LG_LEDGER_DIR);
    return 0;
}
