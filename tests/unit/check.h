/*
 * check.h - the unit-test harness: CHECK-style macros that count failures and
 * a main (check_run) that fails a test function that made no check, fails a
 * name on the command line that matches no test, and exits 77 (skipped, for
 * ctest) when every selected function skipped with CHECK_SKIP.
 * Usage: define test functions, list them with T(), end with CHECK_MAIN.
 * GPU functions are named test_cuda*: CMake registers each as a ctest of its
 * own (unit.<binary>.<function>) so that its skip is counted as a skip.
 */
#ifndef LG_CHECK_H
#define LG_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        check_count++;                                                                \
        if (!(cond)) {                                                                \
            check_failures++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        check_count++;                                                      \
        if (!(cond)) {                                                      \
            check_failures++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

/* |a - b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                            \
    do {                                                                                         \
        double check_a_ = (double)(a), check_b_ = (double)(b);                                   \
        check_count++;                                                                           \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_))) {                  \
            check_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s = %.12g vs %s = %.12g\n", __FILE__,  \
                    __LINE__, #a, check_a_, #b, check_b_);                                       \
        }                                                                                        \
    } while (0)

#define CHECK_OK(expr)                                                                      \
    do {                                                                                    \
        int check_rc_ = (expr);                                                             \
        check_count++;                                                                      \
        if (check_rc_ < 0) {                                                                \
            check_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr,       \
                    check_rc_, lg_error_msg());                                             \
        }                                                                                   \
    } while (0)

typedef void (*check_test_fn)(void);
typedef struct { const char *name; check_test_fn fn; } check_test;

/* Set by CHECK_SKIP; reset before each test function. */
static int check_skipped;

/* CHECK_SKIP("why", ...): the current test function cannot run here (no GPU,
 * no input): print "skip NAME: why" and return from it. A test function that
 * skips is reported as skipped, never as ok; a binary whose every selected
 * function skipped exits 77, which ctest counts as a skip (SKIP_RETURN_CODE).
 * Only for void test functions. */
#define CHECK_SKIP(...)                                                    \
    do {                                                                   \
        check_skipped = 1;                                                 \
        printf("skip: ");                                                  \
        printf(__VA_ARGS__);                                               \
        putchar('\n');                                                     \
        return;                                                            \
    } while (0)

/* In list "a,b,c"? */
static int check_in_list_(const char *list, const char *name)
{
    size_t n = strlen(name);
    while (list && *list) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        if (len == n && strncmp(list, name, n) == 0)
            return 1;
        list = comma ? comma + 1 : NULL;
    }
    return 0;
}

/*
 * Runs the tests of the table: all of them, or those named on the command line
 * (each name must exist), minus those named by --except=a,b (used by ctest to
 * register the GPU functions test_cuda* as tests of their own).
 * Exit status: 1 if any check failed, if a test function made no check and did
 * not skip, or if a name matched nothing; 77 if every selected function
 * skipped; else 0.
 */
static int check_run(int argc, char **argv, const check_test *tests, size_t n)
{
    const char *except = NULL;
    int i, named = 0, ran = 0, skipped = 0, empty = 0, unknown = 0;
    size_t t;
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--except=", 9) == 0) {
            except = argv[i] + 9;
            continue;
        }
        named++;
        for (t = 0; t < n; t++)
            if (strcmp(argv[i], tests[t].name) == 0)
                break;
        if (t == n) {
            fprintf(stderr, "%s: no test named '%s'\n", argv[0], argv[i]);
            unknown++;
        }
    }
    for (t = 0; t < n; t++) {
        int before = check_failures, count_before = check_count, selected = !named;
        for (i = 1; i < argc && !selected; i++)
            if (strcmp(argv[i], tests[t].name) == 0)
                selected = 1;
        if (!selected || check_in_list_(except, tests[t].name))
            continue;
        check_skipped = 0;
        tests[t].fn();
        ran++;
        if (check_skipped && check_failures == before) {
            skipped++;
            printf("skip %s\n", tests[t].name);
        } else if (check_count == count_before) {
            empty++;
            printf("FAIL %s (made no checks)\n", tests[t].name);
        } else {
            printf("%s %s\n", check_failures == before ? "ok  " : "FAIL", tests[t].name);
        }
        fflush(stdout);
    }
    printf("%d checks, %d failed, %d of %d tests skipped\n", check_count, check_failures, skipped, ran);
    if (unknown || check_failures || empty || ran == 0) {
        if (ran == 0)
            fprintf(stderr, "%s: no test selected\n", argv[0]);
        return 1;
    }
    return skipped == ran ? 77 : 0;
}

#define CHECK_MAIN(...)                                                   \
    int main(int argc, char **argv)                                       \
    {                                                                     \
        static const check_test tests[] = {__VA_ARGS__};                  \
        return check_run(argc, argv, tests, sizeof tests / sizeof tests[0]); \
    }
#define T(fn) {#fn, fn}

#endif
