/*
 * schedule.c - concurrent jobs on the CPU (schedule.h): a shared queue of job
 * indices taken in order under a mutex; per-worker OpenMP thread counts.
 */
#include "engine/schedule.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/base.h"

typedef struct {
    pthread_mutex_t mu;
    int n, next, running, workers, lowest_failed;
    lg_sched_job job;
    void *ctx;
    lg_sched_result *res;
} sched;

typedef struct {
    sched *s;
    int threads; /* this worker's current OpenMP thread count */
    int index;   /* the job it runs */
} worker;

static _Thread_local worker *cur_worker;

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n < 1 ? 1 : n);
#else
    (void)n;
#endif
}

static void run_one(worker *w, int i)
{
    sched *s = w->s;
    int code;
    w->index = i;
    cur_worker = w;
    code = s->job(s->ctx, i);
    cur_worker = NULL;
    s->res[i].code = code;
    s->res[i].msg[0] = '\0';
    if (code < 0)
        snprintf(s->res[i].msg, sizeof s->res[i].msg, "%s", lg_error_msg());
    pthread_mutex_lock(&s->mu);
    if (code < 0 && (s->lowest_failed < 0 || i < s->lowest_failed))
        s->lowest_failed = i;
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sched *s = w->s;
    w->threads = 1;
    set_threads(1);
    for (;;) {
        int i;
        pthread_mutex_lock(&s->mu);
        if (s->next >= s->n) {
            s->running--;
            pthread_mutex_unlock(&s->mu);
            break;
        }
        i = s->next++;
        pthread_mutex_unlock(&s->mu);
        run_one(w, i);
    }
    return NULL;
}

void lg_sched_share_threads(void)
{
    worker *w = cur_worker;
    int running, want;
    if (!w)
        return;
    pthread_mutex_lock(&w->s->mu);
    running = w->s->running;
    pthread_mutex_unlock(&w->s->mu);
    want = running > 0 ? w->s->workers / running : 1;
    if (want < 1)
        want = 1;
    if (want != w->threads) {
        w->threads = want;
        set_threads(want);
    }
}

int lg_sched_lower_failed(void)
{
    worker *w = cur_worker;
    int lf;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->s->mu);
    lf = w->s->lowest_failed;
    pthread_mutex_unlock(&w->s->mu);
    return lf >= 0 && lf < w->index;
}

int lg_sched_workers(int n)
{
    const char *env = getenv("LEDGER_SEED_WORKERS");
    int w = 1;
#ifdef _OPENMP
    w = omp_get_max_threads();
#endif
    if (env && *env) {
        int cap = atoi(env);
        if (cap >= 1 && cap < w)
            w = cap;
    }
    return w < n ? w : n;
}

int lg_sched_run(int n, int workers, lg_sched_job job, void *ctx, lg_sched_result *res)
{
    sched s;
    worker *ws = NULL;
    pthread_t *th = NULL;
    int i, started = 0, err = 0, blas_threads, omp_threads = 1;
    if (n <= 0)
        return 0;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.job = job;
    s.ctx = ctx;
    s.res = res;
    s.lowest_failed = -1;
    if (workers > n)
        workers = n;
    if (workers <= 1) { /* in order, here */
        worker w = {&s, 0, 0};
        s.workers = 1;
        s.running = 1;
        for (i = 0; i < n; i++)
            run_one(&w, i);
        return 0;
    }
    if (!(ws = lg_calloc((size_t)workers, sizeof(*ws))) || !(th = lg_calloc((size_t)workers, sizeof(*th)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if (pthread_mutex_init(&s.mu, NULL) != 0) {
        err = lg_error_set(LG_EIO, "schedule: cannot create a mutex");
        goto out;
    }
#ifdef _OPENMP
    omp_threads = omp_get_max_threads();
#endif
    blas_threads = openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);
    s.workers = workers;
    s.running = workers;
    for (i = 0; i < workers; i++) {
        ws[i].s = &s;
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
            break;
        started++;
    }
    if (started < workers) { /* the started ones drain the queue; the others never run */
        pthread_mutex_lock(&s.mu);
        s.running -= workers - started;
        s.workers = started;
        pthread_mutex_unlock(&s.mu);
    }
    if (started == 0) { /* no thread at all: in order, here */
        worker w = {&s, 1, 0};
        s.workers = 1;
        s.running = 1;
        for (i = 0; i < n; i++)
            run_one(&w, i);
    }
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
    set_threads(omp_threads);
    pthread_mutex_destroy(&s.mu);
out:
    lg_free(ws);
    lg_free(th);
    return err;
}
