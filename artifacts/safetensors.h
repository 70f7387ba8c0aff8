/*
 * safetensors.h - read and write .safetensors files, plus the element types
 * and half-precision conversions shared by every tensor reader (npy.h too).
 *
 * File layout (the format of huggingface/safetensors):
 *   u64 little-endian N | N bytes of JSON header | data buffer
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data buffer) and may hold a
 * "__metadata__" object of string -> string.
 *
 * What the reader accepts (anything else is LG_EINPUT naming the file):
 *   - N <= LG_ST_HEADER_MAX (100 MiB) and 8 + N <= file size; at most
 *     LG_ST_MAX_TENSORS tensors;
 *   - the header is a JSON object; every entry but __metadata__ has exactly
 *     dtype (F32 F16 BF16 F64 I32 I64), shape (0..4 non-negative integers)
 *     and data_offsets (two integers, begin <= end);
 *   - end - begin == product(shape) * dtype size;
 *   - the tensors, ordered by offset, tile the data buffer exactly: no
 *     overlap, no hole, and the last one ends at the end of the file;
 *   - names are unique and non-empty; __metadata__ values are strings.
 *
 * What the writer produces: tensors sorted by name (strcmp), offsets
 * contiguous from 0, __metadata__ first when given, the header padded with
 * spaces so that the data buffer starts at a multiple of 8. Written
 * atomically (tmp + fsync + rename) by lg_st_write.
 *
 * Byte order: the formats are little-endian and so is every host we build on
 * (x86-64, aarch64); safetensors.c refuses to compile on a big-endian host.
 */
#ifndef LG_SAFETENSORS_H
#define LG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- element types ----------------------------------------------------- */

typedef enum { LG_DT_F32, LG_DT_F16, LG_DT_BF16, LG_DT_F64, LG_DT_I32, LG_DT_I64 } lg_dtype;

size_t lg_dtype_size(lg_dtype dt);        /* bytes per element */
const char *lg_dtype_name(lg_dtype dt);   /* "F32", "F16", "BF16", "F64", "I32", "I64" */
/* Parse a safetensors dtype name; LG_EINPUT (no message) when unknown. */
int lg_dtype_parse(const char *name, lg_dtype *out);

/* Exact conversions (every half value is a float value): subnormals, +-0,
 * +-inf and NaN (payload kept, made quiet only if it already was) preserved. */
float lg_f16_to_f32(uint16_t h);
float lg_bf16_to_f32(uint16_t h);
/* float32 -> bfloat16, round to nearest, ties to even; NaN stays NaN (quiet),
 * overflow rounds to inf as IEEE rounding says. */
uint16_t lg_f32_to_bf16(float f);
/* Convert `n` elements of a floating type (F32/F16/BF16/F64) at `src`
 * (possibly unaligned, little-endian) to float32. F64 values outside the
 * float range become +-inf. LG_EINPUT for integer types. */
int lg_convert_to_f32(lg_dtype dt, const void *src, size_t n, float *out);

/* ---- reading ------------------------------------------------------------ */

#define LG_ST_HEADER_MAX ((uint64_t)100 << 20)
#define LG_ST_MAX_DIMS 4
#define LG_ST_MAX_TENSORS 65536u /* entries of one header (SAE checkpoints hold a handful) */

/* A tensor inside an open file: `data` points into the mapping (valid until
 * lg_st_close), possibly unaligned; `name` is owned by the file. */
typedef struct {
    char *name;
    lg_dtype dtype;
    int ndim;                      /* 0..4; a scalar has ndim 0 and 1 element */
    int64_t shape[LG_ST_MAX_DIMS]; /* unused dims are 0 */
    const void *data;
    size_t nbytes;
} lg_tensor_view;

typedef struct lg_st_file lg_st_file;

/* Open and validate a file; the file is mmap'ed read-only, never copied.
 * On success *out owns the mapping; free with lg_st_close. */
int lg_st_open(const char *path, lg_st_file **out);
/* Same on a buffer in memory (not copied: `buf` must outlive the file).
 * `name` labels error messages (e.g. "<memory>"). */
int lg_st_open_memory(const void *buf, size_t len, const char *name, lg_st_file **out);
/* Tensor by name: LG_ENOTFOUND (message names the file) when absent. */
int lg_st_get(const lg_st_file *f, const char *name, lg_tensor_view *out);
/* Tensors in name order: 0 <= i < lg_st_count(f). */
size_t lg_st_count(const lg_st_file *f);
int lg_st_at(const lg_st_file *f, size_t i, lg_tensor_view *out);
/* Metadata value for `key` (owned by the file): LG_ENOTFOUND when absent. */
int lg_st_meta(const lg_st_file *f, const char *key, const char **out);
size_t lg_st_meta_count(const lg_st_file *f);
/* i-th metadata pair in key order (pointers owned by the file). */
int lg_st_meta_at(const lg_st_file *f, size_t i, const char **key, const char **value);
const char *lg_st_path(const lg_st_file *f);
void lg_st_close(lg_st_file *f);

/* ---- writing ------------------------------------------------------------ */

/* A float32 tensor to write: `data` holds product(shape) floats, row-major. */
typedef struct {
    const char *name;
    int ndim;                      /* 0..4 */
    int64_t shape[LG_ST_MAX_DIMS];
    const float *data;
} lg_tensor_f32;

/* meta_kv: n_meta pairs flattened as {key0, value0, key1, value1, ...}
 * (NULL when n_meta == 0). Names must be unique, non-empty and not
 * "__metadata__"; metadata keys unique. Errors: LG_EINPUT. */
int lg_st_write(const char *path, const lg_tensor_f32 *t, size_t n, const char *const *meta_kv,
                size_t n_meta);
/* Same bytes, appended to `out` (which the caller owns and releases). */
int lg_st_encode(lg_buf *out, const lg_tensor_f32 *t, size_t n, const char *const *meta_kv,
                 size_t n_meta);
/* General form: tensors of any dtype (view.data holds view.nbytes bytes,
 * which must equal product(shape) * dtype size). */
int lg_st_encode_views(lg_buf *out, const lg_tensor_view *t, size_t n, const char *const *meta_kv,
                       size_t n_meta);
int lg_st_write_views(const char *path, const lg_tensor_view *t, size_t n,
                      const char *const *meta_kv, size_t n_meta);

#endif
