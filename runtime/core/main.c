#include "config.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/svc.h"
#include "core/daemon.h"
#include "core/cmd_plugin.h"
#include "core/cmd_schedules.h"
#include "core/loader.h"
#include "pg/cmd_migrate.h"
#include "queue/cmd_queue.h"
#include "stellar/cmd_stellar.h"
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"
#include "stellar/stellar_xdr.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct command *find_command(const char *name);

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: nova-worker [COMMAND] [OPTIONS]\n"
            "\n"
            "Runs Nova Rewards background jobs from BullMQ queues with .so plugins.\n"
            "\n"
            "Commands:\n"
            "  run [-c FILE]          run in the foreground (the default command)\n"
            "  check [--print]        validate the config and load every enabled plugin\n"
            "  plugins [--help NAME]  list installed plugins, or describe one\n"
            "  keys                   list every core config key with default and env\n"
            "  migrate [--status]     apply the SQL migrations to [postgres] dsn\n"
            "  queue COMMAND ...      inspect and repair BullMQ queues: stats, list, show,\n"
            "                         add, retry, remove, clean, promote, pause, resume,\n"
            "                         replay (queue --help)\n"
            "  schedules [run NAME]   list the plugins' schedules, or run one now\n"
            "  stellar check          check the distribution account, asset and network\n"
            "  stellar sign-payment   build and sign a payment offline (see stellar --help)\n"
            "  NAME ...               a command of an installed plugin (listed below)\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE      config file (default %s)\n"
            "  -h, --help             show help (also: nova-worker COMMAND --help)\n"
            "  -V, --version          show the version\n",
            NOVA_CONFIG_FILE);
    const char *dir = getenv("NOVA_PLUGIN_DIR") ? getenv("NOVA_PLUGIN_DIR") : NOVA_PLUGIN_PATH;
    fprintf(out, "\nCommands of the plugins in %s:\n", dir);
    nova__cmd_plugin_list(dir, out);
}

/* Parses the options shared by the config-reading commands. Returns the
 * index of the first non-option argument, or -1 after printing help/errors
 * (then *exit_code is set). */
static int parse_common(int argc, char **argv, const char *help, const char **config,
                        int *exit_code)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *config = getenv("NOVA_WORKER_CONFIG") ? getenv("NOVA_WORKER_CONFIG") : NOVA_CONFIG_FILE;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            *config = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            *exit_code = 0;
            return -1;
        default:
            fprintf(stderr, "Try 'nova-worker %s --help'.\n", argv[0]);
            *exit_code = 2;
            return -1;
        }
    }
    return optind;
}

static int cmd_run(int argc, char **argv)
{
    const char *config;
    int code = 0;
    int first = parse_common(argc, argv,
                             "Usage: nova-worker run [-c FILE]\n\n"
                             "Runs the worker in the foreground until SIGTERM or SIGINT.\n"
                             "SIGHUP reloads the configuration. Logs are JSON lines on stderr.\n",
                             &config, &code);
    if (first < 0)
        return code;
    if (first < argc) {
        fprintf(stderr, "nova-worker run: unexpected argument '%s'\n", argv[first]);
        return 2;
    }
    return nova__daemon_run(config);
}

static int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"print", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config =
        getenv("NOVA_WORKER_CONFIG") ? getenv("NOVA_WORKER_CONFIG") : NOVA_CONFIG_FILE;
    bool print = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'p':
            print = true;
            break;
        case 'h':
            fputs("Usage: nova-worker check [-c FILE] [--print]\n\n"
                  "Validates the configuration and loads every enabled plugin\n"
                  "without starting work. Exits 0 when everything is valid, or 1\n"
                  "with FILE:LINE: message for each problem (every one of them,\n"
                  "on standard error).\n\n"
                  "  --print   write the effective value of every key of the core\n"
                  "            sections and of each enabled plugin's section, with\n"
                  "            where it came from, one per line, to standard output:\n"
                  "              [SECTION] KEY = VALUE   # ORIGIN\n"
                  "            ORIGIN is FILE:LINE, KEY_file PATH (FILE:LINE),\n"
                  "            credential NAME, env NAME, default or unset, followed\n"
                  "            by \", invalid\" for a rejected value. Secrets read ***\n"
                  "            (a URL keeps its scheme, user and host).\n",
                  stdout);
            return 0;
        default:
            fprintf(stderr, "Try 'nova-worker %s --help'.\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nova-worker check: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return nova__daemon_check(config, print, stdout, stderr);
}

static int describe_plugin(const char *dir, const char *name)
{
    char err[NOVA_CONFIG_ERRMAX];
    struct nova__plugin *p = NULL;
    if (nova__plugin_open(dir, name, &p, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s %s (ABI %u.%u)\n  %s\n  %s\n\n[plugin %s]\n  enabled                yes/no    "
           "default no\n      load this plugin\n",
           p->name, p->desc.version ? p->desc.version : "", p->desc.abi_major, p->desc.abi_minor,
           p->desc.description ? p->desc.description : "", p->path, p->name);
    nova__config_print_table(p->desc.config, stdout);
    if (p->desc.commands != NULL && p->desc.commands[0].name != NULL) {
        printf("\nCommands (nova-worker COMMAND --help):\n");
        for (size_t i = 0; p->desc.commands[i].name != NULL; i++)
            printf("  %-22s %s\n", p->desc.commands[i].name,
                   p->desc.commands[i].summary ? p->desc.commands[i].summary : "");
    }
    if (p->desc.required_columns != NULL) {
        printf("\nPostgreSQL columns used:\n");
        for (size_t i = 0; p->desc.required_columns[i] != NULL; i++)
            printf("  %s\n", p->desc.required_columns[i]);
    }
    nova__plugin_close(p);
    return 0;
}

static int list_plugins(const char *dir)
{
    char **names = NULL;
    int n = nova__plugin_names(dir, &names);
    if (n < 0) {
        fprintf(stderr, "nova-worker plugins: %s: %s\n", dir, strerror(-n));
        return 1;
    }
    int bad = 0;
    printf("Plugins in %s:\n", dir);
    for (int i = 0; i < n; i++) {
        char err[NOVA_CONFIG_ERRMAX];
        struct nova__plugin *p = NULL;
        if (nova__plugin_open(dir, names[i], &p, err, sizeof err) == 0) {
            printf("  %-18s %-10s ABI %u.%u  %s\n", p->name, p->desc.version, p->desc.abi_major,
                   p->desc.abi_minor, p->desc.description ? p->desc.description : "");
            nova__plugin_close(p);
        } else {
            printf("  %-18s unusable: %s\n", names[i], err);
            bad++;
        }
    }
    if (n == 0)
        printf("  (none)\n");
    nova__plugin_names_free(names, n);
    return bad ? 1 : 0;
}

static int cmd_plugins(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"plugin-dir", required_argument, NULL, 'd'},
        {"help", optional_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *dir = NULL, *about = NULL;
    bool help = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            help = true;
            about = optarg;
            break;
        default:
            fprintf(stderr, "Try 'nova-worker plugins --help'.\n");
            return 2;
        }
    }
    if (help && about == NULL && optind < argc)
        about = argv[optind++];
    if (help && about == NULL) {
        printf("Usage: nova-worker plugins [-c FILE] [--plugin-dir DIR] [--help NAME]\n\n"
               "Lists the installed plugins with their versions, or, with --help NAME,\n"
               "describes one plugin and every key of its [plugin NAME] section.\n");
        return 0;
    }
    struct nova__config *cfg = NULL;
    if (dir == NULL) {
        if (config == NULL && access(NOVA_CONFIG_FILE, R_OK) == 0)
            config = NOVA_CONFIG_FILE;
        if (config != NULL) {
            char err[NOVA_CONFIG_ERRMAX];
            if (nova__config_load(config, &cfg, err, sizeof err) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            dir = cfg->worker.plugin_dir;
        } else {
            dir = getenv("NOVA_PLUGIN_DIR") ? getenv("NOVA_PLUGIN_DIR") : NOVA_PLUGIN_PATH;
        }
    }
    int rc = about ? describe_plugin(dir, about) : list_plugins(dir);
    nova__config_free(cfg);
    return rc;
}

static int cmd_keys(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: nova-worker keys\n\nPrints every key of the core config sections with "
               "its type, default,\nenvironment fallback and meaning.\n");
        return 0;
    }
    for (size_t i = 0; nova__core_sections[i].name != NULL; i++) {
        printf("%s[%s]\n", i ? "\n" : "", nova__core_sections[i].name);
        nova__config_print_table(nova__core_sections[i].table, stdout);
    }
    return 0;
}

/* Commands implemented by a subsystem take the loaded config (NULL when the
 * command does not need one, or the file is absent and was not asked for). */
static int with_config(int argc, char **argv, bool needs_config,
                       int (*fn)(const struct nova__config *, int, char **))
{
    const char *path =
        getenv("NOVA_WORKER_CONFIG") ? getenv("NOVA_WORKER_CONFIG") : NOVA_CONFIG_FILE;
    bool explicit_path = false;
    /* -c FILE may appear anywhere; it is consumed here. */
    char *args[256];
    int n = 0;
    for (int i = 0; i < argc && n < 255; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
            explicit_path = true;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
            explicit_path = true;
        } else {
            args[n++] = argv[i];
        }
    }
    args[n] = NULL;
    struct nova__config *cfg = NULL;
    if (needs_config || explicit_path || access(path, R_OK) == 0) {
        char err[NOVA_CONFIG_ERRMAX];
        if (nova__config_load(path, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        nova__log_set_level(cfg->worker.log_level);
    }
    int rc = fn(cfg, n, args);
    nova__config_free(cfg);
    nova__log_clear_secrets();
    return rc;
}

static int cmd_stellar(int argc, char **argv)
{
    /* sign-payment is offline and needs no config file. */
    return with_config(argc, argv, false, nova__cmd_stellar);
}

static int cmd_migrate(int argc, char **argv)
{
    return with_config(argc, argv, false, nova__cmd_migrate);
}

static int cmd_queue(int argc, char **argv)
{
    return with_config(argc, argv, false, nova__cmd_queue);
}

static int cmd_schedules(int argc, char **argv)
{
    return with_config(argc, argv, true, nova__cmd_schedules);
}

static const struct command commands[] = {
    {"run", "run the worker", cmd_run},
    {"check", "validate the configuration", cmd_check},
    {"plugins", "list plugins", cmd_plugins},
    {"keys", "list core config keys", cmd_keys},
    {"stellar", "Stellar tools", cmd_stellar},
    {"queue", "inspect and feed queues", cmd_queue},
    {"migrate", "apply database migrations", cmd_migrate},
    {"schedules", "list or run the plugins' schedules", cmd_schedules},
    {NULL, NULL, NULL},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; commands[i].name != NULL; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* What the core lends every service module (common/svc.h): one logger,
 * one metrics registry and one Stellar library per process. */
static const struct nova__svc_core svc_core = {
    .version = NOVA__SVC_VERSION,
    .struct_size = sizeof(struct nova__svc_core),
    .logv = nova__logv,
    .log_add_secret = nova__log_add_secret,
    .metric_new = nova__metric_new,
    .metric_add = nova__metric_add,
    .metric_set = nova__metric_set,
    .metric_observe = nova__metric_observe,
    .metrics_render = nova__metrics_render,
    .amount_parse = nova__amount_parse,
    .hex_decode = nova__hex_decode,
    .scval_decode_b64 = nova__scval_decode_b64,
    .build_payment = nova__stellar_build_payment,
    .seed_to_account = nova__stellar_seed_to_account,
    .result_decode_b64 = nova__stellar_result_decode_b64,
    .horizon_form_body = nova__stellar_horizon_form_body,
    .strkey_decode = nova__strkey_decode,
    .strkey_decode32 = nova__strkey_decode32,
};

int main(int argc, char **argv)
{
    nova__svc_set_core(&svc_core);
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("nova-worker %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, NOVA_ABI_MAJOR,
               NOVA_ABI_MINOR);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    /* -c FILE before a command (a plugin's too): the command takes it
     * (`nova-worker -c FILE queue stats` is `nova-worker queue stats -c FILE`). */
    if (argc >= 4 && (strcmp(argv[1], "-c") == 0 || strcmp(argv[1], "--config") == 0) &&
        argv[3][0] != '-') {
        char *opt = argv[1], *file = argv[2];
        memmove(argv + 1, argv + 3, (size_t)(argc - 3) * sizeof(*argv));
        argv[argc - 2] = opt;
        argv[argc - 1] = file;
    } else if (argc >= 3 && strncmp(argv[1], "--config=", 9) == 0 && argv[2][0] != '-') {
        char *opt = argv[1];
        memmove(argv + 1, argv + 2, (size_t)(argc - 2) * sizeof(*argv));
        argv[argc - 1] = opt;
    }
    /* No command, or options first: `run` is the default. */
    if (argc < 2 || argv[1][0] == '-') {
        char *run_argv[64] = {"run"};
        int n = 1;
        for (int i = 1; i < argc && n < 63; i++)
            run_argv[n++] = argv[i];
        return cmd_run(n, run_argv);
    }
    const struct command *cmd = find_command(argv[1]);
    if (cmd == NULL) {
        int rc = with_config(argc - 1, argv + 1, false, nova__cmd_plugin);
        if (rc >= 0)
            return rc;
        fprintf(stderr, "nova-worker: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return cmd->run(argc - 1, argv + 1);
}
