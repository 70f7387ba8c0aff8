/* test_fuzz_regress.c - replays, in normal ctest (gcc, no libFuzzer), every
 * input kept under tests/fuzz/regress/<target>/ (crashes and hangs found by
 * the fuzzers, now fixed) and every seed under tests/fuzz/corpus/<target>/
 * through the fuzz targets' own entry points, so a finding stays fixed.
 *
 * The targets are included as source with LLVMFuzzerTestOneInput renamed per
 * target; their invariants abort() on a violation, which fails this test, and
 * an alarm turns a hang (the spec parser's old infinite loop) into a failure.
 * Needs LEDGER_SRC (set by ctest); skipped (77) without it. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LLVMFuzzerTestOneInput fuzz_claims_one
int fuzz_claims_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_claims.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_manifest_one
int fuzz_manifest_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npy_one
int fuzz_npy_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
int fuzz_safetensors_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_spec_one
int fuzz_spec_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_spec.c"
#undef LLVMFuzzerTestOneInput

#include "tests/unit/check.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    fuzz_fn fn;
} targets[] = {{"claims", fuzz_claims_one},
               {"manifest", fuzz_manifest_one},
               {"npy", fuzz_npy_one},
               {"safetensors", fuzz_safetensors_one},
               {"spec", fuzz_spec_one}};

static size_t replayed;

static void on_alarm(int sig)
{
    static const char msg[] = "test_fuzz_regress: an input ran for more than 20 s (a hang came back)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

/* Replays every regular file of dir; a missing dir replays nothing. */
static void replay_dir(const char *dir, fuzz_fn fn)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        lg_buf path = LG_BUF_INIT, bytes = LG_BUF_INIT;
        if (e->d_name[0] == '.')
            continue;
        if (lg_buf_printf(&path, "%s/%s", dir, e->d_name) < 0 || lg_is_dir(path.ptr) ||
            lg_file_read(path.ptr, 1 << 20, &bytes) < 0) {
            lg_buf_release(&path);
            continue;
        }
        alarm(20);
        /* a copy of exactly the file's bytes, so ASan-style overreads would show under valgrind */
        {
            uint8_t *copy = malloc(bytes.len ? bytes.len : 1);
            if (copy) {
                memcpy(copy, bytes.ptr, bytes.len);
                fn(copy, bytes.len);
                free(copy);
            }
        }
        alarm(0);
        replayed++;
        lg_error_clear();
        lg_buf_release(&path);
        lg_buf_release(&bytes);
    }
    closedir(d);
}

static void test_replay(void)
{
    const char *src = getenv("LEDGER_SRC");
    size_t i;
    signal(SIGALRM, on_alarm);
    if (!src) {
        printf("skip: LEDGER_SRC is not set\n");
        exit(77);
    }
    for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        lg_buf dir = LG_BUF_INIT;
        size_t before = replayed;
        CHECK_OK(lg_buf_printf(&dir, "%s/tests/fuzz/regress/%s", src, targets[i].name));
        replay_dir(dir.ptr, targets[i].fn);
        lg_buf_clear(&dir);
        CHECK_OK(lg_buf_printf(&dir, "%s/tests/fuzz/corpus/%s", src, targets[i].name));
        replay_dir(dir.ptr, targets[i].fn);
        CHECK_MSG(replayed > before, "no inputs for target %s", targets[i].name);
        lg_buf_release(&dir);
    }
    printf("replayed %zu inputs\n", replayed);
}

/* The fixed findings, named: each must fail cleanly (not hang, not crash). */
static void test_known_findings(void)
{
    static const char spec[] =
        "{\"format\": 1, \"name\": \"m\", \"data\": {\"source\": \"synthetic\", \"synthetic\": {\"d\": 4}}, "
        "\"sae\": {\"arch\": \"matryoshka\", \"d_sae\": 4, \"k\": 1}, \"seeds\": [1]}";
    lg_study *s = NULL;
    alarm(20);
    /* matryoshka with d_sae < 8 and default prefixes looped forever */
    CHECK_OK(lg_study_parse("m.json", spec, sizeof spec - 1, &s));
    if (s) {
        CHECK(s->conds[0].p.n_prefixes == 3 && s->conds[0].p.prefixes[0] == 1 && s->conds[0].p.prefixes[2] == 4);
        lg_study_free(s);
    }
    alarm(0);
}

CHECK_MAIN(T(test_replay), T(test_known_findings))
