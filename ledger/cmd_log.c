/* cmd_log.c - 'ledger log' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_log(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger log: not implemented yet\n");
    return 3;
}
