/*
 * cmd_verify.c - 'ledger verify' (integrity part): the hash chain, every
 * manifest, in-tree files, store objects and the index. One line per
 * problem on stdout, a summary on stderr; exit 1 if any error.
 * Claim checks will append to the same problem list (ledger/verify.h).
 */
#include <stdio.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/verify.h"

int cmd_verify(int argc, char **argv)
{
    lg_verify_opts vo = {0, 0, 0};
    int json = 0;
    const lg_opt opts[] = {
        {"require-artifacts", 0, LG_OPT_FLAG, &vo.require_artifacts, NULL,
         "store objects absent locally are errors (default: warnings)"},
        {"no-objects", 0, LG_OPT_FLAG, &vo.skip_objects, NULL, "do not re-hash store objects"},
        {"no-index", 0, LG_OPT_FLAG, &vo.skip_index, NULL, "do not cross-check the index"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {ok, stats, problems} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"verify", "ledger verify [options]",
                              "Verify the ledger: walk " LG_LEDGER_REF " from its root, check the hash chain (ids, "
                              "prev links, consecutive seq), every manifest, every in-tree file and store object "
                              "(SHA-256), and that the index agrees with the ledger. Exit 0 only if all holds.",
                              opts, 0, 0};
    lg_ledger *lg = NULL;
    lg_problems ps = LG_PROBLEMS_INIT;
    lg_verify_stats st;
    lg_buf text = LG_BUF_INIT;
    cJSON *root = NULL;
    char **args;
    int nargs, rc, err;
    size_t failed;

    if ((rc = lg_opts_parse(&spec, argc, argv, &nargs, &args)) != 0)
        return rc == 1 ? 0 : rc;
    if ((err = lg_ledger_open(".", &lg)) < 0 || (err = lg_verify_integrity(lg, &vo, &ps, &st)) < 0)
        goto out;
    failed = lg_problems_failed(&ps);
    if (json) {
        cJSON *stats;
        char *s = NULL;
        if (!(root = cJSON_CreateObject()) || !cJSON_AddBoolToObject(root, "ok", failed == 0) ||
            !(stats = cJSON_AddObjectToObject(root, "stats")) ||
            !cJSON_AddNumberToObject(stats, "commits", (double)st.commits) ||
            !cJSON_AddNumberToObject(stats, "runs", (double)st.runs) ||
            !cJSON_AddNumberToObject(stats, "files_checked", (double)st.files_checked) ||
            !cJSON_AddNumberToObject(stats, "objects_checked", (double)st.objects_checked) ||
            !cJSON_AddNumberToObject(stats, "objects_missing", (double)st.objects_missing) ||
            !cJSON_AddItemToObject(root, "problems", lg_problems_to_json(&ps)) || !(s = cJSON_Print(root))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        if ((err = lg_problems_format(&ps, &text)) < 0)
            goto out;
        if (text.len)
            fwrite(text.ptr, 1, text.len, stdout);
        fprintf(stderr, "ledger verify: %zu runs, %zu files, %zu objects checked (%zu missing): %s\n", st.runs,
                st.files_checked, st.objects_checked, st.objects_missing, failed ? "FAILED" : "ok");
    }
    err = failed ? LG_ECHECK : 0;
out:
    cJSON_Delete(root);
    lg_buf_release(&text);
    lg_problems_release(&ps);
    lg_ledger_free(lg);
    if (err == LG_ECHECK)
        return 1;
    return err < 0 ? cli_fail("verify", err) : 0;
}
