/*
 * fuzz_safetensors.c - libFuzzer target for the .safetensors reader
 * (artifacts/safetensors.c lg_st_open_memory) and its accessors.
 *
 * fuzz-sources: base/base.c artifacts/safetensors.c
 *
 * Invariants: open fails only with LG_EINPUT naming the file, or every
 * tensor view lies inside the buffer with nbytes = product(shape) * dtype
 * size, names come back in strictly increasing order and lg_st_get finds
 * each by name; floating tensors convert to float32 (the first 4096
 * elements) without touching bytes outside the view.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "artifacts/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float tmp[4096];
    lg_st_file *f = NULL;
    size_t i, n;
    const char *prev = NULL;
    int rc = lg_st_open_memory(data, size, "fuzz.safetensors", &f);
    if (rc < 0) {
        if (rc != LG_EINPUT || strncmp(lg_error_msg(), "fuzz.safetensors", 16) != 0)
            abort();
        return 0;
    }
    n = lg_st_count(f);
    for (i = 0; i < n; i++) {
        lg_tensor_view v, w;
        uint64_t elems = 1;
        int d;
        if (lg_st_at(f, i, &v) < 0)
            abort();
        for (d = 0; d < v.ndim; d++)
            elems *= (uint64_t)v.shape[d];
        if (v.ndim < 0 || v.ndim > LG_ST_MAX_DIMS || elems * lg_dtype_size(v.dtype) != v.nbytes)
            abort();
        if (v.nbytes && ((const uint8_t *)v.data < data || (const uint8_t *)v.data + v.nbytes > data + size))
            abort();
        if (prev && strcmp(prev, v.name) >= 0)
            abort();
        prev = v.name;
        if (lg_st_get(f, v.name, &w) < 0 || w.data != v.data)
            abort();
        if (v.dtype != LG_DT_I32 && v.dtype != LG_DT_I64) {
            size_t m = v.nbytes / lg_dtype_size(v.dtype);
            if (lg_convert_to_f32(v.dtype, v.data, m < 4096 ? m : 4096, tmp) < 0)
                abort();
        }
    }
    for (i = 0; i < lg_st_meta_count(f); i++) {
        const char *k, *val, *again;
        if (lg_st_meta_at(f, i, &k, &val) < 0 || lg_st_meta(f, k, &again) < 0 || again != val)
            abort();
    }
    if (lg_st_get(f, "", &(lg_tensor_view){0}) != LG_ENOTFOUND)
        abort();
    lg_st_close(f);
    return 0;
}
