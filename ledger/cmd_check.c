/*
 * cmd_check.c - 'ledger check [CLAIMS...]': evaluate claim files against the
 * evidence in the ledger and print a verdict per claim with the numbers that
 * decided it. Exit 0 when every claim is ok (PASS, or XFAIL for a claim
 * documented as expected to fail), 1 otherwise, 2 for a claim file that does
 * not parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gates/eval.h"
#include "ledger/cli.h"
#include "ledger/evidence.h"

int cmd_check(lg_cli *cli, int argc, char **argv)
{
    int json = 0, quiet = 0;
    lg_evidence_opts eo = {0};
    lg_trust_opts trust = {0};
    const char *junit = NULL;
    const lg_opt opts[] = {
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the results as JSON"},
        {"junit", 0, LG_OPT_STRING, &junit, "FILE", "also write JUnit XML to FILE (for CI)"},
        {"quiet", 'q', LG_OPT_FLAG, &quiet, NULL, "print only claims that are not ok"},
        {"require-signed", 0, LG_OPT_FLAG, &eo.require_signed, NULL,
         "accept only runs signed by a trusted key as evidence (else MISSING); the keys come from "
         "--trusted-keys, --keys-ref or $LEDGER_TRUSTED_KEYS, never the work tree's ledger-trusted-keys"},
        {"trusted-keys", 0, LG_OPT_STRING, &trust.keys_file, "FILE", "trusted public keys for --require-signed"},
        {"keys-ref", 0, LG_OPT_STRING, &trust.keys_ref, "REV",
         "take ledger-trusted-keys from REV's git tree (e.g. origin/main, a protected branch)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"check", "ledger check [options] [CLAIMS...]",
                              "Evaluates claims (default: every claims/*.claims of the repository) against the\n"
                              "latest ok run of each claim's study and prints PASS / FAIL / XFAIL / XPASS /\n"
                              "MISSING / STALE / ERROR / BLOCKED per claim with n, estimates, CIs, p-values and run ids.\n"
                              "Exit 0 only when every claim is ok (PASS, or XFAIL for an expected failure).",
                              opts, 0, -1, 0};
    lg_ledger *lg = NULL;
    char **paths = NULL, **args;
    size_t npaths = 0, i;
    lg_eval_result **res = NULL;
    lg_buf out = LG_BUF_INIT;
    int nargs, rc, err = 0, all_ok = 1, own_paths = 0;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    lg_ledger_set_trust(lg, &trust);
    if (nargs > 0) {
        paths = args;
        npaths = (size_t)nargs;
    } else {
        if ((err = lg_evidence_default_claims(lg, &paths, &npaths)) < 0)
            goto out;
        own_paths = 1;
        if (npaths == 0) {
            err = lg_error_set(LG_EINPUT, "no claim files given and none under %s/claims/", lg_ledger_root(lg));
            goto out;
        }
    }
    if ((err = lg_evidence_eval_files_opts(lg, paths, npaths, &eo, &res)) < 0)
        goto out;
    for (i = 0; i < npaths; i++)
        all_ok &= lg_eval_ok(res[i]);
    if (junit) {
        char *xml = NULL;
        if ((err = lg_eval_render_junit((const lg_eval_result *const *)res, npaths, &xml)) < 0)
            goto out;
        err = lg_file_write_atomic(junit, xml, strlen(xml));
        lg_free(xml);
        if (err < 0)
            goto out;
    }
    if (json) {
        char *text = NULL;
        if ((err = lg_eval_render_json((const lg_eval_result *const *)res, npaths, &text)) < 0)
            goto out;
        printf("%s\n", text);
        lg_free(text);
    } else {
        for (i = 0; i < npaths; i++) {
            lg_buf_clear(&out);
            if ((err = lg_eval_render_text(res[i], &out)) < 0)
                goto out;
            if (!quiet || !lg_eval_ok(res[i]))
                fputs(out.ptr ? out.ptr : "", stdout); /* a file with no claims renders nothing */
        }
    }
out:
    rc = err < 0 ? cli_fail("check", err) : (all_ok ? 0 : 1);
    if (res)
        for (i = 0; i < npaths; i++)
            lg_eval_result_free(res[i]);
    lg_free(res);
    if (own_paths)
        lg_evidence_paths_free(paths, npaths);
    lg_buf_release(&out);
    return rc;
}
