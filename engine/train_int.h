/*
 * train_int.h - what the pieces of the SAE trainer share: engine/train.c
 * (set-up, accessors, weights), train_step.c (one step: forward, backward,
 * update) and train_state.c (saved state). Only those three files include
 * it; nothing here is API.
 *
 * struct lg_trainer is the trainer (train.c's essay describes its seed
 * layout); the functions below are the former static helpers of train.c
 * that another piece calls, under a train_ prefix.
 */
#ifndef LG_TRAIN_INT_H
#define LG_TRAIN_INT_H

#include "engine/train.h"

#include "engine/backend.h"

enum { P_WENC, P_BENC, P_WDEC, P_BDEC, P_LTHR, P_COUNT };

struct lg_trainer {
    const lg_backend *be;
    lg_sae_config cfg;
    lg_train_config tc;
    int S;                           /* seeds */
    int chunk;                       /* most seeds in one span (int sizes of the ops) */
    int n_pref;                      /* Matryoshka prefixes incl. d_sae; 1 otherwise */
    int pref[LG_MAX_PREFIXES + 1];   /* prefix sizes; pref[n_pref-1] = d_sae */
    int n_params;                    /* 4, or 5 with log_threshold */
    size_t numel[P_COUNT];           /* per seed */
    float *p[P_COUNT], *g[P_COUNT], *m[P_COUNT], *v[P_COUNT]; /* [S, numel] */
    float *since;     /* [S, m] steps since each latent last fired */
    /* per seed, host [S] */
    float *threshold; /* BatchTopK inference threshold, -1 = unset */
    long *step;       /* steps done */
    float *min_kept;  /* BatchTopK: smallest kept activation of the last forward */
    unsigned char *active;  /* 1 = trained by the next step */
    unsigned char *aux_on;  /* AuxK contributes in the current step */
    double *aux_denom;      /* AuxK denominator of the current step */
    int *span_lo, *span_hi; /* [S] spans of the current step */
    int n_spans;
    int *aux_lo, *aux_hi;   /* [S] spans of seeds with aux_on */
    int n_aux_spans;
    int diverged;     /* seed named by the last LG_EDIVERGED, or -1 */
    /* scratch, shapes with B = batch, d = d_in, m = d_sae */
    float *x;         /* [S, B, d] */
    float *xc;        /* [S, B, d] x - b_dec */
    float *pre;       /* [S, B, m] */
    float *acts;      /* [S, B, m] */
    float *xhat;      /* [S, B, d] */
    float *resid;     /* [n_pref, S, B, d] xhat_p - x per prefix; the last is the full one */
    float *gacts;     /* [S, B, m] */
    float *gpre;      /* [S, B, m] */
    float *gxc;       /* [S, B, d] */
    float *aux_acts;  /* [S, B, m] */
    float *aux_resid; /* [S, B, d] */
    float *dead;      /* [S, m] 1 = dead */
    float *mean_d;    /* [S, d] */
    double *host_mean;/* host [d] */
    int has_grads;    /* forward_backward ran since the last update */
    /* Sparse path (be->topk_rows_csr set, TopK/BatchTopK/Matryoshka): acts
     * as CSR per seed instead of the dense acts/gacts/gpre/aux_acts (which
     * are then not allocated). Index buffers are int32 in backend memory.
     * cap = B*k entries per seed, acap = B*aux_k_max; per seed s the CSR is
     * ptr + s*(B+1), idx/val/gval + s*cap, its CSC tptr + s*(m+1),
     * trow/tent + s*cap; the AuxK set likewise with the a-prefixed ones. */
    int sparse;
    size_t cap, acap;
    int32_t *ptr, *idx, *tptr, *trow, *tent;
    float *val, *gval;   /* acts and d loss / d pre at the entries */
    int32_t *aptr, *aidx, *atptr, *atrow, *atent;
    float *aval, *agval;
    long long *nnz;      /* host [S] entries of the last forward */
    /* Transcoder (lg_trainer_new_transcoder_multi): the encoder reads x
     * without b_dec, the reconstruction target is y [S, B, d] (the targets
     * the caller passes with each step) instead of x. */
    int transcoder;
    float *y;                   /* [S, B, d] */
    const float *host_targets;  /* the current step's targets, host [S, B, d] */
    lg_hier_bufs *hier;  /* HIER_TOPK: the budgets below k (engine/arch_hier.c); n_pref = n_ks */
    lg_trainer_extra_fn extra; /* lg_trainer_set_extra, or NULL */
    void *extra_ctx;
};

#define TRY(call)                 \
    do {                          \
        if ((err = (call)) < 0)   \
            goto out;             \
    } while (0)

/* train.c */
int train_is_batch_topk(lg_arch a);
int train_has_auxk(const lg_trainer *t);
int train_check_seed(const lg_trainer *t, int s);

/* train_step.c */
int train_step_or_grads(lg_trainer *t, const float *batches, const float *targets, lg_step_stats *out,
                        int update);

#endif /* LG_TRAIN_INT_H */
