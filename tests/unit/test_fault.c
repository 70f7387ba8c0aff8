/*
 * test_fault.c - fault injection on the write paths: a write budget
 * (base/fault.h) makes atomic files and store objects fail with ENOSPC
 * and leave nothing behind; every allocation of lg_ledger_record made to
 * fail in turn (lg_alloc_fail_after) gives an error, never a crash, and a
 * ledger that verifies, with the run either absent or complete.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/fault.h"
#include "artifacts/store.h"
#include "ledger/ledger.h"
#include "ledger/verify.h"
#include "check.h"

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_hooks_atomic_write_enospc(void)
{
    char dir[] = "/tmp/lg-fault-XXXXXX";
    char data[100];
    lg_buf p = LG_BUF_INIT, got = LG_BUF_INIT;
#if !LG_FAULT_HOOKS
    CHECK_SKIP("built without LEDGER_TEST_HOOKS (no write-fault hook)");
#endif
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(lg_path_join(&p, dir, "f.json"));
    memset(data, 'x', sizeof data);
    lg_fault_set_write_budget(10);
    CHECK(lg_file_write_atomic(p.ptr, data, sizeof data) == LG_EIO);
    CHECK_MSG(strstr(lg_error_msg(), "No space left on device") && strstr(lg_error_msg(), "f.json.tmp."), "%s",
              lg_error_msg());
    CHECK(!lg_path_exists(p.ptr));
    CHECK(count_entries(dir) == 0); /* the temp file was removed */
    lg_fault_set_write_budget(-1);
    CHECK_OK(lg_file_write_atomic(p.ptr, data, sizeof data));
    CHECK_OK(lg_file_read(p.ptr, 0, &got));
    CHECK(got.len == sizeof data);
    unlink(p.ptr);
    rmdir(dir);
    lg_buf_release(&p);
    lg_buf_release(&got);
}

static void test_hooks_store_enospc(void)
{
    char dir[] = "/tmp/lg-fault-XXXXXX", hex[65];
    static char data[200000];
    lg_store *st = NULL;
    lg_buf tmp = LG_BUF_INIT, obj = LG_BUF_INIT;
    long long budgets[] = {0, 1, 65536, sizeof data - 1};
    size_t i;
#if !LG_FAULT_HOOKS
    CHECK_SKIP("built without LEDGER_TEST_HOOKS (no write-fault hook)");
#endif
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(lg_store_open(dir, 1, &st));
    CHECK_OK(lg_path_join(&tmp, dir, "tmp"));
    memset(data, 7, sizeof data);
    for (i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        lg_fault_set_write_budget(budgets[i]);
        CHECK(lg_store_put_buf(st, data, sizeof data, hex, NULL) == LG_EIO);
        CHECK_MSG(strstr(lg_error_msg(), "No space left on device") != NULL, "%s", lg_error_msg());
        CHECK(count_entries(tmp.ptr) == 0);
        CHECK(lg_store_exists(st, hex) == 0);
    }
    lg_fault_set_write_budget(-1);
    CHECK_OK(lg_store_put_buf(st, data, sizeof data, hex, NULL));
    CHECK_OK(lg_store_verify(st, hex));
    CHECK_OK(lg_store_path(st, hex, &obj));
    unlink(obj.ptr);
    lg_store_free(st);
    lg_buf_release(&tmp);
    lg_buf_release(&obj);
}

static size_t verify_errors(lg_ledger *lg)
{
    lg_problems ps = LG_PROBLEMS_INIT;
    size_t n;
    if (lg_verify_integrity(lg, NULL, &ps, NULL) < 0) {
        fprintf(stderr, "verify could not run: %s\n", lg_error_msg());
        return 1;
    }
    n = lg_problems_failed(&ps);
    if (n) {
        lg_buf text = LG_BUF_INIT;
        lg_problems_format(&ps, &text);
        fprintf(stderr, "%s", text.ptr ? text.ptr : "");
        lg_buf_release(&text);
    }
    lg_problems_release(&ps);
    return n;
}

static void test_record_alloc_failures(void)
{
    char dir[] = "/tmp/lg-fault-XXXXXX", id[65];
    lg_init_opts io = {1, 16};
    lg_ledger *lg = NULL;
    lg_run_file files[2];
    lg_run_input in;
    lg_run_info *runs = NULL;
    lg_buf pa = LG_BUF_INIT, pb = LG_BUF_INIT;
    cJSON *results;
    size_t n = 0, before;
    long k;
    int rc = -1, failures = 0;

    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(lg_ledger_init(dir, &io, NULL));
    CHECK_OK(lg_ledger_open(dir, &lg));
    if (!lg)
        return;
    CHECK_OK(lg_path_join(&pa, dir, "a.txt"));
    CHECK_OK(lg_path_join(&pb, dir, "b.bin"));
    CHECK_OK(lg_file_write_atomic(pa.ptr, "small", 5));
    CHECK_OK(lg_file_write_atomic(pb.ptr, "this is more than sixteen bytes", 31));
    files[0] = (lg_run_file){"z/b.bin", pb.ptr, NULL};
    files[1] = (lg_run_file){"a.txt", pa.ptr, "text/plain"};
    results = cJSON_Parse("{\"conditions\":[{\"id\":\"c\",\"params\":{\"k\":4},\"cells\":[{\"seed\":1,"
                          "\"metrics\":{\"fvu\":0.25}}]}]}");
    memset(&in, 0, sizeof in);
    in.kind = "run";
    in.study = "unit";
    in.results = results;
    in.files = files;
    in.nfiles = 2;
    in.status = "ok";
    CHECK_OK(lg_ledger_record(lg, &in, id)); /* warm-up: one run */

    /* Make the k-th allocation fail, k = 0, 1, ... until a record gets through. */
    for (k = 0; k < 5000; k++) {
        CHECK_OK(lg_ledger_runs(lg, &runs, &before));
        lg_free(runs);
        lg_alloc_fail_after(k);
        rc = lg_ledger_record(lg, &in, id);
        lg_alloc_fail_after(-1);
        CHECK_OK(lg_ledger_runs(lg, &runs, &n));
        lg_free(runs);
        if (rc == 0) {
            CHECK(n == before + 1);
            break;
        }
        failures++;
        CHECK_MSG(lg_exit_code(rc) == 3 && *lg_error_msg(), "k=%ld rc=%d msg=%s", k, rc, lg_error_msg());
        /* absent, or complete (committed; only the index update failed, and it says so) */
        CHECK_MSG(id[0] ? n == before + 1 && strstr(lg_error_msg(), "ledger reindex") : n == before,
                  "k=%ld: id '%s', %zu runs before, %zu after: %s", k, id, before, n, lg_error_msg());
        CHECK_MSG(verify_errors(lg) == 0, "k=%ld: verify fails after an allocation failure", k);
    }
    CHECK_MSG(rc == 0 && failures > 10, "rc %d after %d injected failures", rc, failures);
    printf("# record: %d allocation failures injected, each left a ledger that verifies\n", failures);
    CHECK(verify_errors(lg) == 0);
    cJSON_Delete(results);
    lg_ledger_free(lg);
    lg_buf_release(&pa);
    lg_buf_release(&pb);
    {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* the test ledger */
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

CHECK_MAIN(T(test_hooks_atomic_write_enospc), T(test_hooks_store_enospc), T(test_record_alloc_failures))
