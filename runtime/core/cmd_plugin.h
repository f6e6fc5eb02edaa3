/*
 * cmd_plugin - `nova-worker NAME ...` for a command a plugin declares
 * (struct nova_command, ABI 1.3).
 */
#ifndef NOVA_RUNTIME_CMD_PLUGIN_H
#define NOVA_RUNTIME_CMD_PLUGIN_H

#include <stdbool.h>
#include <stdio.h>

struct nova__config;

/* Finds the installed plugin that declares command argv[0] and runs it
 * (see struct nova_command). cfg may be NULL (no config file: defaults and
 * the environment). Returns the exit code, or -1 when no installed plugin
 * declares argv[0] (nothing printed: the caller reports an unknown
 * command). */
int nova__cmd_plugin(const struct nova__config *cfg, int argc, char **argv);

/* Prints "  NAME  SUMMARY (plugin P)" for every command of the installed
 * plugins in dir, for the CLI's usage text. */
void nova__cmd_plugin_list(const char *dir, FILE *out);

#endif
