/* cmd_report.c - 'ledger report' (not implemented yet). */
#include <stdio.h>

#include "ledger/cli.h"

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ledger report: not implemented yet\n");
    return 3;
}
