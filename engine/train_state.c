/*
 * train_state.c - the trainer's saved state (part of train.c, see train.h
 * and train_int.h).
 *
 * The state of a seed is everything that influences its future: parameters,
 * Adam moments, the step, the dead-latent clocks and the BatchTopK
 * threshold, laid out as named arrays (state_layout) so that save + load +
 * continue is bit-identical to training straight through. Kept apart from
 * the step because it is the trainer's file format, read back by resume.
 */
#include "engine/train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "engine/arch_hier.h"
#include "engine/train_int.h"

static const char *const param_names[P_COUNT] = {"W_enc", "b_enc", "W_dec", "b_dec",
                                                 "log_threshold"};

/* ---- state ------------------------------------------------------------------ */

int64_t lg_named_array_numel(const lg_named_array *a)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    return n;
}

void lg_train_state_release(lg_train_state *st)
{
    int i;
    if (!st)
        return;
    for (i = 0; i < st->count; i++)
        lg_free(st->arrays[i].data);
    lg_free(st->arrays);
    st->arrays = NULL;
    st->count = 0;
}

/* The state layout of seed s: fills names and shapes of up to 20 arrays and,
 * per entry, where it lives: a device buffer (dev) or a host scalar
 * (host_scalar). */
typedef struct {
    char name[40];
    int ndim;
    int64_t shape[2];
    float *dev;          /* device buffer, or NULL */
    int host_scalar;     /* 1 step, 2 batchtopk_threshold, 3 state_version */
} state_entry;

static int state_layout(lg_trainer *t, int s, state_entry *e)
{
    const int64_t d = t->cfg.d_in, m = t->cfg.d_sae;
    const int64_t shapes[P_COUNT][2] = {{d, m}, {m, 0}, {m, d}, {d, 0}, {m, 0}};
    const int ndims[P_COUNT] = {2, 1, 2, 1, 1};
    int n = 0, i, kind;
    for (kind = 0; kind < 3; kind++)
        for (i = 0; i < t->n_params; i++) {
            const char *prefix = kind == 0 ? "" : kind == 1 ? "adam_m." : "adam_v.";
            float *buf = kind == 0 ? t->p[i] : kind == 1 ? t->m[i] : t->v[i];
            memset(&e[n], 0, sizeof(e[n]));
            snprintf(e[n].name, sizeof(e[n].name), "%s%s", prefix, param_names[i]);
            e[n].ndim = ndims[i];
            e[n].shape[0] = shapes[i][0];
            e[n].shape[1] = shapes[i][1];
            e[n].dev = buf + s * t->numel[i];
            n++;
        }
    memset(&e[n], 0, sizeof(e[n]));
    snprintf(e[n].name, sizeof(e[n].name), "steps_since_fired");
    e[n].ndim = 1;
    e[n].shape[0] = m;
    e[n].dev = t->since + (size_t)s * m;
    n++;
    {
        static const char *const scalars[3] = {"step", "batchtopk_threshold", "state_version"};
        for (i = 0; i < 3; i++) {
            memset(&e[n], 0, sizeof(e[n]));
            snprintf(e[n].name, sizeof(e[n].name), "%s", scalars[i]);
            e[n].ndim = 1;
            e[n].shape[0] = 1;
            e[n].host_scalar = i + 1;
            n++;
        }
    }
    return n;
}

#define STATE_MAX 24
#define STATE_VERSION 1.0f

int lg_trainer_save_state_multi(lg_trainer *t, int s, lg_train_state *out)
{
    state_entry e[STATE_MAX];
    int n, i, err = 0;
    out->count = 0;
    out->arrays = NULL;
    if ((err = train_check_seed(t, s)) < 0)
        return err;
    n = state_layout(t, s, e);
    if (!(out->arrays = lg_calloc((size_t)n, sizeof(lg_named_array))))
        return lg_error_wrap("saving trainer state");
    for (i = 0; i < n; i++) {
        lg_named_array *a = &out->arrays[i];
        int64_t numel;
        memcpy(a->name, e[i].name, sizeof(a->name));
        a->ndim = e[i].ndim;
        a->shape[0] = e[i].shape[0];
        a->shape[1] = e[i].shape[1];
        numel = lg_named_array_numel(a);
        if (!(a->data = lg_malloc((size_t)numel * sizeof(float)))) {
            err = lg_error_wrap("saving trainer state");
            goto out;
        }
        out->count = i + 1;
        if (e[i].dev)
            TRY(t->be->download(t->be, a->data, e[i].dev, (size_t)numel));
        else if (e[i].host_scalar == 1)
            a->data[0] = (float)t->step[s]; /* exact: steps <= 2^24 (config check) */
        else if (e[i].host_scalar == 2)
            a->data[0] = t->threshold[s];
        else
            a->data[0] = STATE_VERSION;
    }
out:
    if (err < 0)
        lg_train_state_release(out);
    return err;
}

int lg_trainer_save_state(lg_trainer *t, lg_train_state *out)
{
    return lg_trainer_save_state_multi(t, 0, out);
}

int lg_trainer_load_state_multi(lg_trainer *t, int s, const lg_train_state *st)
{
    state_entry e[STATE_MAX];
    int n, i, j, err = 0;
    long step = 0;
    float threshold = -1.0f;
    if ((err = train_check_seed(t, s)) < 0)
        return err;
    n = state_layout(t, s, e);
    /* validate everything first, so a bad state leaves the trainer as it was */
    for (i = 0; i < n; i++) {
        const lg_named_array *a = NULL;
        for (j = 0; j < st->count; j++)
            if (strcmp(st->arrays[j].name, e[i].name) == 0) {
                a = &st->arrays[j];
                break;
            }
        if (!a)
            return lg_error_set(LG_EINPUT, "trainer state: missing array '%s'", e[i].name);
        if (a->ndim != e[i].ndim || a->shape[0] != e[i].shape[0] ||
            (e[i].ndim == 2 && a->shape[1] != e[i].shape[1]))
            return lg_error_set(LG_EINPUT,
                                "trainer state: '%s' has shape [%lld, %lld] (ndim %d), expected "
                                "[%lld, %lld] (ndim %d)",
                                e[i].name, (long long)a->shape[0],
                                (long long)(a->ndim > 1 ? a->shape[1] : 0), a->ndim,
                                (long long)e[i].shape[0],
                                (long long)(e[i].ndim > 1 ? e[i].shape[1] : 0), e[i].ndim);
        if (e[i].host_scalar == 1) {
            float v = a->data[0];
            if (!(v >= 0 && v <= (float)t->tc.steps && v == floorf(v)))
                return lg_error_set(LG_EINPUT, "trainer state: step = %g is not in [0, %ld]",
                                    (double)v, t->tc.steps);
            step = (long)v;
        } else if (e[i].host_scalar == 2) {
            threshold = a->data[0];
            if (!isfinite(threshold))
                return lg_error_set(LG_EINPUT, "trainer state: batchtopk_threshold is not finite");
        } else if (e[i].host_scalar == 3 && a->data[0] != STATE_VERSION) {
            return lg_error_set(LG_EINPUT, "trainer state: state_version %g, expected %g",
                                (double)a->data[0], (double)STATE_VERSION);
        } else if (e[i].dev) {
            /* values: finite everywhere; Adam's second moments and the dead-latent clocks are >= 0 */
            int64_t k, nel = lg_named_array_numel(a);
            int nonneg = strncmp(e[i].name, "adam_v.", 7) == 0 || strcmp(e[i].name, "steps_since_fired") == 0;
            for (k = 0; k < nel; k++)
                if (!isfinite(a->data[k]) || (nonneg && a->data[k] < 0))
                    return lg_error_set(LG_EINPUT, "trainer state: '%s'[%lld] = %g is not %s", e[i].name,
                                        (long long)k, (double)a->data[k], nonneg ? "finite and >= 0" : "finite");
        }
    }
    for (i = 0; i < n; i++) {
        if (!e[i].dev)
            continue;
        for (j = 0; j < st->count; j++)
            if (strcmp(st->arrays[j].name, e[i].name) == 0)
                break;
        TRY(t->be->upload(t->be, e[i].dev, st->arrays[j].data,
                          (size_t)lg_named_array_numel(&st->arrays[j])));
    }
    t->step[s] = step;
    t->threshold[s] = threshold;
    t->has_grads = 0;
out:
    return err;
}

int lg_trainer_load_state(lg_trainer *t, const lg_train_state *st)
{
    return lg_trainer_load_state_multi(t, 0, st);
}

