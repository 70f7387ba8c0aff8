/*
 * study_int.h - what the two pieces of the study spec parser share:
 * engine/study.c (the spec's sections, the entry points, the plan text) and
 * study_params.c (the parameter table, defaults, grid expansion). Only those
 * two files include it; nothing here is API.
 */
#ifndef LG_STUDY_INT_H
#define LG_STUDY_INT_H

#include <cjson/cJSON.h>

#include "engine/study.h"

/* study_params.c */
/* Defaults of a condition (the training ones are the trainer defaults). */
void study_params_default(lg_cond_params *p);
/* Apply every key of a "sae" or "train" section to p. */
int study_apply_section(const char *file, const char *section, const cJSON *obj, lg_cond_params *p);
/* The conditions of the grid over base into s->conds (one "default" condition
 * without grid keys), validated, plus their random-init twins when asked. */
int study_expand_grid(const char *file, const cJSON *grid, const lg_cond_params *base, lg_study *s);

/* data.layer (the layer single-layer archs read on layered data): sets
 * s->data_layer (-1 when absent); refused with data.target or data.ood. */
int study_parse_layer(const char *file, const cJSON *data, lg_study *s);
/* data.synthetic.layers and layer_leak into s->synth, and data.layer checked
 * against them (called after study_parse_layer). */
int study_parse_synth_layers(const char *file, const cJSON *syn, lg_study *s);

#endif /* LG_STUDY_INT_H */
