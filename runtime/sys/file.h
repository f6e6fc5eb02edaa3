/*
 * file - file operations on libuv's thread pool, for include/nova/sys.h's
 * nova_file_api.
 *
 * Every open file and pending request is kept under an owner tag (the
 * plugin's host pointer): nova__file_release_owner() ends what a plugin
 * started before its shutdown(), running each pending callback at once
 * with -ECANCELED and closing its files; requests libuv still holds are
 * freed when they complete, without calling back.
 *
 * Everything here runs on the loop thread. The functions have the
 * contracts of their nova_file_api members, with the loop and the owner
 * tag made explicit.
 */
#ifndef NOVA_RUNTIME_FILE_H
#define NOVA_RUNTIME_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "nova/sys.h"

int nova__file_open(uv_loop_t *loop, const void *owner, const char *path, uint32_t flags, int mode,
                    nova_file_open_cb cb, void *arg);
int nova__file_write(nova_file *f, const void *data, size_t len, nova_file_cb cb, void *arg);
int nova__file_read(nova_file *f, size_t len, nova_file_read_cb cb, void *arg);
int nova__file_sync(nova_file *f, nova_file_cb cb, void *arg);
int nova__file_close(nova_file *f, nova_file_cb cb, void *arg);
int nova__file_rename(uv_loop_t *loop, const void *owner, const char *from, const char *to,
                      bool fsync_dir, nova_file_cb cb, void *arg);
int nova__file_unlink(uv_loop_t *loop, const void *owner, const char *path, nova_file_cb cb,
                      void *arg);
int nova__file_mkdir(uv_loop_t *loop, const void *owner, const char *path, int mode,
                     nova_file_cb cb, void *arg);

int nova__file_list(uv_loop_t *loop, const void *owner, const char *dir, nova_file_list_cb cb,
                    void *arg);

/* Ends owner's files and requests (see above); returns how many callbacks ran. */
unsigned nova__file_release_owner(const void *owner);

#endif
