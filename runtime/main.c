#include "config.h"
#include <stdio.h>
int main(void)
{
    printf("nova-worker %s\n", PACKAGE_VERSION);
    return 0;
}
