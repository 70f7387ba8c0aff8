/*
 * arch_route_int.h - what the two pieces of RouteSAE share: engine/arch_route.c
 * (the model, the per-row forward, evaluation) and arch_route_train.c (the
 * host trainer). Only those two files include it; nothing here is API.
 *
 * The views and scratch of the per-row forward, and the former static
 * helpers of arch_route.c that the trainer calls, under a route_ prefix.
 */
#ifndef LG_ARCH_ROUTE_INT_H
#define LG_ARCH_ROUTE_INT_H

#include "engine/arch_route.h"

/* The shape the code below works with: lg_sae_config's plus the layer count,
 * which the weights carry (lg_sae_weights.n_layers). */
typedef struct {
    int d_in, d_sae, k, n_layers;
} route_shape;

/* Views of the parameters, float32. */
typedef struct {
    const float *W_enc, *b_enc, *W_dec, *b_dec, *W_router, *b_router;
} route_params;

/* Scratch of one row: pool [d], r [L], u [d], xin [d], pre [m], uhat [d],
 * idx [k], val [k] (the kept entries in selection order: value descending,
 * index ascending; val = max(pre, 0)). */
typedef struct {
    double *pool, *r, *u, *xin, *pre, *uhat, *val;
    int *idx;
} route_row;

/* Scratch for n rows: one route_row per row, in one allocation each. */
typedef struct {
    double *pool, *r, *u, *xin, *pre, *uhat, *val;
    int *idx;
    long n;
} route_scratch;

/* arch_route.c */
route_shape route_shape_of(const lg_sae_config *c, int n_layers);
void route_topk_row(const double *pre, const unsigned char *only, int m, int k, int *idx, double *val);
void route_scratch_release(route_scratch *s);
int route_scratch_alloc(route_scratch *s, const route_shape *cfg, long n);
route_row route_scratch_row(const route_scratch *s, const route_shape *cfg, long b);
void route_forward_rows(const route_shape *cfg, const route_params *P, const float *rows, long n,
                        const route_scratch *s);
int route_check_weights(const lg_sae_config *cfg, const lg_sae_weights *w);

#endif /* LG_ARCH_ROUTE_INT_H */
