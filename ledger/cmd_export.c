/* cmd_export.c - 'ledger export' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_export(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger export: not implemented yet\n");
    return 3;
}
