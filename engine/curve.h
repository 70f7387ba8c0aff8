/*
 * curve.h - training curves: the trainer's own per-step statistics of a
 * cell, sampled every `log_every` steps (train.log_every of a study), kept
 * as one small JSON artifact per trained cell.
 *
 * A point is taken after step t (1-based: steps done) when t % log_every
 * == 0 or t == steps (the last step is always a point). Its values are the
 * trainer's lg_step_stats of that step, copied as they are (so a curve
 * equals what the trainer computed, bit for bit, on the training batch of
 * that step), plus the dead fraction read from the trainer's clocks:
 *   loss      total loss of the step (reconstruction + sparsity + AuxK)
 *   mse       full-dictionary mse of the batch (train.h: squared error summed
 *             over d_in, mean over the batch)
 *   l0        mean number of non-zero latents per row of the batch
 *   dead_frac share of latents that have not fired in the last dead_after
 *             samples after the step (the rule AuxK uses, train.h: a latent
 *             is dead when steps_since_fired >= max(1, ceil(dead_after / B)));
 *             computed for every architecture
 *   aux_loss  the AuxK term of the loss (0 for ReLU and JumpReLU, and while
 *             no latent is dead)
 *   lr        learning rate the step used (warmup and decay applied)
 *
 * File (cells/<cond>/seed-<s>.curve.json, next to the weights), written by
 * cJSON (doubles printed so that they read back to the same double):
 *   {"format": "ledger-curve-1", "condition": ID, "seed": S, "log_every": N,
 *    "steps": T, "step": [..], "loss": [..], "mse": [..], "l0": [..],
 *    "dead_frac": [..], "aux_loss": [..], "lr": [..]}
 * every array of the same length, steps strictly increasing in [1, T].
 */
#ifndef LG_CURVE_H
#define LG_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "engine/train.h"

#define LG_CURVE_FORMAT "ledger-curve-1"
#define LG_CURVE_NMETRICS 6
#define LG_CURVE_MAX_BYTES (64u << 20) /* a curve file read back (untrusted) */

typedef struct {
    long step;                        /* steps done (1-based) */
    double v[LG_CURVE_NMETRICS];      /* in the order of lg_curve_metric_name */
} lg_curve_point;

typedef struct {
    lg_curve_point *pts;              /* [n] owned */
    size_t n, cap;
    int log_every;
    long steps;
    uint64_t seed;
    char *condition;                  /* owned, or NULL */
} lg_curve;

/* "loss", "mse", "l0", "dead_frac", "aux_loss", "lr" for i in [0, 6); NULL else. */
const char *lg_curve_metric_name(int i);
/* Index of a metric name, or -1. */
int lg_curve_metric_index(const char *name);

/* 1 when a point is taken after `done` steps of `steps` with log_every n (> 0). */
int lg_curve_due(long done, long steps, int log_every);

/* Appends a point from a step's stats (st->step is the step number) and the
 * dead fraction. */
int lg_curve_add(lg_curve *c, const lg_step_stats *st, double dead_frac);

/* Dead fraction of seed s of a trainer after its last step (lg_trainer
 * save_state_multi's steps_since_fired, the rule above). */
int lg_curve_dead_frac(lg_trainer *t, int s, double dead_after, int batch, double *out);

/* After a step of a multi-seed trainer: when st[0].step is due (log_every,
 * steps), a point for each of the seeds 0..n-1 into c[0..n) (their stats
 * st[0..n), dead fractions read from t with dead_after and batch). */
int lg_curve_record(lg_curve *c, int n, lg_trainer *t, const lg_step_stats *st, long steps, int log_every,
                    double dead_after, int batch);

/* The file's JSON text (NUL-terminated) appended to out. */
int lg_curve_encode(const lg_curve *c, lg_buf *out);
/* Writes the file atomically (temp + fsync + rename). */
int lg_curve_write(const lg_curve *c, const char *path);
/* Parses a curve file's bytes strictly (the format above; `label` names it
 * in errors: LG_EINPUT "label: what"). *out is initialised here; release
 * with lg_curve_release. */
int lg_curve_parse(const char *label, const char *text, size_t len, lg_curve *out);

void lg_curve_release(lg_curve *c); /* accepts NULL */

/* "cells/<file id of condition>/seed-<seed>.curve.json" into buf. */
void lg_curve_file_name(const char *condition, uint64_t seed, char *buf, size_t n);

#endif
