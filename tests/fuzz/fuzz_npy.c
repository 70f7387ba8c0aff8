/*
 * fuzz_npy.c - libFuzzer target for the .npy header parser
 * (artifacts/npy.c lg_npy_parse_header, and lg_npy_parse_header_nd, which
 * also takes 3-D arrays).
 *
 * fuzz-sources: base/base.c artifacts/npy.c artifacts/safetensors.c
 *
 * The input is the start of a file. It is parsed twice: as the whole file
 * (file_size = size: the size checks bite) and as the head of a much larger
 * file (the dict parser and shape arithmetic run to the end). Invariants: the
 * parser fails only with LG_EINPUT naming the file, or succeeds with a header
 * inside the buffer, ndim 1 or 2 (nd: 1 to 3), non-negative dims and data_bytes =
 * product(shape) * itemsize fitting the declared file size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "artifacts/npy.h"

static void one(const uint8_t *data, size_t size, uint64_t file_size, int nd)
{
    lg_npy_info info;
    uint64_t elems = 1;
    int i, rc = nd ? lg_npy_parse_header_nd(data, size, file_size, "fuzz.npy", &info)
                   : lg_npy_parse_header(data, size, file_size, "fuzz.npy", &info);
    if (rc < 0) {
        /* LG_EINTERNAL only when the buffer is shorter than the header it declares inside a larger
         * file: the documented precondition (len >= min(file_size, 12 + LG_NPY_HEADER_MAX)) */
        if (rc == LG_EINTERNAL && file_size > size && size < 12 + LG_NPY_HEADER_MAX)
            return;
        if (rc != LG_EINPUT || strncmp(lg_error_msg(), "fuzz.npy: ", 10) != 0)
            abort();
        return;
    }
    if (info.data_offset > size || info.data_offset > file_size || (info.ndim != 1 && info.ndim != 2 && !(nd && info.ndim == 3)))
        abort();
    for (i = 0; i < info.ndim; i++) {
        if (info.shape[i] < 0 || info.shape[i] > LG_NPY_DIM_MAX)
            abort();
        elems *= (uint64_t)info.shape[i];
    }
    if (elems * lg_dtype_size(info.dtype) != info.data_bytes || info.data_offset + info.data_bytes != file_size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, size, 0);
    one(data, size, (uint64_t)size + ((uint64_t)1 << 41), 0);
    one(data, size, size, 1);
    one(data, size, (uint64_t)size + ((uint64_t)1 << 41), 1);
    return 0;
}
