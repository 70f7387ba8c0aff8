/*
 * cuda.h - the C-visible API of the CUDA backend beyond engine/backend.h
 * (which declares lg_backend_cuda()). Defined in the kernels/ .cu files, which exist
 * only in builds with LEDGER_HAVE_CUDA: callers guard their use with
 * #ifdef LEDGER_HAVE_CUDA (STYLE.md 13: C never includes .cuh).
 */
#ifndef LG_KERNELS_CUDA_H
#define LG_KERNELS_CUDA_H

/* Number of usable CUDA devices (0 when none or when the driver fails). */
int lg_cuda_device_count(void);
/* "NAME (sm_XY, N.N GiB)" of device `dev` into buf[len]; 0 or -1. */
int lg_cuda_device_name(int dev, char *buf, int len);
/* Why lg_backend_cuda() is NULL ("no CUDA device (...)", a failed cuBLAS
 * init, ...); "" when it is usable. Static string, never NULL. */
const char *lg_cuda_unavailable_reason(void);

/* Cross-seed MMCS of two dictionaries on the GPU (engine/consistency.h's
 * definitions): A [m1, d], B [m2, d] float32 row-major HOST arrays, rows
 * normalised to unit norm (norm in double), cosines by a float32 GEMM of the
 * normalised rows in blocks of rows of A, fused with the row and column
 * maxima (max is exact, so the result does not depend on the block size).
 *   *mmcs_ab = mean_i max_j s(i,j),  *mmcs_ba = mean_j max_i s(i,j),
 *   s = cos or |cos| (abs_cos), the means summed in double in a fixed order.
 * maxcos_a [m1] / maxcos_b [m2] (may be NULL) receive the per-row maxima.
 * Agrees with lg_dict_similarity (float64 throughout) to about 1e-6.
 * Errors: LG_EINPUT for bad sizes or a zero or non-finite row (naming "A" or
 * "B" and the row), LG_EINPUT when no CUDA device is usable, LG_ENOMEM,
 * LG_EINTERNAL for a CUDA failure. Device memory: (m1 + m2) d floats plus a
 * tile of at most 64 Mi floats. */
int lg_cuda_dict_mmcs(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                      double *mmcs_ab, double *mmcs_ba, float *maxcos_a, float *maxcos_b);

#endif
