/*
 * cmd_gather.c - 'ledger gather STUDY.json': record the seed groups that
 * 'ledger run --shard I/N' staged as one run, the same run (artifact digest
 * for artifact digest, on the same backend) that one 'ledger run' would
 * record. Checks first that every group of the plan is staged with intact
 * files; if any is missing it names them, exits 1 and records nothing
 * (shard.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/study.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/shard.h"
#include "ledger/sign.h"

int cmd_gather(lg_cli *cli, int argc, char **argv)
{
    const char *backend_name = "auto", *sign = getenv("LEDGER_SIGN_KEY"), *stage_dir = NULL;
    int json = 0, quiet = 0;
    const lg_opt opts[] = {
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "the backend the shards ran on: cpu, cuda or auto"},
        {"stage-dir", 0, LG_OPT_STRING, &stage_dir, "DIR", "staging root the shards used (default .ledger/shards)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the result (or the missing groups) as JSON"},
        {"quiet", 'q', LG_OPT_FLAG, &quiet, NULL, "no progress on stderr"},
        {"sign", 0, LG_OPT_STRING, &sign, "KEY", "sign the run with this key (as 'ledger run --sign')"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"gather", "ledger gather [options] STUDY.json",
                              "Records the seed groups staged by 'ledger run --shard I/N STUDY.json' as one run.\n"
                              "Every group of the plan (same spec, data, engine and backend) must be staged: each\n"
                              "staged weight file is hashed again and read back, the cells are evaluated and the\n"
                              "seeds compared here, so the run equals a single-process 'ledger run' of the study.\n"
                              "Missing groups are named and the command exits 1 with the ledger unchanged.",
                              opts, 1, 1, 0};
    int nargs, rc, err;
    char **args;
    lg_study *study = NULL;
    lg_ledger *lg = NULL;
    const lg_backend *be = NULL;
    lg_buf key_path = LG_BUF_INIT;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    if ((err = lg_study_load(args[0], &study)) < 0)
        goto out;
    if (sign && *sign && (err = lg_key_resolve(sign, &key_path)) < 0)
        goto out;
    if ((err = lg_backend_get(backend_name, &be)) < 0)
        goto out;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    rc = shard_cmd_gather(lg, study, be, stage_dir, json, quiet, key_path.len ? key_path.ptr : NULL);
out:
    if (err < 0)
        rc = cli_fail("gather", err);
    lg_buf_release(&key_path);
    lg_study_free(study);
    return rc;
}
