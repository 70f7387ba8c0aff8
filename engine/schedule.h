/*
 * schedule.h - run independent jobs (a study's seeds) concurrently on the CPU,
 * one worker thread per core, each job single-threaded while others run.
 *
 * Why: on a few cores, one seed's many small ops split over OpenMP threads
 * pay a barrier per op (and a spinning or descheduled partner on a busy
 * machine); seeds that run side by side, one per core, pay none. When fewer
 * jobs than workers remain, a job that calls lg_sched_share_threads() takes
 * a fair share of the idle cores (workers / jobs running) for its OpenMP ops.
 *
 * Results: the CPU backend's ops give the same bits at any OpenMP thread
 * count (backend_cpu.c, backend_cpu_sparse.c) and a seed's training does not
 * depend on the other seeds, so a job computes exactly what it computes when
 * run alone. OpenBLAS is set to one thread for the whole call (the GEMM
 * blocks already run it single-threaded; its thread count is global, so no
 * job may change it while others run) and restored afterwards.
 */
#ifndef LG_SCHEDULE_H
#define LG_SCHEDULE_H

/* One job: returns 0 or a negative LG_* code; the job's error message
 * (thread-local) is kept for the caller. */
typedef int (*lg_sched_job)(void *ctx, int i);

typedef struct {
    int code;      /* the job's return value */
    char msg[512]; /* lg_error_msg() after a failed job */
} lg_sched_result;

/* Runs job(ctx, i) for every i in [0, n), started in index order on
 * `workers` threads (workers <= 1 or n <= 1: in order on the calling
 * thread); res [n] receives each job's result. Returns 0 once every job has
 * ended (whatever they returned), or LG_ENOMEM / LG_EIO when the threads
 * could not be set up (then no job ran). Each worker starts its jobs at one
 * OpenMP thread; the caller's OpenMP thread count is unchanged afterwards. */
int lg_sched_run(int n, int workers, lg_sched_job job, void *ctx, lg_sched_result *res);

/* Inside a job of lg_sched_run: sets the calling thread's OpenMP thread
 * count to workers / (jobs still running), at least 1, when that changed.
 * A cheap no-op outside lg_sched_run. */
void lg_sched_share_threads(void);

/* Inside a job: nonzero once a job with a lower index has failed (its
 * result is the one a sequential run would report: this job may give up). */
int lg_sched_lower_failed(void);

/* Workers for n jobs on the CPU backend: min(n, OpenMP threads), or 1 when
 * LEDGER_SEED_WORKERS=1 is set (the earlier in-order schedule, for
 * comparisons; any other value n >= 1 caps the workers at n). */
int lg_sched_workers(int n);

#endif
