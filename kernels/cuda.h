/*
 * cuda.h - the C-visible API of the CUDA backend beyond engine/backend.h
 * (which declares lg_backend_cuda()). Defined in every build by the engine's
 * loader (engine/backend_cuda_load.c), which forwards to the separately
 * built CUDA module (kernels/cuda_module.h) and loads it on first use; in
 * builds without CUDA they report "this build has no CUDA backend".
 * (STYLE.md 13: C never includes .cuh.)
 */
#ifndef LG_KERNELS_CUDA_H
#define LG_KERNELS_CUDA_H

/* Why lg_backend_cuda() is NULL: the module is missing or cannot be loaded
 * (naming the file and dlerror()), "no CUDA device (...)", a failed cuBLAS
 * init, ...; "" when it is usable. Static string, never NULL. Loads the
 * module if that was not done yet. */
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
