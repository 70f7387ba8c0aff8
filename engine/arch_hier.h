/*
 * arch_hier.h - HierarchicalTopK ("hierarchical_topk"): one SAE trained at
 * several sparsity budgets at once with a nested TopK loss.
 *
 * Budgets ks = [k_1 < k_2 < ... < k_J] (sae.ks; sae.h's lg_sae_config.ks,
 * k = k_J). With pre [B, d_sae] as in sae.h and TopK_k the per-row top-k of
 * backend.h (strict order: value descending, then lower index; only positive
 * entries; ReLU'd), the activations at budget j are
 *   A_j = TopK_{k_j}(pre)                                      [B, d_sae]
 * Because the order is strict and total, A_j keeps exactly the first k_j of
 * the (at most k_J) entries of A_J ranked by that order: the budgets are
 * nested, supp(A_1) in supp(A_2) in ... in supp(A_J).
 *   xhat_j = A_j W_dec + b_dec;  mse_j = (1/B) sum_b ||x_b - xhat_j,b||^2
 *   recon  = (1/J) sum_j mse_j                  (equal weights 1/J)
 *   loss   = recon + aux
 * aux is the AuxK term of train.h computed exactly as for TopK, on the
 * residual of the largest budget (e = x - xhat_J). The reported mse, fvu and
 * l0 of a training step are those of budget J. Inference is TopK with
 * k = k_J; evaluation at budget j is TopK with k = k_j on the same weights.
 *
 * Gradients (s = 2/(B J), r_j = xhat_j - x):
 *   gW_dec = s sum_j A_j^T r_j;  gb_dec = s sum_j colsum(r_j) - (encoder term)
 *   gpre   = s sum_j mask(A_j) . (r_j W_dec^T)  (+ AuxK's, as TopK)
 * and the encoder gradients from gpre as for every architecture (train.c).
 *
 * Two implementations, as for the other top-k architectures: a dense one
 * (the readable oracle: J dense [B, d_sae] activation matrices, J GEMMs each
 * way) and a sparse one on a backend with the optional CSR ops of backend.h
 * (one CSR per budget, built with topk_rows_csr at k_j; the decoder and
 * encoder work of budget j touches only its B*k_j entries, so a step costs
 * about sum_j k_j / k_J times the sparse work of TopK at k_J).
 *
 * The functions below act on ONE seed's buffers (the trainer calls them per
 * seed); the trainer (train.c) owns everything else. The CUDA backend does
 * not train this architecture (lg_hier_check_backend).
 */
#ifndef LG_ARCH_HIER_H
#define LG_ARCH_HIER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/sae.h"

/* The ks rule of sae.h (called by lg_sae_config_check for HIER_TOPK). */
int lg_hier_config_check(const lg_sae_config *cfg);

/* LG_EINPUT when `be` cannot train hierarchical_topk: the CUDA backend
 * (not implemented there: its message names the architecture and says to
 * use --backend cpu). */
int lg_hier_check_backend(const lg_backend *be);

/* One budget's CSR of one seed (views into backend buffers, see backend.h's
 * sparse group): ptr [B+1], idx/val/gval [B*k_j], its CSC tptr [m+1],
 * trow/tent [B*k_j]; nnz = entries (host). */
typedef struct {
    int32_t *ptr, *idx, *tptr, *trow, *tent;
    float *val, *gval;
    long long nnz;
} lg_hier_csr;

/* The trainer's extra buffers for the budgets below k_J, for S seeds:
 * dense: A_j [J-1, S, B, m]; sparse: the CSRs of budgets 1..J-1. */
typedef struct lg_hier_bufs lg_hier_bufs;

int lg_hier_bufs_new(const lg_backend *be, const lg_sae_config *cfg, int S, int B, int sparse,
                     lg_hier_bufs **out);
void lg_hier_bufs_free(lg_hier_bufs *h); /* accepts NULL */
/* Bytes of those buffers per seed (dense path: the upper bound). */
double lg_hier_bytes_per_seed(const lg_sae_config *cfg, int B);
/* Seed s's budgets 0..J-2: A[j] (dense) or C[j] (sparse), arrays of J-1. */
void lg_hier_dense_views(lg_hier_bufs *h, int s, float **A);
lg_hier_csr *lg_hier_sparse_views(lg_hier_bufs *h, int s); /* [J-1] entries */

/* ---- one seed's forward and backward (B rows, d = d_in, m = d_sae) -------- */

/* Dense forward: A[j] = TopK_{k_j}(pre) for j < J-1 (A[J-1], the trainer's
 * acts, is already TopK_{k_J}(pre)); then for every j: xhat = A[j] W_dec +
 * b_dec and resid[j] = xhat - x. xhat [B, d] is scratch (holds budget J's
 * at the end). */
int lg_hier_dense_forward(const lg_backend *be, const lg_sae_config *cfg, int B, const float *pre,
                          float *const *A, const float *W_dec, const float *b_dec, const float *x,
                          float *xhat, float *const *resid);
/* Dense backward of the reconstruction term, scale sc = 2/(B J):
 * gW_dec = sc sum_j A[j]^T resid[j]; gb_dec = sc sum_j colsum(resid[j]);
 * gpre = sum_j mask(A[j]) . (sc resid[j] W_dec^T), with gacts [B, m] as
 * scratch. All three outputs are overwritten. */
int lg_hier_dense_backward(const lg_backend *be, const lg_sae_config *cfg, int B, float sc,
                           float *const *A, const float *const *resid, const float *W_dec,
                           float *gacts, float *gpre, float *gW_dec, float *gb_dec);

/* Sparse forward: C[j] = topk_rows_csr(pre, k_j) and its CSC for j < J-1
 * (C[J-1] is the trainer's, already built); then xhat and resid[j] as in
 * the dense forward, xhat by gathering the active decoder rows. */
int lg_hier_sparse_forward(const lg_backend *be, const lg_sae_config *cfg, int B, const float *pre,
                           lg_hier_csr *C, const float *W_dec, const float *b_dec, const float *x,
                           float *xhat, float *const *resid);
/* Sparse backward of the reconstruction term: gW_dec and gb_dec as the
 * dense ones (overwritten), C[j].gval = sc (resid[j] W_dec^T) at C[j]'s
 * entries. */
int lg_hier_sparse_backward(const lg_backend *be, const lg_sae_config *cfg, int B, float sc,
                            lg_hier_csr *C, const float *const *resid, const float *W_dec,
                            float *gW_dec, float *gb_dec);
/* The encoder gradients of the reconstruction term from every C[j].gval:
 * gb_enc = sum_j colsum, gW_enc [d, m] = sum_j xc^T gval_j (overwritten;
 * the trainer adds AuxK's after). */
int lg_hier_sparse_encoder(const lg_backend *be, const lg_sae_config *cfg, lg_hier_csr *C,
                           const float *xc, float *gb_enc, float *gW_enc);

/* ks as text "8,16,32" (the weights files' metadata "ks"; "" when n = 0),
 * truncated to fit buf. */
void lg_hier_ks_format(const int *ks, int n, char *buf, size_t len);
/* Parses that text into cfg->ks / n_ks (LG_EINPUT naming `label` when it is
 * not 1 to LG_SAE_MAX_KS comma-separated positive integers). */
int lg_hier_ks_parse(const char *text, const char *label, lg_sae_config *cfg);

/* ---- evaluation ------------------------------------------------------------
 * Per-budget metrics of a trained HierarchicalTopK SAE on rows [n, d_in]:
 * for each k_j, the recon.h metrics of TopK at k = k_j, written into
 * `metrics` as mse_k<K>, fvu_k<K>, explained_variance_k<K>, l0_k<K>,
 * dead_frac_k<K>, dense_frac_k<K> (e.g. fvu_k8). Nothing is written for
 * other architectures. */
int lg_hier_eval_budgets(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                         const float *rows, long n, double dense_threshold, cJSON *metrics);

#endif
