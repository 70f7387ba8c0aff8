/*
 * checkpoint.h - a trainer's full state (train.h's lg_train_state: weights,
 * Adam moments, step, dead-latent clocks, BatchTopK threshold) as a
 * safetensors file, so that training can stop and resume bit-identically
 * across processes. Arrays are stored as F32 tensors under their state names;
 * metadata "format" = "ledger-train-state-1".
 */
#ifndef LG_CHECKPOINT_H
#define LG_CHECKPOINT_H

#include "engine/train.h"

/* Writes st to path atomically. */
int lg_checkpoint_write(const char *path, const lg_train_state *st);
/* Reads a checkpoint into out (allocated here; release with
 * lg_train_state_release). LG_EINPUT naming the file for anything that is not
 * a ledger train state (wrong format tag, non-F32 tensor, more than 2 dims). */
int lg_checkpoint_read(const char *path, lg_train_state *out);

#endif
