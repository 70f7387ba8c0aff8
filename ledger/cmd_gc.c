/* cmd_gc.c - 'ledger gc' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_gc(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger gc: not implemented yet\n");
    return 3;
}
