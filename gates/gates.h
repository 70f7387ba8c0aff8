/* gates.h - version of the claim language and statistics (recorded in check results). */
#ifndef LG_GATES_H
#define LG_GATES_H
#define LG_GATES_VERSION "0.1.0"
const char *lg_gates_version(void);
#endif
