/* cmd_check.c - 'ledger check' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger check: not implemented yet\n");
    return 3;
}
