/*
 * data_layer.c - one layer of layered data (lg_dataset_layer_view, data.h).
 *
 * A study on layered data [n, L, d] (a 3-D file or data.synthetic.layers)
 * trains RouteSAE on all L layers and every single-layer architecture on
 * the one layer data.layer names (engine/run_layer.c). That layer is copied
 * here into an in-memory [n, d] float32 dataset: the trainer, the metrics
 * and the geometric median then read it like any 2-D data. Why a copy and
 * not a strided view: every reader (gather, mean, median, digest) assumes
 * rows of d contiguous elements; a copy costs n * d floats, which is the
 * size of one layer and small next to the L-layer source.
 *
 * The copy reads the source through lg_dataset_gather (so f16/bf16/f64
 * files convert as they do everywhere), 4096 rows at a time.
 */
#include "engine/data.h"

#include <string.h>

#include "base/base.h"
#include "engine/data_int.h"

int lg_dataset_layer_view(const lg_dataset *ds, int layer, lg_dataset **out)
{
    const int L = lg_dataset_layers(ds);
    const int64_t n = lg_dataset_rows(ds);
    int64_t *idx = NULL, off, i;
    float *buf = NULL, *x = NULL; /* buf [4096, L * d], x [n, d] */
    int d, err;

    *out = NULL;
    if (L < 1)
        return lg_error_set(LG_EINPUT, "data.layer: the data is not layered (a 2-D [n, d] source has no layers)");
    if (layer < 0 || layer >= L)
        return lg_error_set(LG_EINPUT, "data.layer: %d out of range: the data has %d layers (0..%d)", layer, L, L - 1);
    d = lg_dataset_dim(ds) / L;
    if (!(idx = lg_malloc(4096 * sizeof(int64_t))) ||
        !(buf = lg_malloc((size_t)4096 * (size_t)L * (size_t)d * sizeof(float))) ||
        !(x = lg_malloc((size_t)n * (size_t)d * sizeof(float)))) {
        err = lg_error_set(LG_ENOMEM, "data.layer: out of memory for layer %d [%lld x %d]", layer, (long long)n, d);
        goto out;
    }
    for (off = 0; off < n; off += 4096) {
        int m = n - off < 4096 ? (int)(n - off) : 4096;
        for (i = 0; i < m; i++)
            idx[i] = off + i;
        if ((err = lg_dataset_gather(ds, idx, m, buf)) < 0)
            goto out;
        for (i = 0; i < m; i++) /* row i's layer: buf[i, layer, :] */
            memcpy(x + (size_t)(off + i) * d, buf + ((size_t)i * L + (size_t)layer) * d, (size_t)d * sizeof(float));
    }
    /* borrow x, then hand it over: the dataset frees it (no second copy) */
    if ((err = lg_dataset_from_memory(x, n, d, 0, out)) < 0)
        goto out;
    (*out)->owned = x;
    x = NULL;
out:
    lg_free(idx);
    lg_free(buf);
    lg_free(x);
    return err;
}
