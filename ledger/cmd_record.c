/* cmd_record.c - 'ledger record' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_record(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger record: not implemented yet\n");
    return 3;
}
