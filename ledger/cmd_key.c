/*
 * cmd_key.c - 'ledger key': signing keys (ledger/sign.h).
 *
 *   ledger key generate [--name NAME]   new Ed25519 key in the key directory; prints its public line
 *   ledger key list [--trusted]         public lines of the local keys (or of ledger-trusted-keys)
 *   ledger key trust PUBKEY-LINE|FILE   append to <repo>/ledger-trusted-keys (commit that file)
 *
 * The public line ("ed25519 <base64> NAME") is what `trust` takes, so
 * `ledger key trust "$(ledger key generate --name ci)"` is the whole setup.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/sign.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* --json: the rows are collected here and printed as one array (or object) at the end */
static cJSON *json_rows;

/* One key: a text line, or with --json a row {name, line[, path][, trusted_now]}. */
static int put_key(const char *name, const char *line, const char *path, int added)
{
    cJSON *o;
    if (!json_rows) {
        if (added < 0)
            printf("%s\n", line);
        else
            printf("%s %s\n", added ? "trusted" : "already trusted", line);
        return 0;
    }
    if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(json_rows, o) || !cJSON_AddStringToObject(o, "name", name) ||
        !cJSON_AddStringToObject(o, "line", line) || (path && !cJSON_AddStringToObject(o, "path", path)) ||
        (added >= 0 && !cJSON_AddBoolToObject(o, "added", added)))
        return lg_error_set(LG_ENOMEM, "out of memory");
    return 0;
}

static int key_generate(const char *name)
{
    lg_pubkey pub;
    lg_buf path = LG_BUF_INIT, line = LG_BUF_INIT;
    int err;
    if ((err = lg_key_generate(name, &pub, &path)) < 0 || (err = lg_key_format_line(&pub, name, &line)) < 0)
        goto out;
    if ((err = put_key(name, line.ptr, path.ptr, -1)) < 0)
        goto out;
    fprintf(stderr, "ledger key: wrote %s (keep it private); trust it with: ledger key trust '%s'\n", path.ptr, line.ptr);
out:
    lg_buf_release(&path);
    lg_buf_release(&line);
    return err < 0 ? cli_fail("key", err) : 0;
}

static int key_list_local(void)
{
    lg_buf dir = LG_BUF_INIT, p = LG_BUF_INIT, line = LG_BUF_INIT;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    DIR *d = NULL;
    struct dirent *e;
    int err;

    if ((err = lg_key_dir(&dir)) < 0)
        goto out;
    if (!(d = opendir(dir.ptr))) {
        fprintf(stderr, "ledger key: no keys in %s (make one with 'ledger key generate')\n", dir.ptr);
        goto out;
    }
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char **nn;
        if (len < 5 || strcmp(e->d_name + len - 4, ".pem") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            if (!(nn = lg_realloc(names, cap * sizeof(*names)))) {
                err = LG_ENOMEM;
                goto out;
            }
            names = nn;
        }
        if (!(names[n] = lg_strndup(e->d_name, len - 4))) {
            err = LG_ENOMEM;
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (i = 0; i < n; i++) {
        lg_pubkey pub;
        lg_buf_clear(&p);
        lg_buf_clear(&line);
        if (lg_key_check_name(names[i]) < 0)
            continue;
        if ((err = lg_buf_printf(&p, "%s/%s.pem", dir.ptr, names[i])) < 0)
            goto out;
        if (lg_key_load_public(p.ptr, &pub) < 0) {
            fprintf(stderr, "ledger key: skipping %s: %s\n", p.ptr, lg_error_msg());
            continue;
        }
        if ((err = lg_key_format_line(&pub, names[i], &line)) < 0 || (err = put_key(names[i], line.ptr, p.ptr, -1)) < 0)
            goto out;
    }
    err = 0;
out:
    if (d)
        closedir(d);
    for (i = 0; i < n; i++)
        lg_free(names[i]);
    lg_free(names);
    lg_buf_release(&dir);
    lg_buf_release(&p);
    lg_buf_release(&line);
    return err < 0 ? cli_fail("key", err) : 0;
}

static int key_list_trusted(lg_cli *cli)
{
    lg_ledger *lg = NULL;
    lg_keyring kr = LG_KEYRING_INIT;
    lg_buf line = LG_BUF_INIT;
    size_t i;
    int err;
    if ((err = cli_ledger(cli, &lg)) < 0 || (err = lg_keyring_load_repo(lg, &kr)) < 0)
        goto out;
    for (i = 0; i < kr.n; i++) {
        lg_buf_clear(&line);
        if ((err = lg_key_format_line(&kr.keys[i], kr.names[i], &line)) < 0 ||
            (err = put_key(kr.names[i], line.ptr, NULL, -1)) < 0)
            goto out;
    }
out:
    lg_buf_release(&line);
    lg_keyring_release(&kr);
    return err < 0 ? cli_fail("key", err) : 0;
}

static int key_trust(lg_cli *cli, const char *arg)
{
    lg_ledger *lg = NULL;
    lg_keyring in = LG_KEYRING_INIT;
    lg_buf path = LG_BUF_INIT;
    size_t i, added_n = 0;
    int err, added;

    /* a public line, or a file of them (a .pub file, someone's key list) */
    if (strncmp(arg, "ed25519", 7) == 0 && (arg[7] == ' ' || arg[7] == '\t')) {
        lg_pubkey k;
        char *name = NULL;
        if ((err = lg_key_parse_line(arg, "key", &k, &name)) < 0)
            goto out;
        in.keys = lg_malloc(sizeof(*in.keys));
        in.names = lg_malloc(sizeof(*in.names));
        if (!in.keys || !in.names) {
            lg_free(name);
            err = LG_ENOMEM;
            goto out;
        }
        in.keys[0] = k;
        in.names[0] = name;
        in.n = 1;
    } else if (lg_path_exists(arg)) {
        if ((err = lg_keyring_load(arg, &in)) < 0)
            goto out;
        if (in.n == 0) {
            err = lg_error_set(LG_EINPUT, "%s: no public key line ('ed25519 <base64> NAME') in it", arg);
            goto out;
        }
    } else {
        err = lg_error_set(LG_EINPUT, "'%.80s': neither a public key line ('ed25519 <base64> NAME') nor a file", arg);
        goto out;
    }
    if ((err = cli_ledger(cli, &lg)) < 0 || (err = lg_path_join(&path, lg_ledger_root(lg), LG_TRUSTED_KEYS_FILE)) < 0)
        goto out;
    for (i = 0; i < in.n; i++) {
        lg_buf line = LG_BUF_INIT;
        if ((err = lg_keyring_trust(path.ptr, &in.keys[i], in.names[i], &added)) < 0 ||
            (err = lg_key_format_line(&in.keys[i], in.names[i], &line)) < 0) {
            lg_buf_release(&line);
            goto out;
        }
        if ((err = put_key(in.names[i], line.ptr, NULL, added)) < 0) {
            lg_buf_release(&line);
            goto out;
        }
        added_n += (size_t)added;
        lg_buf_release(&line);
    }
    if (added_n)
        fprintf(stderr, "ledger key: updated %s: commit it to the protected branch; CI reads it from there with "
                        "'ledger verify --require-signed --keys-ref origin/main' (never from the change under review)\n",
                path.ptr);
out:
    lg_keyring_release(&in);
    lg_buf_release(&path);
    return err < 0 ? cli_fail("key", err) : 0;
}

/* ---- the subcommands: one row each, with its own options and --help ---- */

typedef struct {
    int json, trusted;
    const char *name;
} key_opts;

static int sub_generate(lg_cli *cli, key_opts *o, char **args)
{
    (void)cli;
    (void)args;
    return key_generate(o->name);
}

static int sub_list(lg_cli *cli, key_opts *o, char **args)
{
    (void)args;
    return o->trusted ? key_list_trusted(cli) : key_list_local();
}

static int sub_trust(lg_cli *cli, key_opts *o, char **args)
{
    (void)o;
    return key_trust(cli, args[0]);
}

typedef struct {
    const char *name;
    int (*fn)(lg_cli *cli, key_opts *o, char **args);
    const char *usage, *summary, *json_help;
    int nargs;       /* positional arguments after the subcommand's name */
    unsigned opts;   /* KEY_OPT_*: the options besides --json */
} key_sub;

#define KEY_OPT_NAME 0x1
#define KEY_OPT_TRUSTED 0x2

#define JSON_HELP "generate: {name, line, path}; list: [{name, line[, path]}]; trust: [{name, line, added}]"

static const key_sub key_subs[] = {
    {"generate", sub_generate, "ledger key generate [--name NAME] [--json]",
     "Makes an Ed25519 key pair: the private key goes to $LEDGER_KEY_DIR/NAME.pem (default\n"
     "~/.config/ledger/keys, mode 0600; never overwritten); prints the public line\n"
     "'ed25519 <base64> NAME' that 'ledger key trust' takes.",
     "print {name, line, path}", 0, KEY_OPT_NAME},
    {"list", sub_list, "ledger key list [--trusted] [--json]",
     "Prints the public line of every local key (--trusted: of the keys in the repository's\n" LG_TRUSTED_KEYS_FILE ").",
     "print [{name, line[, path]}]", 0, KEY_OPT_TRUSTED},
    {"trust", sub_trust, "ledger key trust [--json] PUBKEY-LINE|FILE",
     "Appends a public line (or every line of FILE) to " LG_TRUSTED_KEYS_FILE " at the repository\n"
     "root: one key per line, '#' comments. Commit that file so that 'ledger verify\n"
     "--require-signed' uses it.",
     "print [{name, line, added}]", 1, 0},
};

int cmd_key(lg_cli *cli, int argc, char **argv)
{
    key_opts ko = {0, 0, "default"};
    const lg_opt top_opts[] = {{"json", 0, LG_OPT_FLAG, &ko.json, NULL, JSON_HELP}, LG_OPT_TABLE_END};
    const lg_cmd_spec top = {
        "key", "ledger key [--json] generate [--name NAME] | list [--trusted] | trust PUBKEY-LINE|FILE",
        "Manage Ed25519 signing keys.\n"
        "  generate  make a key pair; the private key goes to $LEDGER_KEY_DIR/NAME.pem (default\n"
        "            ~/.config/ledger/keys, mode 0600); prints the public line 'ed25519 <base64> NAME'.\n"
        "  list      print the public line of every local key (--trusted: of the repository's trusted keys).\n"
        "  trust     append a public line (or every line of FILE) to " LG_TRUSTED_KEYS_FILE " at the\n"
        "            repository root: one key per line, '#' comments. Commit that file.\n"
        "Sign with 'ledger run/record --sign NAME' (or LEDGER_SIGN_KEY=NAME): the run gets\n"
        "runs/<seq>-<id>/signature.json over its id. 'ledger verify' always checks signatures that are\n"
        "present; 'ledger verify --require-signed' also rejects runs not signed by a trusted key, and\n"
        "claims then accept only such runs, linked into this ledger's chain, as evidence.\n"
        "'ledger key SUBCOMMAND --help' describes a subcommand.",
        top_opts, 1, -1, 1};
    const key_sub *sub = NULL;
    char **args, name[32];
    int nargs, rc;
    size_t i;

    /* options before the subcommand's name are the command's (--json) */
    if ((rc = cli_parse(cli, &top, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    for (i = 0; i < sizeof key_subs / sizeof key_subs[0]; i++)
        if (strcmp(args[0], key_subs[i].name) == 0)
            sub = &key_subs[i];
    if (!sub) {
        fprintf(stderr, "ledger key: usage: %s\n", top.usage);
        return 2;
    }
    {
        lg_opt opts[4];
        size_t n = 0;
        lg_cmd_spec spec = {name, sub->usage, sub->summary, opts, sub->nargs, sub->nargs, 0};
        snprintf(name, sizeof name, "key %s", sub->name);
        opts[n++] = (lg_opt){"json", 0, LG_OPT_FLAG, &ko.json, NULL, sub->json_help};
        if (sub->opts & KEY_OPT_NAME)
            opts[n++] = (lg_opt){"name", 0, LG_OPT_STRING, &ko.name, "NAME",
                                 "the key's name (default \"default\"), [A-Za-z0-9._-]"};
        if (sub->opts & KEY_OPT_TRUSTED)
            opts[n++] = (lg_opt){"trusted", 0, LG_OPT_FLAG, &ko.trusted, NULL,
                                 "the keys of the repository's " LG_TRUSTED_KEYS_FILE};
        opts[n] = (lg_opt)LG_OPT_TABLE_END;
        /* args[0] (the subcommand's name) is the sub-parse's argv[0] */
        if ((rc = cli_parse(cli, &spec, nargs, args, &nargs, &args)) != LG_OPTS_RUN)
            return rc;
        rc = 0;
    }
    if (ko.json && !(json_rows = cJSON_CreateArray()))
        return cli_fail("key", lg_error_set(LG_ENOMEM, "out of memory"));
    rc = sub->fn(cli, &ko, args);
    if (json_rows && rc == 0) {
        /* generate makes one key: an object; list and trust: an array */
        const cJSON *one = sub->fn == sub_generate ? cJSON_GetArrayItem(json_rows, 0) : json_rows;
        char *text = one ? cJSON_Print(one) : NULL;
        if (!text)
            rc = cli_fail("key", lg_error_set(LG_ENOMEM, "out of memory"));
        else
            printf("%s\n", text);
        cJSON_free(text);
    }
    cJSON_Delete(json_rows);
    json_rows = NULL;
    return rc;
}
