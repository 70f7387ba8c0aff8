/* cmd_run.c - 'ledger run' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger run: not implemented yet\n");
    return 3;
}
