/*
 * sched_cli - the scheduler's slots on stdin/stdout, for sched_interop.js.
 *
 * Each input line is "<after ms>\t<zone>\t<count>\t<spec>" (zone may be
 * empty: UTC). Each output line holds the next <count> slots after
 * <after ms>, space-separated (fewer when there are none within the
 * horizon), or "error: <reason>" when the spec or zone is refused.
 */
#include "config.h"
#include "sched/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLOTS 64

int main(void)
{
    char line[1024];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *fields[4];
        char *p = line;
        int n = 0;
        for (; n < 3; n++) {
            char *tab = strchr(p, '\t');
            if (tab == NULL)
                break;
            *tab = '\0';
            fields[n] = p;
            p = tab + 1;
        }
        if (n != 3) {
            printf("error: malformed input line\n");
            continue;
        }
        fields[3] = p;
        long long after = strtoll(fields[0], NULL, 10);
        long count = strtol(fields[2], NULL, 10);
        if (count < 1 || count > MAX_SLOTS)
            count = 1;
        struct nova__sched s;
        char err[NOVA__SCHED_ERRMAX];
        if (nova__sched_parse(fields[3], fields[1], &s, err, sizeof err) != 0) {
            printf("error: %s\n", err);
            continue;
        }
        int64_t slots[MAX_SLOTS];
        size_t got = nova__sched_next_n(&s, after, slots, (size_t)count);
        for (size_t i = 0; i < got; i++)
            printf(i == 0 ? "%lld" : " %lld", (long long)slots[i]);
        printf("\n");
        nova__sched_free(&s);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
