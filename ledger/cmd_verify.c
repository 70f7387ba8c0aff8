/*
 * cmd_verify.c - 'ledger verify': integrity and claims: the hash chain, every
 * manifest, in-tree files, store objects and the index. One line per
 * problem on stdout, a summary on stderr; exit 1 if any error.
 * Then every claim of claims/NAME.claims is evaluated; claims that are not ok
 * are problems too (area "claim").
 */
#include <stdio.h>
#include <string.h>

#include "gates/eval.h"
#include "ledger/cli.h"
#include "ledger/evidence.h"
#include "ledger/ledger.h"
#include "ledger/recompute.h"
#include "ledger/report.h"
#include "ledger/sign.h"
#include "ledger/verify.h"

/* Evaluate every default claim file (<repo>/claims/ *.claims) and add each
 * claim that is not ok as a problem; JUnit XML goes to `junit` when given. */
static int verify_claims(lg_ledger *lg, const char *junit, int require_signed, lg_problems *ps, size_t *n_claims)
{
    lg_evidence_opts eo = {require_signed};
    char **paths = NULL;
    size_t n = 0, i, j;
    lg_eval_result **res = NULL;
    int err;
    *n_claims = 0;
    if ((err = lg_evidence_default_claims(lg, &paths, &n)) < 0)
        return err;
    if ((err = lg_evidence_eval_files_opts(lg, paths, n, &eo, &res)) < 0) {
        lg_problems_add(ps, LG_PROBLEM_ERROR, "claim", "claims", "%s", lg_error_msg());
        err = 0;
        goto out;
    }
    for (i = 0; i < n && !err; i++)
        for (j = 0; j < res[i]->nclaims && !err; j++) {
            const lg_claim_result *c = &res[i]->claims[j];
            (*n_claims)++;
            if (!lg_verdict_ok(c->verdict))
                err = lg_problems_add(ps, LG_PROBLEM_ERROR, "claim", c->id, "%s:%d: %s: %s", paths[i], c->line,
                                      lg_verdict_name(c->verdict), c->reason ? c->reason : "does not hold");
        }
    if (!err && junit) {
        char *xml = NULL;
        if ((err = lg_eval_render_junit((const lg_eval_result *const *)res, n, &xml)) == 0)
            err = lg_file_write_atomic(junit, xml, strlen(xml));
        lg_free(xml);
    }
out:
    if (res)
        for (i = 0; i < n; i++)
            lg_eval_result_free(res[i]);
    lg_free(res);
    lg_evidence_paths_free(paths, n);
    return err;
}

int cmd_verify(lg_cli *cli, int argc, char **argv)
{
    lg_verify_opts vo;
    lg_trust_opts trust = {NULL, NULL, NULL};
    int json = 0, no_claims = 0;
    const char *junit = NULL;
    size_t n_claims = 0;
    int recompute = 0;
    const lg_opt opts[] = {
        {"require-artifacts", 0, LG_OPT_FLAG, &vo.require_artifacts, NULL,
         "store objects absent locally are errors (default: warnings)"},
        {"no-objects", 0, LG_OPT_FLAG, &vo.skip_objects, NULL, "do not re-hash store objects"},
        {"no-index", 0, LG_OPT_FLAG, &vo.skip_index, NULL, "do not cross-check the index"},
        {"no-claims", 0, LG_OPT_FLAG, &no_claims, NULL, "integrity only: do not evaluate claims/*.claims"},
        {"base", 0, LG_OPT_STRING, &vo.base_ref, "REF",
         "the ledger must be an append-only extension of REF (e.g. origin/ledger): every run of REF unchanged at "
         "its seq, REF's commit a first-parent ancestor"},
        {"at-least", 0, LG_OPT_STRING, &vo.at_least, "SEQ:ID",
         "the ledger must hold run ID (>= 12 hex digits) at seq SEQ: catches dropped newest runs"},
        {"require-signed", 0, LG_OPT_FLAG, &vo.require_signed, NULL,
         "every run must be signed by a key of the trust root, and claims accept only such runs; the trust root "
         "is --trusted-keys, --keys-ref, $LEDGER_TRUSTED_KEYS or, with --base R/ledger, R/HEAD's "
         "ledger-trusted-keys; never the work tree's file"},
        {"trusted-keys", 0, LG_OPT_STRING, &trust.keys_file, "FILE", "trusted public keys for --require-signed"},
        {"keys-ref", 0, LG_OPT_STRING, &trust.keys_ref, "REV",
         "take ledger-trusted-keys from REV's git tree (e.g. origin/main, a protected branch)"},
        {"junit", 0, LG_OPT_STRING, &junit, "FILE", "write the claim verdicts as JUnit XML to FILE (for CI)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {ok, stats, problems} as JSON"},
        {"recompute", 0, LG_OPT_FLAG, &recompute, NULL,
         "derive pair metrics from the stored decoder weights and cell metrics from the stored weights and "
         "the data again, and compare them with the recorded results (ledger/SECURITY.md, \"Replay and recompute\")"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"verify", "ledger verify [options]",
                              "Verify the ledger: walk " LG_LEDGER_REF " from its root, check the hash chain (ids, "
                              "prev links, consecutive seq), every manifest, every in-tree file and store object "
                              "(SHA-256), that the index agrees with the ledger and that every signature.json present "
                              "verifies. With --base REF, also that the ledger extends REF append-only; without "
                              "it a rewrite by someone with write access cannot be detected (ledger/SECURITY.md). "
                              "Then evaluate every claim of "
                              "claims/*.claims (a claim that is not PASS, or XFAIL when expected to fail, is a "
                              "problem). Exit 0 only if all holds.",
                              opts, 0, 0, 0};
    lg_ledger *lg = NULL;
    lg_problems ps = LG_PROBLEMS_INIT;
    lg_verify_stats st;
    lg_buf text = LG_BUF_INIT;
    cJSON *root = NULL;
    char **args;
    int nargs, rc, err;
    size_t failed;

    memset(&vo, 0, sizeof vo);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    trust.base_ref = vo.base_ref;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    lg_ledger_set_trust(lg, &trust);
    if ((err = lg_verify_integrity(lg, &vo, &ps, &st)) < 0)
        goto out;
    if (!no_claims && (err = verify_claims(lg, junit, vo.require_signed, &ps, &n_claims)) < 0)
        goto out;
    if (!no_claims && (err = lg_report_verify_all(lg, &ps)) < 0) /* recorded reports still match (ledger/report.h) */
        goto out;
    if (recompute) {
        lg_recompute_opts ro = {vo.require_artifacts};
        lg_recompute_stats rs;
        if ((err = lg_recompute_all(lg, &ro, &ps, &rs)) < 0)
            goto out;
        if (!json)
            fprintf(stderr, "ledger verify: recomputed %zu runs: %zu cells, %zu pairs, %zu values compared, %zu not recomputed\n",
                    rs.runs, rs.cells, rs.pairs, rs.values, rs.not_recomputed);
    }
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
            !cJSON_AddNumberToObject(stats, "claims", (double)n_claims) ||
            (st.base_checked && (!cJSON_AddNumberToObject(stats, "base_runs", (double)st.base_runs) ||
                                 !cJSON_AddNumberToObject(stats, "new_runs", (double)st.new_runs))) ||
            !cJSON_AddBoolToObject(root, "base_checked", st.base_checked) ||
            (!st.base_checked &&
             !cJSON_AddStringToObject(root, "note", "without --base REF, a rewrite of the ledger branch by someone "
                                                    "with write access cannot be detected")) ||
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
        if (st.base_checked)
            fprintf(stderr, "ledger verify: extends --base %s: %zu base run(s), %zu new\n", vo.base_ref, st.base_runs,
                    st.new_runs);
        else
            fprintf(stderr, "ledger verify: note: without --base REF, a rewrite of the ledger branch by someone with "
                            "write access cannot be detected\n");
        fprintf(stderr, "ledger verify: %zu runs, %zu files, %zu objects checked (%zu missing), %zu claims: %s\n",
                st.runs, st.files_checked, st.objects_checked, st.objects_missing, n_claims, failed ? "FAILED" : "ok");
    }
    err = failed ? LG_ECHECK : 0;
out:
    cJSON_Delete(root);
    lg_buf_release(&text);
    lg_problems_release(&ps);
    if (err == LG_ECHECK)
        return 1;
    return err < 0 ? cli_fail("verify", err) : 0;
}
