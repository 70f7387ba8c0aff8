/*
 * shard.h - scale-out of 'ledger run': shards that each train a part of a
 * study's seed groups into a shared staging folder, and the gather that
 * records them as one run (used by cmd_run.c, cmd_gather.c, cmd_status.c
 * and cmd_submit.c).
 *
 * The unit of a shard is a seed group of a trained condition (engine/run.h):
 * groups are numbered 1..G in plan order (conditions in study order, the
 * seed groups of a condition in seed order) and shard I of N trains the
 * groups g with (g - 1) mod N == I - 1. Random-init controls, evaluation and
 * cross-seed metrics are computed by the gather.
 *
 * Staging: <stage root>/<plan sha256>/ where the stage root is
 * <repo>/.ledger/shards unless given, and the plan digest covers the spec,
 * the data, the engine version and the backend (lg_study_plan_digest).
 * The folder holds plan.json, the groups' weight files and markers (the
 * resume layout of engine/run.h, markers carrying the plan digest) and
 * running/shard-I-of-N.json while a shard process works on it.
 */
#ifndef LG_SHARD_H
#define LG_SHARD_H

#include <signal.h>

#include "engine/backend.h"
#include "engine/run.h"
#include "engine/study.h"
#include "ledger/ledger.h"

/* "I/N" with 1 <= I <= N <= 100000 -> *index, *count; LG_EINPUT otherwise. */
int shard_parse(const char *arg, int *index, int *count);

typedef struct {
    char plan[65], data[65];
    lg_buf dir; /* the staging folder (may not exist yet) */
} shard_plan;

/* Digests the plan and names its staging folder under stage_root (NULL:
 * <ledger dir>/shards). */
int shard_plan_open(lg_ledger *lg, const lg_study *s, const lg_backend *be, const char *stage_root, shard_plan *out);
void shard_plan_release(shard_plan *p);

/* Which groups the staging folder holds complete (check only: no training;
 * every staged weight file is re-hashed). res is released by the caller. */
int shard_check(const lg_study *s, const lg_backend *be, const shard_plan *p, lg_run_result *res);

/* "group 3 (condition k=4, seeds 1..3)" */
void shard_group_label(const lg_study *s, const lg_run_group *g, char *buf, size_t n);

/* The shard that trains group index g (0-based) of N shards: 1..N. */
#define SHARD_OF(g, n) ((g) % (n) + 1)

/* 'ledger run --shard I/N' after the options: returns the exit code. */
typedef struct {
    const lg_study *study;
    const lg_backend *be;
    const char *stage_root;
    int index, count;
    int json, quiet;
    lg_run_progress_fn progress;
    void *progress_ctx;
    volatile const sig_atomic_t *stop;
} shard_run_args;
int shard_cmd_run(lg_ledger *lg, const shard_run_args *a);

/* 'ledger gather' / 'ledger run --gather': returns the exit code. */
int shard_cmd_gather(lg_ledger *lg, const lg_study *s, const lg_backend *be, const char *stage_root, int json,
                     int quiet, const char *sign_key_path);

/* 'ledger push/pull --staged STUDY DIR': copies the groups that are complete
 * on one side (marker of this plan, weight files re-hashed) and absent on the
 * other between the local staging folder and DIR/shards/<plan sha256>/;
 * each weight file is committed only when its bytes hash as its marker says,
 * the marker last. Returns the exit code. */
int shard_cmd_sync(lg_ledger *lg, int push, const char *study_path, const char *backend_name, const char *stage_root,
                   const char *remote, int dry_run, int json);

#endif
