/*
 * run_layer.c - the layer rule of a study on layered data (data.layer).
 *
 * Layered data [n, L, d] (a 3-D file, or data.synthetic.layers) is what
 * RouteSAE reads: every row's L layer vectors. The other architectures read
 * 2-D rows. With data.layer = i in the spec, a single-layer architecture's
 * condition trains and is evaluated on layer i alone, [n, d]: the same rows
 * (the same train / held-out split, the same batches: batch row indices come
 * from the seed, not the data), the same steps x batch, the same width. So
 * a study can put RouteSAE and the single-layer architectures side by side
 * at matched training tokens; RouteSAE reads L vectors per token where they
 * read one (README "Architecture frontier on layered data" gives the FLOPs).
 * Without data.layer, a single-layer architecture on layered data is
 * refused (arch_route.c, lg_route_cell_config).
 *
 * How: prepare_data (run.c) calls run_layer_prepare once: it copies layer i
 * into an in-memory dataset (lg_dataset_layer_view) and computes its
 * held-out rows and training mean exactly as for the data itself. Around
 * each condition (and each re-evaluated cell of verify --recompute),
 * run_layer_enter swaps that view into run_ctx's ds, d, layers, eval_x,
 * mean_init and median_init when the condition's arch is not routesae, and
 * run_layer_leave swaps it back: the rest of the runner needs no change.
 * Invariant: outside an enter/leave pair, run_ctx holds the layered data.
 */
#include <string.h>

#include "base/base.h"
#include "engine/run_int.h"

int run_layer_prepare(run_ctx *rc)
{
    double *mean = NULL;
    int i, err = 0;
    if (rc->s->data_layer < 0)
        return 0;
    if ((err = lg_dataset_layer_view(rc->ds, rc->s->data_layer, &rc->lv.ds)) < 0)
        return lg_error_wrap("%s", rc->s->path);
    rc->lv.d = lg_dataset_dim(rc->lv.ds);
    rc->lv.layers = 0;
    if (!(rc->lv.eval_x = lg_malloc((size_t)rc->n_eval * rc->lv.d * sizeof(float))) ||
        !(rc->lv.mean_init = lg_malloc((size_t)rc->lv.d * sizeof(float))) ||
        !(mean = lg_malloc((size_t)rc->lv.d * sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < rc->n_eval; i += 4096) {
        int n = rc->n_eval - i < 4096 ? (int)(rc->n_eval - i) : 4096;
        if ((err = lg_dataset_gather(rc->lv.ds, rc->eval_rows + i, n, rc->lv.eval_x + (size_t)i * rc->lv.d)) < 0)
            goto out;
    }
    if ((err = lg_dataset_mean(rc->lv.ds, rc->train_rows, rc->n_train, mean)) < 0)
        goto out;
    for (i = 0; i < rc->lv.d; i++)
        rc->lv.mean_init[i] = (float)mean[i];
out:
    lg_free(mean);
    return err;
}

static void swap_view(run_ctx *rc)
{
    lg_dataset *ds = rc->ds;
    float *ex = rc->eval_x, *mi = rc->mean_init, *md = rc->median_init;
    int d = rc->d, layers = rc->layers;
    rc->ds = rc->lv.ds;
    rc->eval_x = rc->lv.eval_x;
    rc->mean_init = rc->lv.mean_init;
    rc->median_init = rc->lv.median_init;
    rc->d = rc->lv.d;
    rc->layers = rc->lv.layers;
    rc->lv.ds = ds;
    rc->lv.eval_x = ex;
    rc->lv.mean_init = mi;
    rc->lv.median_init = md;
    rc->lv.d = d;
    rc->lv.layers = layers;
    rc->lv.active = !rc->lv.active;
}

void run_layer_enter(run_ctx *rc, const lg_condition *c)
{
    if (rc->lv.ds && !rc->lv.active && c->p.arch != LG_ARCH_ROUTESAE)
        swap_view(rc);
}

void run_layer_leave(run_ctx *rc)
{
    if (rc->lv.active)
        swap_view(rc);
}

void run_layer_release(run_ctx *rc)
{
    run_layer_leave(rc);
    lg_dataset_free(rc->lv.ds);
    lg_free(rc->lv.eval_x);
    lg_free(rc->lv.mean_init);
    lg_free(rc->lv.median_init);
    memset(&rc->lv, 0, sizeof rc->lv);
}
