/* test_ledger.c - canonical JSON, output-name and results validation, the record
 * API (ids, chain, prefixes, in-tree restore), and verify as a problem list. */
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/verify.h"
#include "tests/unit/check.h"

static int canon_is(const char *json, const char *want)
{
    cJSON *j = cJSON_Parse(json);
    lg_buf out = LG_BUF_INIT;
    int ok = j && lg_json_canonical(j, &out) == 0 && strcmp(out.ptr, want) == 0;
    if (!ok)
        fprintf(stderr, "canonical(%s) = %s, want %s\n", json, out.ptr ? out.ptr : "(error)", want);
    cJSON_Delete(j);
    lg_buf_release(&out);
    return ok;
}

static void test_canonical_json(void)
{
    cJSON *j;
    lg_buf out = LG_BUF_INIT;
    CHECK(canon_is("{ \"b\": 1, \"a\": [true, false, null, \"x\"] }", "{\"a\":[true,false,null,\"x\"],\"b\":1}"));
    CHECK(canon_is("{\"z\":{\"y\":2,\"x\":1},\"B\":0}", "{\"B\":0,\"z\":{\"x\":1,\"y\":2}}"));
    CHECK(canon_is("[0.1, 1e300, -0.0, 2.50, 1e15, 0.30000000000000004]",
                   "[0.1,1e+300,0,2.5,1000000000000000,0.30000000000000004]"));
    CHECK(canon_is("[\"tab\\t quote\\\" slash\\\\ \\u00e9\"]", "[\"tab\\u0009 quote\\\" slash\\\\ \xc3\xa9\"]"));
    /* idempotent: canonical bytes parse back to the same bytes */
    CHECK(canon_is("{\"a\":1e+300,\"c\":-1.2345678901234567e-7}", "{\"a\":1e+300,\"c\":-1.2345678901234566e-07}"));
    CHECK(canon_is("{\"a\":1e+300,\"b\":\"\\u0009\",\"c\":-1.2345678901234566e-07}", "{\"a\":1e+300,\"b\":\"\\u0009\",\"c\":-1.2345678901234566e-07}"));
    j = cJSON_Parse("{\"a\":1,\"a\":2}");
    CHECK(lg_json_canonical(j, &out) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "duplicate key") != NULL);
    cJSON_Delete(j);
    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(j, "m"), "fvu", NAN);
    lg_buf_clear(&out);
    CHECK(lg_json_canonical(j, &out) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "m.fvu") != NULL);
    cJSON_Delete(j);
    lg_buf_release(&out);
}

static void test_names_and_results(void)
{
    const char *good[] = {"a", "a/b.npy", "x..y", ".hidden"};
    const char *bad[] = {"", "/abs", "a/../b", "..", "a//b", "a/", "./a", "tab\there", "back\\slash"};
    size_t i;
    cJSON *r;
    for (i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(lg_manifest_check_name(good[i]) == 0, "%s", good[i]);
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(lg_manifest_check_name(bad[i]) == LG_EINPUT, "%s", bad[i]);
    r = cJSON_Parse("{\"conditions\":[{\"id\":\"a\",\"cells\":[{\"seed\":1,\"metrics\":{\"fvu\":0.1,\"x\":null}}]},"
                    "{\"id\":\"b\",\"pairs\":[{\"seed_a\":1,\"seed_b\":2.5,\"metrics\":{}}]}]}");
    CHECK(lg_results_check(r, "r.json") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "r.json: conditions[1].pairs[0]") != NULL);
    cJSON_Delete(r);
    r = cJSON_Parse("{\"conditions\":[{\"id\":\"a\"},{\"id\":\"a\"}]}");
    CHECK(lg_results_check(r, "r.json") == LG_EINPUT);
    cJSON_Delete(r);
    r = cJSON_Parse("{\"conditions\":[{\"id\":\"a\",\"seeds\":[{\"seed\":3,\"metrics\":{\"m\":1}}]}]}");
    CHECK_OK(lg_results_check(r, "r.json"));
    cJSON_Delete(r);
}

static char dir[] = "/tmp/lgledgerXXXXXX";

static void write_file(const char *name, const char *text)
{
    lg_buf p = LG_BUF_INIT;
    CHECK_OK(lg_path_join(&p, dir, name));
    CHECK_OK(lg_file_write_atomic(p.ptr, text, strlen(text)));
    lg_buf_release(&p);
}

static void test_record_and_read(void)
{
    lg_init_opts io = {1, 16};
    lg_init_result res;
    lg_ledger *lg = NULL;
    lg_run_file files[2];
    lg_run_input in;
    lg_run_info *runs = NULL, info;
    lg_buf pa = LG_BUF_INIT, pb = LG_BUF_INIT, raw = LG_BUF_INIT, path = LG_BUF_INIT;
    cJSON *results, *m = NULL;
    char id1[65], id2[65], sha[65], hex[65];
    size_t n = 0;
    sqlite3 *db;

    CHECK(mkdtemp(dir) != NULL);
    CHECK(lg_ledger_open(dir, &lg) == LG_EINPUT); /* not a repository yet */
    CHECK_OK(lg_ledger_init(dir, &io, &res));
    CHECK(res.created_repo && res.created_branch);
    CHECK_OK(lg_ledger_open(dir, &lg));
    CHECK(lg_ledger_small_output_max(lg) == 16);
    write_file("a.txt", "small");
    write_file("b.bin", "this is more than sixteen bytes");
    CHECK_OK(lg_path_join(&pa, dir, "a.txt"));
    CHECK_OK(lg_path_join(&pb, dir, "b.bin"));
    files[0] = (lg_run_file){"z/b.bin", pb.ptr, NULL};
    files[1] = (lg_run_file){"a.txt", pa.ptr, "text/plain"};
    results = cJSON_Parse("{\"conditions\":[{\"id\":\"c\",\"params\":{\"k\":4},\"cells\":[{\"seed\":1,"
                          "\"metrics\":{\"fvu\":0.25}}]}]}");
    memset(&in, 0, sizeof in);
    in.kind = "run";
    in.study = "unit";
    in.backend = "cpu";
    in.results = results;
    in.files = files;
    in.nfiles = 2;
    in.status = "ok";
    CHECK_OK(lg_ledger_record(lg, &in, id1));
    in.status = "failed";
    in.nfiles = 0;
    CHECK_OK(lg_ledger_record(lg, &in, id2));
    in.status = "maybe";
    CHECK(lg_ledger_record(lg, &in, hex) == LG_EINPUT);

    CHECK_OK(lg_ledger_runs(lg, &runs, &n));
    CHECK(n == 2 && runs[0].seq == 1 && runs[1].seq == 2);
    CHECK(n == 2 && strcmp(runs[0].run_id, id1) == 0 && strcmp(runs[1].run_id, id2) == 0);
    lg_free(runs);

    /* by prefix; the id is the SHA-256 of the stored bytes; chain link */
    hex[0] = '\0';
    snprintf(hex, sizeof hex, "%.6s", id2);
    CHECK_OK(lg_ledger_load_manifest(lg, hex, &m, &info, &raw));
    CHECK_OK(lg_sha256_buf(raw.ptr, raw.len, sha));
    CHECK(strcmp(sha, id2) == 0 && info.seq == 2);
    CHECK(m && !cJSON_GetObjectItem(m, "prev") && strcmp(lg_json_str(m, "status"), "failed") == 0);
    cJSON_Delete(m);
    m = NULL;
    {
        /* format 2: the chain entry links run 2 to run 1's entry digest */
        lg_chain_link l1, l2;
        lg_run_info i1;
        CHECK_OK(lg_ledger_find_run(lg, id1, &i1));
        CHECK_OK(lg_ledger_chain_link(lg, &i1, &l1));
        CHECK_OK(lg_ledger_chain_link(lg, &info, &l2));
        CHECK(l1.seq == 1 && l1.prev[0] == '\0' && strcmp(l1.run_id, id1) == 0);
        CHECK(l2.seq == 2 && strcmp(l2.prev, l1.digest) == 0 && strcmp(l2.run_id, id2) == 0);
    }
    {
        /* chain.json is read literally in its canonical form; anything else is refused */
        lg_buf cj = LG_BUF_INIT;
        lg_chain_link l;
        char bad[400];
        CHECK_OK(lg_chain_json_make(7, id1, id2, &cj));
        CHECK_OK(lg_chain_json_parse(cj.ptr, cj.len, "t", &l));
        CHECK(l.seq == 7 && strcmp(l.prev, id2) == 0 && strcmp(l.run_id, id1) == 0);
        CHECK(lg_chain_json_parse(cj.ptr, cj.len - 1, "t", &l) == LG_EINPUT);
        snprintf(bad, sizeof bad, "{\"format\":2,\"prev\":null,\"run\":\"%s\",\"seq\":07}", id1);
        CHECK(lg_chain_json_parse(bad, strlen(bad), "t", &l) == LG_EINPUT);
        snprintf(bad, sizeof bad, "{\"format\":2, \"prev\":null,\"run\":\"%s\",\"seq\":7}", id1);
        CHECK(lg_chain_json_parse(bad, strlen(bad), "t", &l) == LG_EINPUT);
        snprintf(bad, sizeof bad, "{\"format\":2,\"prev\":null,\"run\":\"%s\",\"seq\":7,\"x\":1}", id1);
        CHECK(lg_chain_json_parse(bad, strlen(bad), "t", &l) == LG_EINPUT);
        snprintf(bad, sizeof bad, "{\"format\":2,\"prev\":null,\"run\":\"%s\",\"seq\":7}", id1);
        CHECK_OK(lg_chain_json_parse(bad, strlen(bad), "t", &l));
        CHECK(l.prev[0] == '\0' && l.seq == 7);
        lg_buf_release(&cj);
    }
    CHECK_OK(lg_ledger_load_manifest(lg, id1, &m, NULL, NULL));
    if (m) {
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(m, "outputs");
        CHECK(cJSON_GetArraySize(outs) == 2);
        CHECK(strcmp(lg_json_str(cJSON_GetArrayItem(outs, 0), "name"), "a.txt") == 0);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(outs, 0), "in_tree")));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(outs, 1), "in_tree")));
        CHECK(strcmp(lg_json_str(m, "backend"), "cpu") == 0 && !cJSON_GetObjectItem(m, "seq"));
    }
    cJSON_Delete(m);
    CHECK(lg_ledger_find_run(lg, "ffffffff", &info) == LG_ENOTFOUND || strncmp(id1, "ffffffff", 8) == 0);
    CHECK(lg_ledger_find_run(lg, "ab", &info) == LG_EINPUT);

    /* the index has the rows */
    db = lg_ledger_db(lg);
    CHECK(db != NULL);
    if (db) {
        lg_buf q = LG_BUF_INIT;
        CHECK_OK(lg_index_query(db, "SELECT r.status, s.value FROM samples s JOIN runs r USING(run_id) ORDER BY r.seq", 0, &q));
        CHECK(q.ptr && strcmp(q.ptr, "status\tvalue\nok\t0.25\nfailed\t0.25\n") == 0);
        lg_buf_release(&q);
    }

    /* a small output removed from the store is restored from the tree */
    CHECK_OK(lg_sha256_buf("small", 5, sha));
    CHECK_OK(lg_store_remove(lg_ledger_store(lg), sha));
    CHECK(lg_store_exists(lg_ledger_store(lg), sha) == 0);
    CHECK_OK(lg_ledger_artifact_path(lg, sha, &path));
    CHECK(lg_store_exists(lg_ledger_store(lg), sha) == 1);
    CHECK(lg_ledger_artifact_path(lg, "0000000000000000000000000000000000000000000000000000000000000000", &path) ==
          LG_ENOTFOUND);

    /* lock nests */
    CHECK_OK(lg_ledger_lock(lg));
    CHECK_OK(lg_ledger_lock(lg));
    lg_ledger_unlock(lg);
    lg_ledger_unlock(lg);

    cJSON_Delete(results);
    lg_buf_release(&pa);
    lg_buf_release(&pb);
    lg_buf_release(&raw);
    lg_buf_release(&path);
    lg_ledger_free(lg);
}

static void test_verify_problem_list(void)
{
    lg_ledger *lg = NULL;
    lg_problems ps = LG_PROBLEMS_INIT;
    lg_verify_stats st;
    lg_verify_opts vo = {.require_artifacts = 1};
    lg_buf text = LG_BUF_INIT;
    char sha[65];

    CHECK_OK(lg_ledger_open(dir, &lg));
    CHECK_OK(lg_verify_integrity(lg, NULL, &ps, &st));
    CHECK(ps.n == 0 && st.runs == 2 && st.commits == 3);
    /* remove the large object: a warning, an error when artifacts are required */
    CHECK_OK(lg_sha256_buf("this is more than sixteen bytes", 31, sha));
    CHECK_OK(lg_store_remove(lg_ledger_store(lg), sha));
    CHECK_OK(lg_verify_integrity(lg, NULL, &ps, &st));
    CHECK(ps.n == 1 && lg_problems_failed(&ps) == 0 && st.objects_missing == 1);
    lg_problems_release(&ps);
    CHECK_OK(lg_verify_integrity(lg, &vo, &ps, &st));
    CHECK(ps.n == 1 && lg_problems_failed(&ps) == 1);
    CHECK_OK(lg_problems_format(&ps, &text));
    CHECK(text.ptr && strstr(text.ptr, "error: object: run 1-") && strstr(text.ptr, "z/b.bin"));
    /* callers (claims) append to the same list */
    CHECK_OK(lg_problems_add(&ps, LG_PROBLEM_ERROR, "claim", "k4_beats_k32", "CI lower bound %.3f <= 0", -0.01));
    CHECK(lg_problems_failed(&ps) == 2);
    lg_problems_release(&ps);
    lg_buf_release(&text);
    lg_ledger_free(lg);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "chmod -R u+w %s && rm -rf %s", dir, dir);
        CHECK(system(cmd) == 0);
    }
}

CHECK_MAIN(T(test_canonical_json), T(test_names_and_results), T(test_record_and_read), T(test_verify_problem_list))
