/* cmd_verify.c - 'ledger verify' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_verify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger verify: not implemented yet\n");
    return 3;
}
