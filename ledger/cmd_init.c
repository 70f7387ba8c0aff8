/* cmd_init.c - 'ledger init' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger init: not implemented yet\n");
    return 3;
}
