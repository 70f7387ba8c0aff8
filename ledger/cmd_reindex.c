/* cmd_reindex.c - 'ledger reindex' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_reindex(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger reindex: not implemented yet\n");
    return 3;
}
