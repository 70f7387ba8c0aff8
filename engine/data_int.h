/*
 * data_int.h - what the two pieces of the dataset code share: engine/data.c
 * (files, memory arrays, reads, digest, split) and data_synth.c (synthetic
 * data). Only those two files include it; nothing here is API.
 */
#ifndef LG_DATA_INT_H
#define LG_DATA_INT_H

#include "engine/data.h"

typedef enum { DS_FILE, DS_MEMORY, DS_SYNTH } ds_kind;

struct lg_dataset {
    ds_kind kind;
    int64_t n;
    int d;
    int layers;                /* 3-D [n, L, d'] source: L (rows are [L * d'], d = L * d'); 2-D: 0 */
    lg_dtype dtype;
    const unsigned char *rows; /* [n, d] elements of dtype */
    float *owned;              /* memory copy or synthetic rows (lg_free) */
    void *map;                 /* file mapping */
    size_t map_len;
    lg_st_file *st;            /* safetensors view of the mapping */
    char *path;
    lg_synth_config synth;     /* kind == DS_SYNTH */
};

/* data.c */
int data_ds_new(ds_kind kind, lg_dataset **out);

#endif /* LG_DATA_INT_H */
