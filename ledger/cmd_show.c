/* cmd_show.c - 'ledger show' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_show(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger show: not implemented yet\n");
    return 3;
}
