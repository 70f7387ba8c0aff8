/* cmd_key.c - 'ledger key' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_key(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger key: not implemented yet\n");
    return 3;
}
