/* gates.c - gates identity (see gates.h). */
#include "gates/gates.h"

const char *lg_gates_version(void) { return LG_GATES_VERSION; }
