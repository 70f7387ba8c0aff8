/* cmd_import.c - 'ledger import' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_import(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger import: not implemented yet\n");
    return 3;
}
