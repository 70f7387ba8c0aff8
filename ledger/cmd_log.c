/*
 * cmd_log.c - 'ledger log': one line per run, oldest first, read from the
 * ledger branch itself (not the index): seq, id12, kind, study, status,
 * created.
 */
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"

typedef struct {
    int json, n;
    const char *study, *kind;
} log_ctx;

static const char *or_dash(const char *s) { return s ? s : "-"; }

static int print_run(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    log_ctx *c = vctx;
    if (c->study && strcmp(c->study, lg_json_str(m, "study") ? lg_json_str(m, "study") : "") != 0)
        return 0;
    if (c->kind && strcmp(c->kind, lg_json_str(m, "kind") ? lg_json_str(m, "kind") : "") != 0)
        return 0;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        if (!o || !cJSON_AddNumberToObject(o, "seq", (double)ri->seq) || !cJSON_AddStringToObject(o, "run_id", ri->run_id) ||
            !cJSON_AddStringToObject(o, "kind", lg_json_str(m, "kind")) ||
            !cJSON_AddStringToObject(o, "study", lg_json_str(m, "study")) ||
            !cJSON_AddStringToObject(o, "status", lg_json_str(m, "status")) ||
            !cJSON_AddStringToObject(o, "created", lg_json_str(m, "created")) || !(s = cJSON_PrintUnformatted(o))) {
            cJSON_Delete(o);
            return lg_error_set(LG_ENOMEM, "out of memory");
        }
        printf("%s%s", c->n ? ",\n" : "\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("%ld\t%.12s\t%s\t%s\t%s\t%s\n", ri->seq, ri->run_id, or_dash(lg_json_str(m, "kind")),
               or_dash(lg_json_str(m, "study")), or_dash(lg_json_str(m, "status")), or_dash(lg_json_str(m, "created")));
    }
    c->n++;
    return 0;
}

int cmd_log(lg_cli *cli, int argc, char **argv)
{
    log_ctx c = {0, 0, NULL, NULL};
    const lg_opt opts[] = {
        {"study", 's', LG_OPT_STRING, &c.study, "NAME", "only runs of this study"},
        {"kind", 'k', LG_OPT_STRING, &c.kind, "KIND", "only runs of this kind (run, record, report, import, ...)"},
        {"json", 0, LG_OPT_FLAG, &c.json, NULL, "a JSON array of {seq, run_id, kind, study, status, created}"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"log", "ledger log [--study NAME] [--kind KIND] [--json]",
                              "List the runs of the ledger, oldest first: seq, id (12 digits), kind, study, status, "
                              "created (UTC), tab-separated.",
                              opts, 0, 0, 0};
    lg_ledger *lg = NULL;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if ((err = cli_ledger(cli, &lg)) < 0)
        return cli_fail("log", err);
    if (c.json)
        printf("[");
    err = lg_ledger_foreach_run(lg, print_run, &c);
    if (c.json)
        printf(c.n ? "\n]\n" : "]\n");
    return err < 0 ? cli_fail("log", err) : 0;
}
