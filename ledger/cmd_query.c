/* cmd_query.c - 'ledger query' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_query(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger query: not implemented yet\n");
    return 3;
}
