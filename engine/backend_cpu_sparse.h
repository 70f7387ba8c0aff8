/*
 * backend_cpu_sparse.h - internal to the CPU backend: the sparse training ops
 * (engine/backend_cpu_sparse.c) that backend_cpu.c puts in its table, and the
 * selection helper they share with it. Semantics: backend.h.
 */
#ifndef LG_BACKEND_CPU_SPARSE_H
#define LG_BACKEND_CPU_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

/* OpenMP threads the CPU ops use (1 without OpenMP). */
int lg_cpu_threads(void);
/* C = alpha op(A) op(B) + beta C through OpenBLAS (backend.h gemm, K > 0):
 * the larger of M and N cut into blocks whose size depends on the shape
 * only, one single-threaded sgemm per block, blocks spread over the OpenMP
 * threads. Every element of C is therefore computed by the same sgemm call
 * whatever the thread count. */
void lg_cpu_gemm_blocks(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc);
/* Rows (or columns) of C per block of lg_cpu_gemm_blocks for the larger
 * dimension dim of C: a function of the shape only. */
int lg_cpu_gemm_block_size(int dim);
/* The top-k of one row under (value desc, index asc) among its positive
 * entries with mask[c] != 0 (mask may be NULL), in column order in
 * oi/ov [k]; returns their count (topk_rows_csr's row). Scratch f [cols],
 * fi [cols]. */
int lg_cpu_topk_row(const float *v, const float *mask, int cols, int k, float *f, int32_t *fi, int32_t *oi,
                    float *ov);
/* CSR offsets from the per-row counts in ptr[1..rows] of rows written at
 * idx/val + r*slot, the rows moved down to their offsets; returns nnz. */
long long lg_cpu_csr_compact(int32_t *ptr, int32_t *idx, float *val, int rows, int slot);
/* backend.h encode_topk_csr (engine/backend_cpu_encode.c). */
int lg_cpu_encode_topk_csr(const lg_backend *be, const float *xc, const float *W_enc, const float *b_enc,
                           int rows, int d, int cols, int k, float *pre, int keep_pre, int32_t *ptr,
                           int32_t *idx, float *val, long long *nnz);

/* backend_cpu.c's quickselect: idx[0..k) = the k best of idx[0..n) under
 * (value desc, index asc), in no particular order. */
void lg_cpu_sel_topk(const float *v, uint32_t *idx, size_t n, size_t k);

/* backend.h topk_rows (dense acts) with topk_rows_csr's selection: the same
 * kept set as lg_cpu_sel_topk's, rows spread over the OpenMP threads. */
int lg_cpu_topk_rows_dense(const float *pre, const float *col_mask, float *acts, int rows, int cols, int k);
int lg_cpu_topk_rows_csr(const lg_backend *be, const float *pre, const float *col_mask, int rows,
                         int cols, int k, int32_t *ptr, int32_t *idx, float *val, long long *nnz);
int lg_cpu_topk_batch_csr(const lg_backend *be, const float *pre, int rows, int cols, size_t keep,
                          int32_t *ptr, int32_t *idx, float *val, long long *nnz, float *min_kept);
int lg_cpu_csr_transpose(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                         int cols, int32_t *tptr, int32_t *trow, int32_t *tent);
int lg_cpu_csr_gather_rows(const lg_backend *be, const int32_t *ptr, const int32_t *idx,
                           const float *val, int rows, int lo, int hi, const float *W, int d,
                           float *out);
int lg_cpu_csr_row_dots(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                        int lo, int hi, const float *R, const float *W, int d, float alpha,
                        float beta, float *out);
int lg_cpu_csc_scatter_rows(const lg_backend *be, const int32_t *tptr, const int32_t *trow,
                            const int32_t *tent, const float *val, int lo, int hi, const float *R,
                            int d, float alpha, float beta, float *out, long long ld_row,
                            long long ld_col);
int lg_cpu_csc_val_sum(const lg_backend *be, const int32_t *tptr, const int32_t *tent,
                       const float *val, int cols, float alpha, float beta, float *out);
int lg_cpu_csc_fired_update(const lg_backend *be, const int32_t *tptr, int cols, float *since);

#endif
