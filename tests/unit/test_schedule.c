/*
 * test_schedule.c - engine/schedule.h: every job runs once, jobs start in
 * index order, results and failure messages reach the caller per job, a job
 * sees a lower job's failure (lg_sched_lower_failed) and only a lower one's,
 * idle workers' cores go to the jobs still running (lg_sched_share_threads),
 * the caller's OpenMP thread count is restored, and one worker runs the jobs
 * in order on the calling thread.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "engine/backend.h"
#include "engine/backend_cpu_sparse.h"
#include "engine/schedule.h"
#include "tests/unit/check.h"

#define N 7

typedef struct {
    pthread_mutex_t mu;
    int order[N], n_started, runs[N];
    int threads_alone; /* the OpenMP threads job N-1 got once it ran alone */
    int saw_lower[N];
    int fail_at;       /* this job fails (-1: none) */
    pthread_t who[N];
} jobs_ctx;

static void nap_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int job(void *ctx, int i)
{
    jobs_ctx *c = ctx;
    int k;
    pthread_mutex_lock(&c->mu);
    c->order[c->n_started++] = i;
    c->runs[i]++;
    c->who[i] = pthread_self();
    pthread_mutex_unlock(&c->mu);
    if (i == c->fail_at)
        return lg_error_set(LG_EINPUT, "job %d failed on purpose", i);
    for (k = 0; k < 40; k++) { /* "steps" */
        nap_ms(i == N - 1 ? 5 : 1);
        lg_sched_share_threads();
        if (lg_sched_lower_failed())
            c->saw_lower[i] = 1;
    }
    if (i == N - 1)
        c->threads_alone = lg_cpu_threads();
    return i;
}

static void test_order_and_results(void)
{
    jobs_ctx c;
    lg_sched_result res[N];
    int i, before;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.fail_at = -1;
    lg_backend_cpu_set_threads(3);
    before = lg_cpu_threads();
    CHECK_OK(lg_sched_run(N, 3, job, &c, res));
    CHECK(c.n_started == N);
    for (i = 0; i < N; i++) {
        CHECK_MSG(c.runs[i] == 1, "job %d ran %d times", i, c.runs[i]);
        CHECK_MSG(c.order[i] == i, "start %d was job %d", i, c.order[i]);
        CHECK(res[i].code == i);
        CHECK(!c.saw_lower[i]);
    }
    /* the last job runs alone for most of its time: it ends with all 3 (a
     * build without OpenMP has one thread everywhere) */
    CHECK_MSG(c.threads_alone == (before == 3 ? 3 : 1), "the last job had %d threads alone", c.threads_alone);
    CHECK(lg_cpu_threads() == before);
    {
        int other = 0; /* several worker threads, none of them the caller */
        for (i = 0; i < N; i++) {
            CHECK(!pthread_equal(c.who[i], pthread_self()));
            other |= !pthread_equal(c.who[i], c.who[0]);
        }
        CHECK(other);
    }
    pthread_mutex_destroy(&c.mu);
}

static void test_failure(void)
{
    jobs_ctx c;
    lg_sched_result res[N];
    int i;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.fail_at = 2;
    CHECK_OK(lg_sched_run(N, 2, job, &c, res));
    CHECK(res[2].code == LG_EINPUT);
    CHECK(strstr(res[2].msg, "job 2 failed on purpose") != NULL);
    for (i = 0; i < N; i++) {
        CHECK(c.runs[i] == 1);
        if (i != 2)
            CHECK(res[i].code == i);
        if (i < 2)
            CHECK_MSG(!c.saw_lower[i], "job %d saw a lower failure", i);
    }
    /* job 6 starts after job 2 failed: it sees it */
    CHECK(c.saw_lower[N - 1]);
    pthread_mutex_destroy(&c.mu);
}

static void test_one_worker(void)
{
    jobs_ctx c;
    lg_sched_result res[N];
    int i;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.fail_at = 0;
    CHECK_OK(lg_sched_run(N, 1, job, &c, res));
    for (i = 0; i < N; i++) {
        CHECK(c.order[i] == i);
        CHECK(pthread_equal(c.who[i], pthread_self()));
        CHECK(i == 0 ? res[i].code == LG_EINPUT : res[i].code == i);
        CHECK(i == 0 || c.saw_lower[i]);
    }
    /* outside a run: no-ops */
    lg_sched_share_threads();
    CHECK(!lg_sched_lower_failed());
    CHECK_OK(lg_sched_run(0, 2, job, &c, res));
    pthread_mutex_destroy(&c.mu);
}

CHECK_MAIN(T(test_order_and_results), T(test_failure), T(test_one_worker))
