/* k8sctl.c - a small command-line front end over lib/k8s/k8s.h, used by the
 * integration tests to drive the C Kubernetes client against real API
 * servers.  Prints JSON on stdout; on failure prints
 * {"error": {status, reason, message, curl_code}} and exits 1 (2 = usage).
 *
 *   k8sctl [connection options] VERB ...
 *   connection: --kubeconfig P --context C --host URL --ca-cert P
 *               --client-cert P --client-key P --insecure --in-cluster
 *               --token-file P (bearer token read from a file; never argv)
 *               --retries N --timeout-ms N --max-in-flight N
 *               (K8S_AUTH_* and KUBECONFIG are honoured as in kubernetes.core)
 *   verbs:
 *     server                                   the API server URL
 *     resource AV KIND                         resource lookup (table / discovery)
 *     get AV KIND NAME [-n NS]
 *     list AV KIND [-n NS] [-l SEL] [--field-selector SEL] [--limit N]
 *     apply FILE|- [--force] [--dry-run] [--batch] [--field-manager M]
 *     create FILE|- [--dry-run]
 *     patch AV KIND NAME JSON [-n NS] [--dry-run]
 *     update-status FILE|-
 *     delete AV KIND NAME [-n NS] [--propagation P] [--uid U]
 *            [--resource-version RV] [--dry-run]
 *     batch-get AV KIND NAME... [-n NS]
 *     batch-delete AV KIND NAME... [-n NS] [--propagation P]
 *     watch AV KIND [-n NS] [--resource-version RV] [--timeout S] [-l SEL]
 *           [--bookmarks] [--max-events N] [--stop-after-ms N]
 *     raw METHOD PATH [BODY]
 *     threads N M AV KIND NAME [-n NS]   N threads x M gets on one client
 * FILE holds JSON: one object, an array of objects, or a List.
 */
#include "k8s.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct opts {
    const char *ns, *label, *field, *rv, *propagation, *uid, *field_manager;
    long limit, timeout, max_events, stop_after_ms;
    bool force, dry_run, batch, bookmarks;
} opts;

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
}

static int fail_err(const k8s_error *e)
{
    char buf[1200];
    json_t *o = json_pack("{s:{s:I, s:s, s:s, s:i}}", "error", "status", (json_int_t)e->status,
                          "reason", e->reason, "message", k8s_strerror(e, buf, sizeof buf),
                          "curl_code", e->curl_code);
    print_json(o);
    json_decref(o);
    fprintf(stderr, "k8sctl: %s\n", buf);
    return 1;
}

static int fail_msg(const char *msg)
{
    k8s_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.message, sizeof e.message, "%s", msg);
    return fail_err(&e);
}

static int usage(const char *why)
{
    fprintf(stderr, "k8sctl: %s (see the comment at the top of tests/tools/k8sctl.c)\n", why);
    return 2;
}

static json_t *load_input(const char *file, char *msg, size_t len)
{
    json_error_t je;
    json_t *v = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(file, 0, &je);
    if (!v)
        snprintf(msg, len, "%s: line %d: %s", file, je.line, je.text);
    return v;
}

/* Flattens an object / array / List into a new array of objects. */
static json_t *objects_of(json_t *in)
{
    json_t *arr = json_array();
    if (json_is_array(in)) {
        json_array_extend(arr, in);
    } else if (json_is_object(in) && json_is_array(json_object_get(in, "items"))) {
        json_array_extend(arr, json_object_get(in, "items"));
    } else {
        json_array_append(arr, in);
    }
    return arr;
}

static const k8s_resource *res_of(k8s_client *c, json_t *obj, k8s_error *e)
{
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    return k8s_resource_find(c, av, kind, e);
}

static json_t *err_json(const k8s_error *e)
{
    char buf[1200];
    return json_pack("{s:{s:I, s:s, s:s, s:i}}", "error", "status", (json_int_t)e->status,
                     "reason", e->reason, "message", k8s_strerror(e, buf, sizeof buf),
                     "curl_code", e->curl_code);
}

/* batch callback: stores each result at its index */
typedef struct slot {
    json_t *results;
    size_t idx;
} slot;

static void on_batch(void *ud, int rc, json_t *out, const k8s_error *err)
{
    slot *s = ud;
    json_array_set_new(s->results, s->idx, rc == 0 ? json_incref(out) : err_json(err));
}

static int cmd_write(k8s_client *c, const char *verb, const char *file, const opts *o)
{
    char msg[512];
    json_t *in = load_input(file, msg, sizeof msg);
    if (!in)
        return fail_msg(msg);
    json_t *objs = objects_of(in);
    json_decref(in);
    size_t n = json_array_size(objs);
    k8s_write_opts wo = { .dry_run = o->dry_run, .force = o->force,
                          .field_manager = o->field_manager };
    json_t *results = json_array();
    int failed = 0;
    k8s_error first = { 0 };
    k8s_batch *b = o->batch ? k8s_batch_new(c) : NULL;
    slot *slots = calloc(n ? n : 1, sizeof *slots);
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_array_get(objs, i), *out = NULL;
        k8s_error e;
        const k8s_resource *r = res_of(c, obj, &e);
        json_array_append_new(results, json_null());
        int rc;
        if (!r) {
            rc = -1;
        } else if (b) {
            slots[i] = (slot){ results, i };
            k8s_batch_apply(b, r, obj, &wo, on_batch, &slots[i]);
            continue;
        } else if (strcmp(verb, "apply") == 0) {
            rc = k8s_apply(c, r, obj, &wo, &out, &e);
        } else if (strcmp(verb, "create") == 0) {
            rc = k8s_create(c, r, obj, &wo, &out, &e);
        } else {
            rc = k8s_update_status(c, r, obj, &out, &e);
        }
        if (rc != 0) {
            if (!failed++)
                first = e;
            json_array_set_new(results, i, err_json(&e));
        } else {
            json_array_set_new(results, i, out);
        }
    }
    if (b) {
        failed += k8s_batch_run(b);
        k8s_batch_free(b);
    }
    free(slots);
    json_decref(objs);
    int rc = 0;
    if (n == 1 && failed && !o->batch) {
        rc = fail_err(&first);
    } else {
        print_json(n == 1 ? json_array_get(results, 0) : results);
        rc = failed ? 1 : 0;
    }
    json_decref(results);
    return rc;
}

static int cmd_batch(k8s_client *c, bool del, const k8s_resource *r, char **names, int n,
                     const opts *o)
{
    k8s_batch *b = k8s_batch_new(c);
    json_t *results = json_array();
    slot *slots = calloc((size_t)n + 1, sizeof *slots);
    k8s_delete_opts d = { .propagation = o->propagation, .dry_run = o->dry_run };
    for (int i = 0; i < n; i++) {
        json_array_append_new(results, json_null());
        slots[i] = (slot){ results, (size_t)i };
        if (del)
            k8s_batch_delete(b, r, o->ns, names[i], &d, on_batch, &slots[i]);
        else
            k8s_batch_get(b, r, o->ns, names[i], on_batch, &slots[i]);
    }
    int failed = k8s_batch_run(b);
    k8s_batch_free(b);
    free(slots);
    json_t *out = json_pack("{s:o, s:i}", "results", results, "failed", failed);
    print_json(out);
    json_decref(out);
    return failed ? 1 : 0;
}

typedef struct wctx {
    long max, seen;
} wctx;

static int on_event(void *ud, const char *type, json_t *object)
{
    wctx *w = ud;
    json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", object);
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(ev);
    w->seen++;
    return w->max > 0 && w->seen >= w->max;
}

typedef struct stopper {
    volatile int *flag;
    long ms;
} stopper;

static void *stop_later(void *ud)
{
    stopper *s = ud;
    struct timespec ts = { s->ms / 1000, (s->ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    __atomic_store_n(s->flag, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int cmd_watch(k8s_client *c, const k8s_resource *r, const opts *o)
{
    volatile int stop = 0;
    k8s_watch_opts wo = { .resource_version = o->rv, .label_selector = o->label,
                          .field_selector = o->field, .timeout_seconds = o->timeout,
                          .allow_bookmarks = o->bookmarks, .stop = &stop };
    wctx w = { .max = o->max_events };
    pthread_t th;
    stopper st = { &stop, o->stop_after_ms };
    bool started = o->stop_after_ms > 0 && pthread_create(&th, NULL, stop_later, &st) == 0;
    k8s_error e;
    int rc = k8s_watch(c, r, o->ns, &wo, on_event, &w, &e);
    if (started)
        pthread_join(th, NULL);
    return rc == 0 ? 0 : fail_err(&e);
}

/* threads: one client shared by several threads (as the forwarder does) */
typedef struct tjob {
    k8s_client *c;
    const k8s_resource *r;
    const char *ns, *name;
    long m, ok, failed;
} tjob;

static void *tget(void *ud)
{
    tjob *j = ud;
    for (long i = 0; i < j->m; i++) {
        json_t *o = NULL;
        k8s_error e;
        if (k8s_get(j->c, j->r, j->ns, j->name, &o, &e) == 0)
            j->ok++;
        else
            j->failed++;
        json_decref(o);
    }
    return NULL;
}

static int cmd_threads(k8s_client *c, const k8s_resource *r, long n, long m, const char *name,
                       const opts *o)
{
    if (n < 1 || n > 64 || m < 1)
        return usage("threads: 1..64 threads and at least one request each");
    tjob *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        jobs[i] = (tjob){ .c = c, .r = r, .ns = o->ns, .name = name, .m = m };
        pthread_create(&th[i], NULL, tget, &jobs[i]);
    }
    long ok = 0, failed = 0;
    for (long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ok += jobs[i].ok;
        failed += jobs[i].failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    json_t *out = json_pack("{s:i, s:i, s:f}", "ok", (int)ok, "failed", (int)failed,
                            "seconds", secs);
    print_json(out);
    json_decref(out);
    free(jobs);
    free(th);
    return failed ? 1 : 0;
}

enum { O_FIELD = 1000, O_LIMIT, O_FORCE, O_DRY, O_BATCH, O_PROP, O_UID, O_RV, O_TIMEOUT,
       O_BOOK, O_MAXEV, O_STOP, O_FM };

int main(int argc, char **argv)
{
    static const struct option gopts[] = {
        { "kubeconfig", required_argument, 0, 'k' }, { "context", required_argument, 0, 'c' },
        { "host", required_argument, 0, 'H' },       { "ca-cert", required_argument, 0, 'C' },
        { "client-cert", required_argument, 0, 'E' }, { "client-key", required_argument, 0, 'K' },
        { "insecure", no_argument, 0, 'i' },          { "in-cluster", no_argument, 0, 'I' },
        { "token-file", required_argument, 0, 'T' },  { "retries", required_argument, 0, 'r' },
        { "timeout-ms", required_argument, 0, 't' },  { "max-in-flight", required_argument, 0, 'm' },
        { 0, 0, 0, 0 }
    };
    k8s_conn conn = { .validate_certs = -1 };
    k8s_config cfg = { 0 };
    cfg.timeout_ms = 30000;
    char *token = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", gopts, NULL)) != -1) {
        switch (ch) {
        case 'k': conn.kubeconfig = optarg; break;
        case 'c': conn.context = optarg; break;
        case 'H': conn.host = optarg; break;
        case 'C': conn.ca_cert = optarg; break;
        case 'E': conn.client_cert = optarg; break;
        case 'K': conn.client_key = optarg; break;
        case 'i': conn.validate_certs = 0; break;
        case 'I': conn.in_cluster = true; break;
        case 'T': {
            FILE *f = fopen(optarg, "r");
            char buf[8192];
            if (!f || !fgets(buf, sizeof buf, f)) {
                if (f)
                    fclose(f);
                return usage("--token-file: cannot read the file");
            }
            fclose(f);
            buf[strcspn(buf, "\r\n")] = '\0';
            free(token);
            token = strdup(buf);
            conn.api_key = token;
            break;
        }
        case 'r': cfg.max_retries = atoi(optarg); break;
        case 't': cfg.timeout_ms = atol(optarg); break;
        case 'm': cfg.max_in_flight = atoi(optarg); break;
        default: return usage("unknown connection option");
        }
    }
    if (optind >= argc)
        return usage("no verb given");
    k8s_conn_from_env(&conn);
    const char *verb = argv[optind];
    char **args = argv + optind;
    int nargs = argc - optind;

    static const struct option vopts[] = {
        { "namespace", required_argument, 0, 'n' }, { "selector", required_argument, 0, 'l' },
        { "field-selector", required_argument, 0, O_FIELD }, { "limit", required_argument, 0, O_LIMIT },
        { "force", no_argument, 0, O_FORCE },       { "dry-run", no_argument, 0, O_DRY },
        { "batch", no_argument, 0, O_BATCH },       { "propagation", required_argument, 0, O_PROP },
        { "uid", required_argument, 0, O_UID },     { "resource-version", required_argument, 0, O_RV },
        { "timeout", required_argument, 0, O_TIMEOUT }, { "bookmarks", no_argument, 0, O_BOOK },
        { "max-events", required_argument, 0, O_MAXEV }, { "stop-after-ms", required_argument, 0, O_STOP },
        { "field-manager", required_argument, 0, O_FM },
        { 0, 0, 0, 0 }
    };
    opts o = { 0 };
    optind = 0;   /* 0: full re-initialisation of GNU getopt (permutes again) */
    while ((ch = getopt_long(nargs, args, "n:l:", vopts, NULL)) != -1) {
        switch (ch) {
        case 'n': o.ns = optarg; break;
        case 'l': o.label = optarg; break;
        case O_FIELD: o.field = optarg; break;
        case O_LIMIT: o.limit = atol(optarg); break;
        case O_FORCE: o.force = true; break;
        case O_DRY: o.dry_run = true; break;
        case O_BATCH: o.batch = true; break;
        case O_PROP: o.propagation = optarg; break;
        case O_UID: o.uid = optarg; break;
        case O_RV: o.rv = optarg; break;
        case O_TIMEOUT: o.timeout = atol(optarg); break;
        case O_BOOK: o.bookmarks = true; break;
        case O_MAXEV: o.max_events = atol(optarg); break;
        case O_STOP: o.stop_after_ms = atol(optarg); break;
        case O_FM: o.field_manager = optarg; break;
        default: return usage("unknown option");
        }
    }
    char **pos = args + optind;   /* positional arguments after the verb */
    int npos = nargs - optind;

    k8s_error e;
    k8s_client *c = k8s_client_new(&conn, &cfg, &e);
    if (!c) {
        free(token);
        return fail_err(&e);
    }
    int rc = 0;
    const k8s_resource *r = NULL;
    bool threads = strcmp(verb, "threads") == 0;
    if (threads) {   /* threads N M AV KIND NAME */
        if (npos < 5) {
            rc = usage("threads N M AV KIND NAME");
            goto out;
        }
        r = k8s_resource_find(c, pos[2], pos[3], &e);
        if (!r) {
            rc = fail_err(&e);
            goto out;
        }
        rc = cmd_threads(c, r, atol(pos[0]), atol(pos[1]), pos[4], &o);
        goto out;
    }
    bool needs_res = strcmp(verb, "get") == 0 || strcmp(verb, "list") == 0 ||
                     strcmp(verb, "patch") == 0 || strcmp(verb, "delete") == 0 ||
                     strcmp(verb, "watch") == 0 || strcmp(verb, "resource") == 0 ||
                     strcmp(verb, "batch-get") == 0 || strcmp(verb, "batch-delete") == 0;
    if (needs_res) {
        if (npos < 2) {
            rc = usage("apiVersion and kind required");
            goto out;
        }
        r = k8s_resource_find(c, pos[0], pos[1], &e);
        if (!r) {
            rc = fail_err(&e);
            goto out;
        }
    }
    json_t *out = NULL;
    if (strcmp(verb, "server") == 0) {
        out = json_string(k8s_client_server(c));
        print_json(out);
    } else if (strcmp(verb, "resource") == 0) {
        char *path = k8s_path(r, o.ns ? o.ns : "NS", npos > 2 ? pos[2] : NULL);
        out = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "group", r->group, "version",
                        r->version, "kind", r->kind, "plural", r->plural, "namespaced",
                        r->namespaced, "path", path);
        free(path);
        print_json(out);
    } else if (strcmp(verb, "get") == 0) {
        if (npos < 3)
            rc = usage("get: name required");
        else if (k8s_get(c, r, o.ns, pos[2], &out, &e) != 0)
            rc = fail_err(&e);
        else
            print_json(out);
    } else if (strcmp(verb, "list") == 0) {
        k8s_list_opts lo = { .label_selector = o.label, .field_selector = o.field,
                             .limit = o.limit };
        json_t *items;
        char *rv = NULL;
        if (k8s_list(c, r, o.ns, &lo, &items, &rv, &e) != 0) {
            rc = fail_err(&e);
        } else {
            out = json_pack("{s:o, s:s?}", "items", items, "resourceVersion", rv);
            print_json(out);
        }
        free(rv);
    } else if (strcmp(verb, "apply") == 0 || strcmp(verb, "create") == 0 ||
               strcmp(verb, "update-status") == 0) {
        rc = npos < 1 ? usage("file required") : cmd_write(c, verb, pos[0], &o);
    } else if (strcmp(verb, "patch") == 0) {
        json_error_t je;
        json_t *p = npos >= 4 ? json_loads(pos[3], 0, &je) : NULL;
        k8s_write_opts wo = { .dry_run = o.dry_run, .field_manager = o.field_manager };
        if (!p)
            rc = usage("patch: name and a JSON patch required");
        else if (k8s_merge_patch(c, r, o.ns, pos[2], p, &wo, &out, &e) != 0)
            rc = fail_err(&e);
        else
            print_json(out);
        json_decref(p);
    } else if (strcmp(verb, "delete") == 0) {
        k8s_delete_opts d = { .propagation = o.propagation, .uid = o.uid,
                              .resource_version = o.rv, .dry_run = o.dry_run };
        if (npos < 3)
            rc = usage("delete: name required");
        else if (k8s_delete(c, r, o.ns, pos[2], &d, &e) != 0)
            rc = fail_err(&e);
        else {
            out = json_pack("{s:b}", "deleted", 1);
            print_json(out);
        }
    } else if (strcmp(verb, "batch-get") == 0 || strcmp(verb, "batch-delete") == 0) {
        rc = cmd_batch(c, strcmp(verb, "batch-delete") == 0, r, pos + 2, npos - 2, &o);
    } else if (strcmp(verb, "watch") == 0) {
        rc = cmd_watch(c, r, &o);
    } else if (strcmp(verb, "raw") == 0) {
        if (npos < 2)
            rc = usage("raw: METHOD PATH [BODY]");
        else if (k8s_request(c, pos[0], pos[1], npos > 2 ? "application/json" : NULL,
                             npos > 2 ? pos[2] : NULL, &out, &e) != 0)
            rc = fail_err(&e);
        else
            print_json(out);
    } else {
        rc = usage("unknown verb");
    }
    json_decref(out);
out:
    k8s_client_free(c);
    free(token);
    return rc;
}
