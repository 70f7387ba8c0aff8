/*
 * npy.h - NumPy .npy files: read the header of v1/v2/v3 files holding a
 * 1-D or 2-D little-endian float array, read such a file as float32, write
 * float32 arrays atomically.
 *
 * Accepted (anything else is LG_EINPUT with a message naming the file):
 *   magic "\x93NUMPY", version 1.0, 2.0 or 3.0; header length <=
 *   LG_NPY_HEADER_MAX; the header a Python dict literal with exactly the keys
 *   'descr' in {'<f4', '<f2', '<f8'}, 'fortran_order': False and 'shape' a
 *   tuple of 1 or 2 non-negative ints; file size == header + product(shape)
 *   * itemsize exactly (a truncated file and trailing bytes are both errors).
 *
 * Written files are version 1.0, descr '<f4', the header padded with spaces
 * and a final newline to a multiple of 64 bytes (what NumPy itself writes),
 * so NumPy reads them with np.load and mmap_mode works.
 */
#ifndef LG_NPY_H
#define LG_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "artifacts/safetensors.h" /* lg_dtype, conversions */

#define LG_NPY_HEADER_MAX 65536u
#define LG_NPY_DIM_MAX ((int64_t)1 << 40)

typedef struct {
    int version;          /* 1, 2 or 3 */
    lg_dtype dtype;       /* LG_DT_F32, LG_DT_F16 or LG_DT_F64 */
    int ndim;             /* 1 or 2 (3 only from lg_npy_parse_header_nd) */
    int64_t shape[3];     /* shape[1] = 0 when ndim == 1; shape[2] = 0 unless ndim == 3 */
    size_t data_offset;   /* bytes before the array data */
    size_t data_bytes;    /* product(shape) * itemsize */
} lg_npy_info;

/* Parse the header at the start of a file of `file_size` bytes whose first
 * `len` bytes are at `buf` (len >= min(file_size, 12 + LG_NPY_HEADER_MAX)
 * suffices). `name` labels errors. Checks the size against file_size. */
int lg_npy_parse_header(const void *buf, size_t len, uint64_t file_size, const char *name,
                        lg_npy_info *out);
/* The same, also accepting a 3-D array (ndim 3, shape[0..2]): for layered
 * activations [n, L, d] (engine/data.h lg_dataset_layers). */
int lg_npy_parse_header_nd(const void *buf, size_t len, uint64_t file_size, const char *name,
                           lg_npy_info *out);
/* Read and validate the header of a file (reads at most 64 KiB). */
int lg_npy_read_info(const char *path, lg_npy_info *out);
/* Read a whole file converted to float32: *out is [shape[0], shape[1]]
 * (or [shape[0]]) row-major, caller frees with lg_free. `info` may be NULL.
 * Values are not checked for NaN/Inf (engine/data.h does that). */
int lg_npy_read_f32(const char *path, float **out, lg_npy_info *info);

/* The header bytes (magic .. padded dict) of a float32 .npy of this shape,
 * appended to `out`. ndim is 1 or 2. */
int lg_npy_header_f32(lg_buf *out, int ndim, const int64_t *shape);
/* A whole float32 .npy file appended to `out`. */
int lg_npy_encode_f32(lg_buf *out, const float *data, int ndim, const int64_t *shape);
/* Write a float32 .npy atomically (<path>.tmp.<pid>, fsync, rename, fsync
 * dir), streaming `data` without copying it. */
int lg_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

#endif
