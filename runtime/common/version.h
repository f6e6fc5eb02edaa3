/* Build identity shared by the CLI, logs and /metrics. */
#ifndef NOVA_RUNTIME_VERSION_H
#define NOVA_RUNTIME_VERSION_H
#include "config.h"
#define NOVA_VERSION PACKAGE_VERSION
#endif
