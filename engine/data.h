/*
 * data.h - the data sources the trainer and the metrics consume: a dataset
 * is n rows of d floats, read from an activation file, held in memory, or
 * generated synthetically from a known ground-truth dictionary.
 *
 * Every dataset is validated when it is made: 2-D, n >= 1, d >= 1, every
 * value finite (the first NaN/Inf is reported with its row and column).
 * Reads go through lg_dataset_gather, which converts the source's element
 * type (f32, f16, bf16, f64) to float32 row by row; a file is mmap'ed and
 * never copied whole.
 *
 * Synthetic generative model (lg_dataset_synthetic), fully determined by the
 * config and the seed:
 *   truth D [n_features, d]: row j = g_j / |g_j|, g_j ~ N(0, I_d), drawn in
 *     order from the Philox stream (seed, LG_STREAM_DICT).
 *   feature weights w_j = (j + 1)^(-zipf_exponent) (uniform when 0), so
 *     feature 0 is the most frequent.
 *   sample i draws from its own stream (seed, LG_STREAM_DATA + ((i+1) << 8)),
 *     so any row can be regenerated alone (lazily, in parallel):
 *       S ~ Poisson(active_mean), capped at n_features;
 *       S distinct features, each drawn with probability proportional to w_j
 *         among those not yet chosen (rejection of repeats; after 64*(S+1)
 *         rejected draws the row keeps the features it has);
 *       coefficient c_j = |magnitude_mean + magnitude_std * z|, z ~ N(0,1);
 *       x_i = sum_j c_j D_j + noise_std * N(0, I_d), accumulated in double.
 *   Superposition: n_features > d (more directions than dimensions).
 *
 * Digest (lg_dataset_digest), a SHA-256 hex string identifying the data:
 *   file:      the SHA-256 of the file's bytes (sha256sum of the file);
 *   memory:    the SHA-256 of the float32 .npy file holding the same [n, d]
 *              array (lg_npy_encode_f32), i.e. sha256sum of the .npy that
 *              lg_npy_write_f32 would write: shape and floats both count;
 *   synthetic: the SHA-256 of a canonical text of the config and seed
 *              ("ledger-synth-v1\nd=...\n...seed=...\n", see data.c).
 */
#ifndef LG_DATA_H
#define LG_DATA_H

#include <stdint.h>

#include "artifacts/safetensors.h"

typedef struct lg_dataset lg_dataset;

/* Open a .npy or .safetensors file (recognised by its magic bytes, not its
 * name) holding a 2-D [n, d] array of F32/F16/BF16/F64 (or a 3-D
 * [n, L, d'] one, see lg_dataset_layers). tensor_name picks
 * the tensor of a safetensors file; NULL is allowed when it holds exactly
 * one. Scans every value once (streamed) for NaN/Inf. Errors: LG_EINPUT
 * naming the file (and row/column for a non-finite value), LG_ENOTFOUND,
 * LG_EIO. *out is freed with lg_dataset_free. */
int lg_dataset_open_file(const char *path, const char *tensor_name, lg_dataset **out);
/* x is [n, d] row-major float32. copy = 1 copies it; copy = 0 borrows it
 * (x must outlive the dataset). Values must be finite. */
int lg_dataset_from_memory(const float *x, int64_t n, int d, int copy, lg_dataset **out);

int64_t lg_dataset_rows(const lg_dataset *ds);
int lg_dataset_dim(const lg_dataset *ds);
/* Layered data (RouteSAE, engine/arch_route.h): a 3-D .npy or safetensors tensor
 * [n, L, d'] opens as n rows of dim L * d' (each row the L layers' vectors,
 * row-major) and this returns L; a 2-D source returns 0. Everything else
 * (gather, mean, split, digest) treats the rows as flat. */
int lg_dataset_layers(const lg_dataset *ds);
/* One layer of layered data (engine/data_layer.c): *out is a new in-memory
 * 2-D dataset [n, d'] holding layer `layer` of every row of ds (converted to
 * float32; the rows are copied, n * d' floats). LG_EINPUT when ds is not
 * layered or layer is not in [0, L). Free with lg_dataset_free. */
int lg_dataset_layer_view(const lg_dataset *ds, int layer, lg_dataset **out);
lg_dtype lg_dataset_dtype(const lg_dataset *ds);    /* element type of the source */
/* "file", "memory" or "synthetic". */
const char *lg_dataset_kind(const lg_dataset *ds);
/* The file path, or NULL for memory and synthetic data (owned by ds). */
const char *lg_dataset_path(const lg_dataset *ds);

/* out [n, d] = rows[0..n) of the dataset as float32. Row indices must be in
 * [0, rows): LG_EINPUT otherwise. */
int lg_dataset_gather(const lg_dataset *ds, const int64_t *rows, int n, float *out);
/* out [d] = mean of the given rows (rows == NULL: all rows, n ignored),
 * accumulated in double. n >= 1. */
int lg_dataset_mean(const lg_dataset *ds, const int64_t *rows, int64_t n, double *out);
/* out [d] = geometric median of the given rows (rows == NULL: all rows) by
 * Weiszfeld's iteration started at the mean: y <- sum_i w_i x_i / sum_i w_i
 * with w_i = 1 / max(|x_i - y|, 1e-12 * (1 + |y|)); at most `iters`
 * iterations (0 gives the mean), stopping early once a step moves y by less
 * than 1e-9 * (1 + |y|). Computed in double. */
int lg_dataset_geometric_median(const lg_dataset *ds, const int64_t *rows, int64_t n, int iters, float *out);
/* hex = 64 lowercase hex digits + NUL; see the top of this file. */
int lg_dataset_digest(const lg_dataset *ds, char hex[65]);
void lg_dataset_free(lg_dataset *ds);

/* ---- synthetic data ----------------------------------------------------------- */

typedef struct {
    int d;                  /* dimension, 1..65536 */
    int n_features;         /* ground-truth features, >= 1 */
    int64_t n_samples;      /* rows, >= 1; n_samples * d <= 2^31 */
    double active_mean;     /* mean number of active features per sample, (0, min(n_features, 512)] */
    double zipf_exponent;   /* >= 0; 0 = uniform feature frequencies */
    double magnitude_mean;  /* > 0 */
    double magnitude_std;   /* >= 0 */
    double noise_std;       /* >= 0 */
    uint64_t seed;
    /* Layered data (data_layer.c's model, below): 0 = 2-D rows [d] (the
     * model above); L in 2..64 = rows [L, d], each layer a different mix of
     * the SAME features. layer_leak in [0, 1] (used only when layers > 0). */
    int layers;
    double layer_leak;
} lg_synth_config;

/* Layered synthetic data (layers = L >= 2): the features, coefficients and
 * the row's RNG stream are drawn exactly as above (S, then each feature and
 * its coefficient c_j); then layer l = 0..L-1 of the row is
 *     x_l = sum_j c_j g_{l,j} D_j + noise_std * N(0, I_d)
 * with its own noise, drawn after all features, layer 0's first. The gain
 * g_{l,j} = 1 when l = j mod L (feature j's "home" layer) and layer_leak
 * otherwise: every layer carries every feature along the same direction D_j,
 * at full strength in its home layer and at layer_leak elsewhere. So the
 * truth D [n_features, d] is the same for every layer and for any convex
 * mix sum_l r_l x_l (RouteSAE's routed input): ground-truth recovery is
 * defined for every architecture. With layer_leak = 1 layer 0 is the 2-D
 * generator's row bit for bit. Rows are [L * d] (lg_dataset_layers = L);
 * n_samples * d * L <= 2^31. The digest's canonical text gains the lines
 * "layers=L" and "layer_leak=..." (only when layers > 0, so 2-D digests are
 * unchanged). */

/* Generate the dataset in memory. truth_out (may be NULL) receives a copy of
 * the ground-truth dictionary [n_features, d], unit rows; caller frees with
 * lg_free. Config errors are LG_EINPUT naming the field ("synthetic: d: ..."). */
int lg_dataset_synthetic(const lg_synth_config *cfg, lg_dataset **out, float **truth_out);

/* The generator itself, for lazy or partial generation and for tests. */
typedef struct lg_synth lg_synth;
int lg_synth_new(const lg_synth_config *cfg, lg_synth **out);
const float *lg_synth_truth(const lg_synth *s);   /* [n_features, d], owned by s */
/* Row i (0 <= i < n_samples) into x [d] ([layers * d] for layered data). If active != NULL (room for
 * n_features ints) it receives the active feature indices in draw order and
 * coef (may be NULL; room for n_features floats) their coefficients;
 * *n_active (may be NULL) their count. Thread-safe on a const lg_synth. */
int lg_synth_row(const lg_synth *s, int64_t i, float *x, int *active, float *coef, int *n_active);
void lg_synth_free(lg_synth *s);
/* Row width of the generator's rows: d, or layers * d for layered data. */
int lg_synth_row_width(const lg_synth_config *cfg);
/* Validate a config: 0 or LG_EINPUT naming the field. */
int lg_synth_config_check(const lg_synth_config *cfg);

/* ---- held-out split ----------------------------------------------------------- */

/* Split rows 0..n-1 into train and eval sets: a Fisher-Yates permutation
 * from the stream (seed, LG_STREAM_SPLIT); its first n_eval entries are the
 * eval rows, the rest train; both returned sorted ascending. n_eval =
 * round(n * eval_fraction), at least 1 when eval_fraction > 0, and at most
 * n - 1 so training keeps a row. eval_fraction in [0, 1); n >= 1. Both
 * arrays are allocated (non-NULL even when empty); caller frees with lg_free. */
int lg_dataset_split(int64_t n, double eval_fraction, uint64_t seed, int64_t **train_rows, int64_t *n_train,
                     int64_t **eval_rows, int64_t *n_eval);

#endif
