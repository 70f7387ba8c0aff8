/*
 * checkpoint.c - trainer state <-> safetensors (see checkpoint.h). The
 * trainer checks names and shapes when the state is loaded; this file only
 * converts between the two representations.
 */
#include "engine/checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "artifacts/safetensors.h"

#define CHECKPOINT_FORMAT "ledger-train-state-1"

int lg_checkpoint_write(const char *path, const lg_train_state *st)
{
    const char *meta[] = {"format", CHECKPOINT_FORMAT};
    lg_tensor_f32 *t = lg_calloc(st->count ? (size_t)st->count : 1, sizeof(*t));
    int i, err;
    if (!t)
        return LG_ENOMEM;
    for (i = 0; i < st->count; i++) {
        t[i].name = st->arrays[i].name;
        t[i].ndim = st->arrays[i].ndim;
        t[i].shape[0] = st->arrays[i].shape[0];
        t[i].shape[1] = st->arrays[i].shape[1];
        t[i].data = st->arrays[i].data;
    }
    err = lg_st_write(path, t, (size_t)st->count, meta, 1);
    lg_free(t);
    return err;
}

int lg_checkpoint_read(const char *path, lg_train_state *out)
{
    lg_st_file *f = NULL;
    const char *fmt = NULL;
    size_t i, n;
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = lg_st_open(path, &f)) < 0)
        return err;
    if (lg_st_meta(f, "format", &fmt) < 0 || !fmt || strcmp(fmt, CHECKPOINT_FORMAT) != 0) {
        err = lg_error_set(LG_EINPUT, "%s: not a ledger training checkpoint (metadata format != %s)", path,
                           CHECKPOINT_FORMAT);
        goto out;
    }
    n = lg_st_count(f);
    if (!(out->arrays = lg_calloc(n ? n : 1, sizeof(lg_named_array)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        lg_tensor_view v;
        lg_named_array *a = &out->arrays[i];
        if ((err = lg_st_at(f, i, &v)) < 0)
            goto out;
        if (v.dtype != LG_DT_F32 || v.ndim < 1 || v.ndim > 2 || strlen(v.name) >= sizeof(a->name)) {
            err = lg_error_set(LG_EINPUT, "%s: tensor '%s': a checkpoint holds F32 arrays of 1 or 2 dims", path, v.name);
            goto out;
        }
        snprintf(a->name, sizeof a->name, "%s", v.name);
        a->ndim = v.ndim;
        a->shape[0] = v.shape[0];
        a->shape[1] = v.ndim == 2 ? v.shape[1] : 0;
        if (!(a->data = lg_malloc(v.nbytes ? v.nbytes : 1))) {
            err = LG_ENOMEM;
            goto out;
        }
        memcpy(a->data, v.data, v.nbytes);
        out->count++;
    }
out:
    lg_st_close(f);
    if (err < 0)
        lg_train_state_release(out);
    return err;
}
