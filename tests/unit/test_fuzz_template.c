/* test_fuzz_template.c - replays, in normal ctest (gcc, no libFuzzer), every
 * input under tests/fuzz/corpus/template/ and tests/fuzz/regress/template/
 * through the template fuzz target's own entry point (which aborts on a
 * broken invariant), so the report template parser and the SVG writer keep
 * holding on the seeds and on any finding once fixed.
 *
 * A binary of its own: the target compiles ledger/template.c and ledger/svg.c
 * in, so it cannot share test_fuzz_regress's binary (those would be linked
 * twice). Needs LEDGER_SRC (set by ctest); skipped (77) without it. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LLVMFuzzerTestOneInput fuzz_template_one
int fuzz_template_one(const uint8_t *data, size_t size);
#include "tests/fuzz/fuzz_template.c"
#undef LLVMFuzzerTestOneInput

#include "tests/unit/check.h"

static void on_alarm(int sig)
{
    static const char msg[] = "test_fuzz_template: an input ran for more than 20 s (a hang)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

/* Replays every regular file of dir (a missing dir replays nothing); returns how many. */
static size_t replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        lg_buf path = LG_BUF_INIT, bytes = LG_BUF_INIT;
        if (e->d_name[0] == '.')
            continue;
        if (lg_buf_printf(&path, "%s/%s", dir, e->d_name) < 0 || lg_is_dir(path.ptr)) {
            lg_buf_release(&path);
            continue;
        }
        CHECK_OK(lg_file_read(path.ptr, 1 << 20, &bytes));
        alarm(20);
        {
            uint8_t *copy = malloc(bytes.len ? bytes.len : 1); /* exactly the file's bytes */
            CHECK(copy != NULL);
            if (copy) {
                memcpy(copy, bytes.ptr, bytes.len);
                fuzz_template_one(copy, bytes.len);
                free(copy);
            }
        }
        alarm(0);
        n++;
        lg_error_clear();
        lg_buf_release(&path);
        lg_buf_release(&bytes);
    }
    closedir(d);
    return n;
}

static void test_replay_template(void)
{
    const char *src = getenv("LEDGER_SRC");
    lg_buf dir = LG_BUF_INIT;
    size_t n;
    if (!src)
        CHECK_SKIP("LEDGER_SRC is not set");
    signal(SIGALRM, on_alarm);
    CHECK_OK(lg_buf_printf(&dir, "%s/tests/fuzz/corpus/template", src));
    n = replay_dir(dir.ptr);
    CHECK_MSG(n > 0, "no seed inputs in %s", dir.ptr);
    lg_buf_clear(&dir);
    CHECK_OK(lg_buf_printf(&dir, "%s/tests/fuzz/regress/template", src));
    n += replay_dir(dir.ptr);
    printf("replayed %zu template inputs\n", n);
    lg_buf_release(&dir);
}

CHECK_MAIN(T(test_replay_template))
