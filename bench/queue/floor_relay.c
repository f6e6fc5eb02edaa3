/*
 * floor_relay - the relay of bench/queue/floor.js in C: BLPOP floor:q, then
 * XADD floor:ev * v <stamp>, until it pops "end". Blocking hiredis calls,
 * one process, nothing else: the least a worker can do per job.
 *
 * cc -O2 -o floor_relay floor_relay.c -lhiredis; floor_relay PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

int main(int argc, char **argv)
{
    redisContext *c;
    if (argc != 2) {
        fprintf(stderr, "usage: floor_relay PORT\n");
        return 2;
    }
    c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) {
        fprintf(stderr, "floor_relay: cannot connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    for (;;) {
        redisReply *r = redisCommand(c, "BLPOP floor:q 0");
        redisReply *x;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            fprintf(stderr, "floor_relay: BLPOP failed\n");
            return 1;
        }
        if (strcmp(r->element[1]->str, "end") == 0) {
            freeReplyObject(r);
            break;
        }
        x = redisCommand(c, "XADD floor:ev * v %b", r->element[1]->str, (size_t)r->element[1]->len);
        freeReplyObject(r);
        if (!x || x->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "floor_relay: XADD failed\n");
            return 1;
        }
        freeReplyObject(x);
    }
    redisFree(c);
    return 0;
}
