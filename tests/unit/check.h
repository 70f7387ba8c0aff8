/*
 * check.h - the unit-test harness: CHECK-style macros that count failures and
 * a main that returns non-zero on any failure (77 = skipped, for ctest).
 * Usage: define test functions, list them in TESTS, end with CHECK_MAIN.
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

#define CHECK_MAIN(...)                                                                    \
    int main(int argc, char **argv)                                                        \
    {                                                                                      \
        static const check_test tests[] = {__VA_ARGS__};                                   \
        size_t i;                                                                          \
        for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {                           \
            int before = check_failures;                                                   \
            if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)                           \
                continue;                                                                  \
            tests[i].fn();                                                                 \
            printf("%s %s\n", check_failures == before ? "ok  " : "FAIL", tests[i].name); \
        }                                                                                  \
        printf("%d checks, %d failed\n", check_count, check_failures);                     \
        return check_failures ? 1 : 0;                                                     \
    }
#define T(fn) {#fn, fn}

#endif
