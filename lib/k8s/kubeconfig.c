/* kubeconfig.c - kubeconfig parsing (libyaml -> jansson tree -> flat
 * kubeconfig struct), KUBECONFIG list merging and the in-cluster service
 * account.  See kubeconfig.h. */
#include "kubeconfig.h"
#include "xstr.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_FILE_SIZE (16u << 20)

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    va_list ap;   /* the first message is replaced, never leaked */
    va_start(ap, fmt);
    xerr_vset(err, fmt, ap);
    va_end(ap);
    return -1;
}

int kc_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        if (cap - n < 2) {
            if (cap >= MAX_FILE_SIZE) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return -1;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

/* ---- base64 ------------------------------------------------------------- */

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int kc_base64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        if (ch == '=') {
            pad++;
            continue;
        }
        int v = b64val(ch);
        if (v < 0 || pad) {   /* bad character, or data after padding */
            free(buf);
            return -1;
        }
        digits++;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (digits % 4 == 1 || pad > 2 || (pad && (digits + pad) % 4 != 0)) {
        free(buf);
        return -1;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

/* ---- YAML -> jansson ---------------------------------------------------- */

/* Builds a JSON tree from a YAML document.  Scalars become strings, except
 * plain null/~/empty (null).  Anchors and aliases are supported; an alias
 * inside the node its anchor names (a cycle) is an error. */
typedef struct ytree {
    yaml_parser_t p;
    json_t *anchors;       /* anchor name -> node */
    json_t *open;          /* anchors of the collections being built */
    char **err;
    const char *name;
} ytree;

static json_t *y_node(ytree *t, yaml_event_t *ev, int depth);

static int y_next(ytree *t, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&t->p, ev))
        return fail(t->err, "kubeconfig %s: invalid YAML at line %zu column %zu: %s",
                    t->name, t->p.problem_mark.line + 1, t->p.problem_mark.column + 1,
                    t->p.problem ? t->p.problem : "parse error");
    return 0;
}

static void y_anchor(ytree *t, const yaml_char_t *anchor, json_t *node)
{
    if (anchor && node)
        json_object_set(t->anchors, (const char *)anchor, node);
}

static json_t *y_node(ytree *t, yaml_event_t *ev, int depth)
{
    if (depth > 64) {
        fail(t->err, "kubeconfig %s: YAML nested too deeply", t->name);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        json_t *node;
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
             strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0))
            node = json_null();
        else
            node = json_stringn(v, len);
        if (!node)
            fail(t->err, "kubeconfig %s: line %zu: value is not valid UTF-8", t->name,
                 ev->start_mark.line + 1);
        y_anchor(t, ev->data.scalar.anchor, node);
        return node;
    }
    case YAML_ALIAS_EVENT: {
        json_t *node = json_object_get(t->anchors, (const char *)ev->data.alias.anchor);
        if (json_object_get(t->open, (const char *)ev->data.alias.anchor)) {
            fail(t->err, "kubeconfig %s: line %zu: alias *%s is inside the node it names",
                 t->name, ev->start_mark.line + 1, (const char *)ev->data.alias.anchor);
            return NULL;
        }
        if (!node) {
            fail(t->err, "kubeconfig %s: line %zu: unknown alias *%s", t->name,
                 ev->start_mark.line + 1, (const char *)ev->data.alias.anchor);
            return NULL;
        }
        return json_incref(node);
    }
    case YAML_SEQUENCE_START_EVENT: {
        json_t *arr = json_array();
        const char *anchor = (const char *)ev->data.sequence_start.anchor;
        if (anchor)
            json_object_set_new(t->open, anchor, json_true());
        for (;;) {
            yaml_event_t e;
            if (y_next(t, &e) < 0) {
                json_decref(arr);
                return NULL;
            }
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                if (anchor) {
                    json_object_del(t->open, anchor);
                    y_anchor(t, (const yaml_char_t *)anchor, arr);
                }
                return arr;
            }
            json_t *item = y_node(t, &e, depth + 1);
            yaml_event_delete(&e);
            if (!item) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, item);
        }
    }
    case YAML_MAPPING_START_EVENT: {
        json_t *obj = json_object();
        const char *anchor = (const char *)ev->data.mapping_start.anchor;
        if (anchor)
            json_object_set_new(t->open, anchor, json_true());
        for (;;) {
            yaml_event_t k;
            if (y_next(t, &k) < 0) {
                json_decref(obj);
                return NULL;
            }
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                if (anchor) {
                    json_object_del(t->open, anchor);
                    y_anchor(t, (const yaml_char_t *)anchor, obj);
                }
                return obj;
            }
            if (k.type != YAML_SCALAR_EVENT) {
                fail(t->err, "kubeconfig %s: line %zu: mapping keys must be plain strings",
                     t->name, k.start_mark.line + 1);
                yaml_event_delete(&k);
                json_decref(obj);
                return NULL;
            }
            char *key = strndup((const char *)k.data.scalar.value, k.data.scalar.length);
            yaml_event_delete(&k);
            yaml_event_t v;
            if (!key || y_next(t, &v) < 0) {
                free(key);
                json_decref(obj);
                return NULL;
            }
            json_t *val = y_node(t, &v, depth + 1);
            yaml_event_delete(&v);
            if (!val) {
                free(key);
                json_decref(obj);
                return NULL;
            }
            json_object_set_new(obj, key, val);
            free(key);
        }
    }
    default:
        fail(t->err, "kubeconfig %s: line %zu: unexpected YAML event", t->name,
             ev->start_mark.line + 1);
        return NULL;
    }
}

/* Parses the first document of text into a JSON value. */
static json_t *yaml_to_json(const char *text, size_t len, const char *name, char **err)
{
    ytree t = { .err = err, .name = name };
    if (!yaml_parser_initialize(&t.p)) {
        fail(err, "kubeconfig %s: cannot initialise the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&t.p, (const unsigned char *)text, len);
    t.anchors = json_object();
    t.open = json_object();
    json_t *root = NULL;
    bool done = false;
    while (!done) {
        yaml_event_t ev;
        if (y_next(&t, &ev) < 0) {
            json_decref(root);   /* e.g. garbage after the first document */
            root = NULL;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            if (!root)
                fail(err, "kubeconfig %s: file is empty", name);
            break;
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
            break;
        case YAML_DOCUMENT_END_EVENT:
            done = root != NULL;   /* only the first document counts */
            break;
        default:
            root = y_node(&t, &ev, 0);
            if (!root)
                done = true;
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&t.p);
    json_decref(t.anchors);
    json_decref(t.open);
    return root;
}

/* ---- interpretation ----------------------------------------------------- */

static char *path_join(const char *dir, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/' || !dir || !*dir)
        return strdup(p);
    return xfmt("%s/%s", dir, p);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Makes the file paths under entries[].<inner>.<fields> absolute. */
static void resolve_paths(json_t *root, const char *list, const char *inner,
                          const char *const *fields, const char *dir)
{
    json_t *arr = json_object_get(root, list), *e;
    size_t i;
    if (!json_is_array(arr))
        return;
    json_array_foreach(arr, i, e) {
        json_t *in = json_object_get(e, inner);
        if (!json_is_object(in))
            continue;
        for (const char *const *f = fields; *f; f++) {
            const char *v = json_string_value(json_object_get(in, *f));
            if (v && *v && v[0] != '/') {
                char *abs = path_join(dir, v);
                if (abs)
                    json_object_set_new(in, *f, json_string(abs));
                free(abs);
            }
        }
    }
}

static const char *const cluster_paths[] = { "certificate-authority", NULL };
static const char *const user_paths[] = { "client-certificate", "client-key", "tokenFile", NULL };

/* Finds the entry `name` in root[list]; checks the shape, naming the field. */
static int find_named(json_t *root, const char *list, const char *inner, const char *name,
                      const char *src, json_t **out, char **err)
{
    json_t *arr = json_object_get(root, list), *e;
    size_t i;
    *out = NULL;
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        return fail(err, "kubeconfig %s: %s: must be a list", src, list);
    json_array_foreach(arr, i, e) {
        if (!json_is_object(e))
            return fail(err, "kubeconfig %s: %s[%zu]: must be a mapping", src, list, i);
        const char *n = json_string_value(json_object_get(e, "name"));
        if (!n)
            return fail(err, "kubeconfig %s: %s[%zu].name: missing", src, list, i);
        if (strcmp(n, name) == 0) {
            json_t *in = json_object_get(e, inner);
            if (in && !json_is_object(in) && !json_is_null(in))
                return fail(err, "kubeconfig %s: %s[\"%s\"].%s: must be a mapping", src,
                            list, name, inner);
            *out = json_is_object(in) ? in : NULL;
            return 1;
        }
    }
    return 0;
}

/* Reads an optional string field; wrong type is an error naming the field. */
static int get_str(json_t *obj, const char *field, const char *where, const char *src,
                   const char **out, char **err)
{
    *out = NULL;
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(err, "kubeconfig %s: %s.%s: must be a string", src, where, field);
    *out = json_string_value(v);
    if (!**out)
        *out = NULL;
    return 0;
}

static int get_blob(json_t *obj, const char *field, const char *where, const char *src,
                    kc_blob *out, char **err)
{
    const char *v;
    if (get_str(obj, field, where, src, &v, err) < 0)
        return -1;
    if (!v)
        return 0;
    if (kc_base64_decode(v, &out->data, &out->len) < 0 || out->len == 0)
        return fail(err, "kubeconfig %s: %s.%s: not valid base64", src, where, field);
    return 0;
}

int kc_token_check(const char *token)
{
    for (size_t i = 0; token && token[i]; i++)
        if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f)
            return (int)i;
    return -1;
}

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
    return (v && !*dst) ? -1 : 0;
}

static int interpret(json_t *root, const char *src, const char *context, kubeconfig *kc,
                     char **err)
{
    if (!json_is_object(root))
        return fail(err, "kubeconfig %s: top level must be a mapping", src);
    const char *ctxname = context && *context ? context : NULL;
    if (!ctxname) {
        json_t *cc = json_object_get(root, "current-context");
        if (cc && !json_is_string(cc) && !json_is_null(cc))
            return fail(err, "kubeconfig %s: current-context: must be a string", src);
        ctxname = json_string_value(cc);
        if (!ctxname || !*ctxname)
            return fail(err, "kubeconfig %s: no current-context set and no context given", src);
    }

    json_t *ctx;
    int r = find_named(root, "contexts", "context", ctxname, src, &ctx, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(err, "kubeconfig %s: context \"%s\" not found", src, ctxname);
    char where[320];
    snprintf(where, sizeof where, "contexts[\"%s\"].context", ctxname);
    if (!ctx)
        return fail(err, "kubeconfig %s: %s: missing", src, where);
    const char *cluster_name, *user_name, *ns;
    if (get_str(ctx, "cluster", where, src, &cluster_name, err) < 0 ||
        get_str(ctx, "user", where, src, &user_name, err) < 0 ||
        get_str(ctx, "namespace", where, src, &ns, err) < 0)
        return -1;
    if (!cluster_name)
        return fail(err, "kubeconfig %s: %s.cluster: missing", src, where);

    json_t *cl;
    r = find_named(root, "clusters", "cluster", cluster_name, src, &cl, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(err, "kubeconfig %s: %s.cluster: cluster \"%s\" not found", src, where,
                    cluster_name);
    snprintf(where, sizeof where, "clusters[\"%s\"].cluster", cluster_name);
    if (!cl)
        return fail(err, "kubeconfig %s: %s: missing", src, where);

    const char *server, *ca_file, *sni, *proxy;
    if (get_str(cl, "server", where, src, &server, err) < 0 ||
        get_str(cl, "certificate-authority", where, src, &ca_file, err) < 0 ||
        get_str(cl, "tls-server-name", where, src, &sni, err) < 0 ||
        get_str(cl, "proxy-url", where, src, &proxy, err) < 0 ||
        get_blob(cl, "certificate-authority-data", where, src, &kc->ca_data, err) < 0)
        return -1;
    if (!server)
        return fail(err, "kubeconfig %s: %s.server: missing", src, where);
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return fail(err, "kubeconfig %s: %s.server: \"%s\" is not an http(s) URL", src, where,
                    server);
    size_t hl = (size_t)(strstr(server, "://") + 3 - server), sl = strlen(server);
    while (sl > hl && server[sl - 1] == '/')
        sl--;
    if (sl == hl || server[hl] == '/')
        return fail(err, "kubeconfig %s: %s.server: \"%s\" has no host", src, where, server);
    if (proxy)
        return fail(err, "kubeconfig %s: %s.proxy-url: proxies are not supported", src, where);
    json_t *ins = json_object_get(cl, "insecure-skip-tls-verify");
    if (ins && !json_is_null(ins)) {
        /* YAML 1.1 booleans, as sigs.k8s.io/yaml reads them */
        const char *s = json_string_value(ins);
        if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")))
            kc->insecure = true;
        else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")))
            kc->insecure = false;
        else
            return fail(err, "kubeconfig %s: %s.insecure-skip-tls-verify: must be true or false",
                        src, where);
    }

    if (set_str(&kc->context, ctxname) < 0 || set_str(&kc->cluster, cluster_name) < 0 ||
        set_str(&kc->namespace, ns) < 0 || set_str(&kc->ca_file, ca_file) < 0 ||
        set_str(&kc->tls_server_name, sni) < 0)
        return fail(err, "kubeconfig %s: out of memory", src);
    kc->server = strndup(server, sl);

    if (!user_name)
        return 0;   /* anonymous */
    json_t *us;
    r = find_named(root, "users", "user", user_name, src, &us, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(err, "kubeconfig %s: contexts[\"%s\"].context.user: user \"%s\" not found",
                    src, ctxname, user_name);
    if (set_str(&kc->user, user_name) < 0)
        return fail(err, "kubeconfig %s: out of memory", src);
    if (!us)
        return 0;
    snprintf(where, sizeof where, "users[\"%s\"].user", user_name);

    json_t *exec = json_object_get(us, "exec");
    if (exec && !json_is_null(exec)) {
        const char *cmd = json_string_value(json_object_get(exec, "command"));
        return fail(err, "kubeconfig %s: %s.exec: exec credential plugins are not supported "
                    "(command \"%s\"); use a token, tokenFile or client certificate",
                    src, where, cmd ? cmd : "?");
    }
    json_t *ap = json_object_get(us, "auth-provider");
    if (ap && !json_is_null(ap)) {
        const char *n = json_string_value(json_object_get(ap, "name"));
        return fail(err, "kubeconfig %s: %s.auth-provider: auth-provider plugins are not "
                    "supported (\"%s\"); use a token, tokenFile or client certificate",
                    src, where, n ? n : "?");
    }
    if (json_object_get(us, "username") || json_object_get(us, "password"))
        return fail(err, "kubeconfig %s: %s.username/password: basic authentication is not "
                    "supported; use a token, tokenFile or client certificate", src, where);

    const char *token, *token_file, *cert, *key;
    if (get_str(us, "token", where, src, &token, err) < 0 ||
        get_str(us, "tokenFile", where, src, &token_file, err) < 0 ||
        get_str(us, "client-certificate", where, src, &cert, err) < 0 ||
        get_str(us, "client-key", where, src, &key, err) < 0 ||
        get_blob(us, "client-certificate-data", where, src, &kc->cert_data, err) < 0 ||
        get_blob(us, "client-key-data", where, src, &kc->key_data, err) < 0)
        return -1;
    if (token && kc_token_check(token) >= 0)   /* never the token itself in the message */
        return fail(err, "kubeconfig %s: %s.token: contains a control character (CR, LF, ...): "
                    "a bearer token is one line; refusing it", src, where);
    if (set_str(&kc->token, token) < 0 || set_str(&kc->token_file, token_file) < 0 ||
        set_str(&kc->cert_file, cert) < 0 || set_str(&kc->key_file, key) < 0)
        return fail(err, "kubeconfig %s: out of memory", src);
    bool has_cert = cert || kc->cert_data.len, has_key = key || kc->key_data.len;
    if (has_cert && !has_key)
        return fail(err, "kubeconfig %s: %s: client-certificate given without client-key",
                    src, where);
    if (has_key && !has_cert)
        return fail(err, "kubeconfig %s: %s: client-key given without client-certificate",
                    src, where);
    return 0;
}

void kubeconfig_free(kubeconfig *kc)
{
    if (!kc)
        return;
    free(kc->source);
    free(kc->context);
    free(kc->cluster);
    free(kc->user);
    free(kc->namespace);
    free(kc->server);
    free(kc->tls_server_name);
    free(kc->ca_file);
    free(kc->ca_data.data);
    if (kc->token)
        explicit_bzero(kc->token, strlen(kc->token));
    free(kc->token);
    free(kc->token_file);
    free(kc->cert_file);
    free(kc->cert_data.data);
    free(kc->key_file);
    if (kc->key_data.data)
        explicit_bzero(kc->key_data.data, kc->key_data.len);
    free(kc->key_data.data);
    memset(kc, 0, sizeof *kc);
}

static json_t *load_tree(const char *text, size_t len, const char *name, const char *dir,
                         char **err)
{
    json_t *root = yaml_to_json(text, len, name, err);
    if (!root)
        return NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        fail(err, "kubeconfig %s: top level must be a mapping", name);
        return NULL;
    }
    static const char *const lists[] = { "clusters", "contexts", "users", NULL };
    for (const char *const *l = lists; *l; l++) {
        json_t *v = json_object_get(root, *l);
        if (v && !json_is_array(v) && !json_is_null(v)) {
            json_decref(root);
            fail(err, "kubeconfig %s: %s: must be a list", name, *l);
            return NULL;
        }
    }
    resolve_paths(root, "clusters", "cluster", cluster_paths, dir);
    resolve_paths(root, "users", "user", user_paths, dir);
    return root;
}

int kubeconfig_parse(const char *text, size_t len, const char *name, const char *dir,
                     const char *context, kubeconfig *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (err)
        *err = NULL;
    json_t *root = load_tree(text, len, name, dir, err);
    if (!root)
        return -1;
    int r = interpret(root, name, context, out, err);
    json_decref(root);
    if (r == 0)
        out->source = strdup(name);
    if (r < 0)
        kubeconfig_free(out);
    return r;
}

/* Appends the named entries of src[list] that merged[list] lacks. */
static void merge_list(json_t *merged, json_t *src, const char *list)
{
    json_t *from = json_object_get(src, list), *e;
    size_t i;
    if (!json_is_array(from))
        return;
    json_t *to = json_object_get(merged, list);
    if (!json_is_array(to)) {
        to = json_array();
        json_object_set_new(merged, list, to);
    }
    json_array_foreach(from, i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        bool have = false;
        json_t *x;
        size_t j;
        json_array_foreach(to, j, x) {
            const char *m = json_string_value(json_object_get(x, "name"));
            if (n && m && strcmp(n, m) == 0)
                have = true;
        }
        if (!have)
            json_array_append(to, e);
    }
}

int kubeconfig_load(const char *path, const char *context, kubeconfig *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (err)
        *err = NULL;
    if (!path || !*path)
        return fail(err, "kubeconfig: no path given");
    bool list = strchr(path, ':') != NULL;
    char *copy = strdup(path);
    if (!copy)
        return fail(err, "kubeconfig: out of memory");
    json_t *merged = json_object();
    int nread = 0, rc = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        char *text;
        size_t len;
        if (kc_read_file(p, &text, &len) < 0) {
            if (list && errno == ENOENT)
                continue;   /* kubectl skips missing files in a list */
            rc = fail(err, "kubeconfig %s: %s", p, strerror(errno));
            break;
        }
        char *dir = dir_of(p);
        json_t *root = load_tree(text, len, p, dir, err);
        free(dir);
        free(text);
        if (!root) {
            rc = -1;
            break;
        }
        nread++;
        const char *cc = json_string_value(json_object_get(root, "current-context"));
        if (cc && *cc && !json_object_get(merged, "current-context"))
            json_object_set_new(merged, "current-context", json_string(cc));
        merge_list(merged, root, "clusters");
        merge_list(merged, root, "users");
        merge_list(merged, root, "contexts");
        json_decref(root);
    }
    if (rc == 0 && nread == 0)
        rc = fail(err, "kubeconfig %s: no such file", path);
    if (rc == 0)
        rc = interpret(merged, path, context, out, err);
    json_decref(merged);
    free(copy);
    if (rc == 0)
        out->source = strdup(path);
    else
        kubeconfig_free(out);
    return rc;
}

/* ---- in-cluster --------------------------------------------------------- */

static const char *sa_dir(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *e = getenv("OCPVDR_SA_DIR");
    return e && *e ? e : SA_DIR_DEFAULT;
}

bool kubeconfig_in_cluster_available(const char *dir)
{
    char p[4096];
    struct stat st;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    snprintf(p, sizeof p, "%s/token", sa_dir(dir));
    return host && *host && stat(p, &st) == 0;
}

int kubeconfig_in_cluster(const char *dir, kubeconfig *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (err)
        *err = NULL;
    const char *d = sa_dir(dir);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host)
        return fail(err, "in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
    if (!port || !*port)
        port = "443";
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/token", d);
    if (stat(p, &st) != 0)
        return fail(err, "in-cluster: service account token %s: %s", p, strerror(errno));
    out->token_file = strdup(p);
    snprintf(p, sizeof p, "%s/ca.crt", d);
    if (stat(p, &st) == 0)
        out->ca_file = strdup(p);
    snprintf(p, sizeof p, "%s/namespace", d);
    char *ns;
    if (kc_read_file(p, &ns, NULL) == 0) {
        ns[strcspn(ns, " \r\n\t")] = '\0';
        if (*ns)
            out->namespace = ns;
        else
            free(ns);
    }
    bool v6 = strchr(host, ':') != NULL;
    out->server = xfmt(v6 ? "https://[%s]:%s" : "https://%s:%s", host, port);
    out->source = strdup("in-cluster");
    if (!out->server || !out->token_file || !out->source) {
        kubeconfig_free(out);
        return fail(err, "in-cluster: out of memory");
    }
    return 0;
}

char *kubeconfig_default_path(void)
{
    const char *e = getenv("KUBECONFIG");
    if (e && *e)
        return strdup(e);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    return xfmt("%s/.kube/config", home);
}
