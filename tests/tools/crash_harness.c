/*
 * crash_harness.c - kill `ledger record` / `ledger run` with SIGKILL at random
 * points and check the ledger after every kill (DESIGN.md section 5,
 * Atomicity). Driven by tests/cli/t7100-crash-kill.sh, which does the final
 * checks (gc, every reported run present once, no leftovers).
 *
 *   crash_harness LEDGER ITERATIONS SECONDS SEED OUT.tsv STUDY.json FILE...
 *
 * Run in the ledger's work tree. First each operation runs three times
 * unkilled to measure its duration T (median); then each iteration picks an
 * operation (record FILE... | run STUDY), starts it, sleeps a uniform random
 * delay in [0, 1.25 T] (Philox stream 7 of SEED: a failing iteration is
 * reproducible from the seed) and sends SIGKILL; a process that finished
 * first counts as completed. After every iteration `ledger verify
 * --no-claims` must exit 0, and the branch may have moved by at most one
 * commit. The loop stops after ITERATIONS or SECONDS, whichever comes first.
 *
 * OUT.tsv gets one line per iteration: iter, op, delay_ms, outcome
 * ("killed" | "exit:N"), landed (0/1: the branch moved), run id printed
 * ("-" when the command printed none). The summary line on stdout is what
 * ledger/SECURITY.md's reliability figures quote. Exit 0 when every check held,
 * 1 when one failed (the line says which), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/rng.h"

#define STREAM_DELAYS 7
#define MAX_ARGS 64

static const char *ledger_bin;

/* Starts argv with stdout/stderr to the given files; returns the pid. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

/* Writes 1.5 MiB of fresh random bytes (store-only: above the default small_output_max). */
static int write_unique(lg_rng *r)
{
    static uint32_t words[(3u << 19) / 4];
    size_t i;
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        words[i] = lg_rng_u32(r);
    return lg_file_write_atomic("h.unique", words, sizeof words);
}

/* Runs argv to completion; returns its exit code (-1 when signalled). */
static int run_to_end(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = spawn(argv, out_path, err_path);
    int st = pid > 0 ? wait_status(pid) : -1;
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Number of commits on the ledger branch, via git rev-list. */
static long branch_commits(void)
{
    FILE *p = popen("git rev-list --count refs/heads/ledger 2>/dev/null", "r");
    long n = -1;
    if (!p)
        return -1;
    if (fscanf(p, "%ld", &n) != 1)
        n = -1;
    pclose(p);
    return n;
}

/* The run id (12+ hex) printed by a successful record / run, or "". */
static void printed_id(const char *out_path, char id[65])
{
    lg_buf text = LG_BUF_INIT;
    char word[65];
    id[0] = '\0';
    if (lg_file_read(out_path, 1 << 16, &text) == 0 && text.len) {
        /* "recorded run <seq> <id12> (...)" or "run <id12> recorded: ..." */
        if (sscanf(text.ptr, "recorded run %*d %64s", word) == 1 || sscanf(text.ptr, "run %64s recorded", word) == 1)
            memcpy(id, word, sizeof word);
    }
    lg_buf_release(&text);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char *ops[2][MAX_ARGS];
    char *verify_argv[] = {NULL, "verify", "--no-claims", NULL};
    const char *op_name[2] = {"record", "run"};
    double calib[2], deadline;
    long iters, seconds, seed, before, after;
    long n_killed = 0, n_killed_landed = 0, n_completed = 0, n_iter = 0;
    lg_rng rng, bytes;
    FILE *tsv;
    int i, k, nfiles, failed = 0;

    if (argc < 8) {
        fprintf(stderr, "usage: crash_harness LEDGER ITERATIONS SECONDS SEED OUT.tsv STUDY.json FILE...\n");
        return 2;
    }
    ledger_bin = argv[1];
    if (lg_parse_long(argv[2], &iters) < 0 || lg_parse_long(argv[3], &seconds) < 0 ||
        lg_parse_long(argv[4], &seed) < 0 || iters < 1 || seconds < 1) {
        fprintf(stderr, "crash_harness: ITERATIONS, SECONDS, SEED must be integers >= 1\n");
        return 2;
    }
    nfiles = argc - 7;
    if (nfiles > MAX_ARGS - 8) {
        fprintf(stderr, "crash_harness: too many files\n");
        return 2;
    }
    if (!(tsv = fopen(argv[5], "w"))) {
        fprintf(stderr, "crash_harness: %s: %s\n", argv[5], strerror(errno));
        return 2;
    }
    verify_argv[0] = argv[1];
    /* op 0: ledger record --study crash FILE... ; op 1: ledger run -q --backend cpu STUDY */
    k = 0;
    ops[0][k++] = argv[1];
    ops[0][k++] = "record";
    ops[0][k++] = "--study";
    ops[0][k++] = "crash";
    ops[0][k++] = "--lock-timeout";
    ops[0][k++] = "60";
    for (i = 0; i < nfiles; i++)
        ops[0][k++] = argv[7 + i];
    ops[0][k++] = "h.unique"; /* fresh random bytes each time: a killed record leaves an unreferenced object */
    ops[0][k] = NULL;
    k = 0;
    ops[1][k++] = argv[1];
    ops[1][k++] = "run";
    ops[1][k++] = "-q";
    ops[1][k++] = "--backend";
    ops[1][k++] = "cpu";
    ops[1][k++] = argv[6];
    ops[1][k] = NULL;

    lg_rng_init(&bytes, (uint64_t)seed, STREAM_DELAYS + 1);
    /* Calibration: three unkilled runs of each op (they are real, reported runs). */
    for (k = 0; k < 2; k++) {
        double t[3];
        for (i = 0; i < 3; i++) {
            double t0 = now_s();
            int rc = (k == 0 && write_unique(&bytes) < 0) ? -1 : run_to_end(ops[k], "h.out", "h.err");
            t[i] = now_s() - t0;
            if (rc != 0) {
                fprintf(stderr, "crash_harness: calibration %s exited %d (see h.err)\n", op_name[k], rc);
                return 1;
            }
            {
                char id[65];
                printed_id("h.out", id);
                fprintf(tsv, "0\t%s\t-\texit:0\t1\t%s\n", op_name[k], id[0] ? id : "-");
            }
        }
        qsort(t, 3, sizeof t[0], cmp_double);
        calib[k] = t[1];
    }

    lg_rng_init(&rng, (uint64_t)seed, STREAM_DELAYS);
    deadline = now_s() + (double)seconds;
    for (n_iter = 0; n_iter < iters && now_s() < deadline; n_iter++) {
        int op = (int)lg_rng_below(&rng, 2), st, landed;
        double delay = lg_rng_uniform(&rng) * 1.25 * calib[op];
        struct timespec ts;
        char id[65], outcome[32];
        pid_t pid;

        if ((before = branch_commits()) < 0) {
            fprintf(stderr, "crash_harness: iteration %ld: cannot read the ledger branch\n", n_iter + 1);
            failed = 1;
            break;
        }
        if (op == 0 && write_unique(&bytes) < 0) {
            fprintf(stderr, "crash_harness: %s\n", lg_error_msg());
            failed = 1;
            break;
        }
        pid = spawn(ops[op], "h.out", "h.err");
        ts.tv_sec = (time_t)delay;
        ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        kill(pid, SIGKILL);
        st = wait_status(pid);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            snprintf(outcome, sizeof outcome, "killed");
            n_killed++;
        } else {
            snprintf(outcome, sizeof outcome, "exit:%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            n_completed++;
        }
        printed_id("h.out", id);
        after = branch_commits();
        landed = after == before + 1;
        if (strcmp(outcome, "killed") == 0 && landed)
            n_killed_landed++;
        fprintf(tsv, "%ld\t%s\t%.3f\t%s\t%d\t%s\n", n_iter + 1, op_name[op], delay * 1e3, outcome, landed,
                id[0] ? id : "-");
        fflush(tsv);
        if (after != before && after != before + 1) {
            fprintf(stderr, "crash_harness: iteration %ld (%s, %.3f ms): branch went from %ld to %ld commits\n",
                    n_iter + 1, op_name[op], delay * 1e3, before, after);
            failed = 1;
            break;
        }
        if (strcmp(outcome, "exit:0") == 0 && (!id[0] || !landed)) {
            fprintf(stderr, "crash_harness: iteration %ld (%s): exited 0 but %s\n", n_iter + 1, op_name[op],
                    id[0] ? "the branch did not move" : "printed no run id");
            failed = 1;
            break;
        }
        if (strncmp(outcome, "exit:", 5) == 0 && strcmp(outcome, "exit:0") != 0) {
            fprintf(stderr, "crash_harness: iteration %ld (%s): not killed, yet exited %s (see h.err)\n", n_iter + 1,
                    op_name[op], outcome + 5);
            failed = 1;
            break;
        }
        if (run_to_end(verify_argv, "v.out", "v.err") != 0) {
            fprintf(stderr,
                    "crash_harness: iteration %ld (%s killed after %.3f ms, seed %ld): ledger verify failed "
                    "(see v.out)\n",
                    n_iter + 1, op_name[op], delay * 1e3, seed);
            failed = 1;
            break;
        }
    }
    fclose(tsv);
    printf("crash_harness: %ld iterations (record %.1f ms, run %.1f ms unkilled): %ld killed (%ld of them after "
           "the commit landed), %ld completed; verify passed after each: %s\n",
           n_iter, calib[0] * 1e3, calib[1] * 1e3, n_killed, n_killed_landed, n_completed, failed ? "NO" : "yes");
    return failed;
}
