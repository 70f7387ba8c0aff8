/* engine.c - engine identity (see engine.h). */
#include "engine/engine.h"

const char *lg_engine_version(void) { return LG_ENGINE_VERSION; }
