/*
 * blas_lazy.h - OpenBLAS is loaded on first use (engine/blas_lazy.c), not at
 * process start. The engine calls cblas_* as usual (from <cblas.h>).
 */
#ifndef LG_BLAS_LAZY_H
#define LG_BLAS_LAZY_H

/* Loads OpenBLAS now if not done yet: 0, or LG_EINTERNAL naming the library
 * and the dlerror() reason. Call before work that should fail cleanly. */
int lg_blas_load(void);

/* The OPENBLAS_CORETYPE the loader sets when the user has not (see
 * blas_lazy.c): "Cooperlake" or "SkylakeX" on Intel CPUs with AVX-512 that
 * OpenBLAS 0.3.21 may not recognise, else NULL (OpenBLAS detects). Static. */
const char *lg_blas_coretype(void);

#endif
