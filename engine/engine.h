/*
 * engine.h - the engine's identity. LG_ENGINE_VERSION is recorded in every run
 * manifest; claims can declare results from an older engine STALE. Bump it
 * whenever a change can alter any trained weight or metric.
 */
#ifndef LG_ENGINE_H
#define LG_ENGINE_H

#define LG_ENGINE_VERSION "0.1.0"

const char *lg_engine_version(void);

#endif
