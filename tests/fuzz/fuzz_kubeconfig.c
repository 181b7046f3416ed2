/* fuzz_kubeconfig.c - libFuzzer target for the kubeconfig parser
 * (lib/k8s/kubeconfig.c: libyaml events -> JSON tree with anchors/aliases ->
 * contexts/clusters/users interpretation, base64 *-data blobs, relative path
 * resolution).  The input is the file's text; a first line "#ctx:NAME" also
 * selects context NAME explicitly.  Nothing here touches the file system
 * (kubeconfig_parse never reads the files a kubeconfig names).
 *
 * Checked beyond "no crash, no leak": a success has an http(s) server URL
 * with a host and no trailing '/', key and certificate given together and
 * absolute file paths; a failure has a message naming the source; parsing
 * the same text twice gives the same answer. */
#include "kubeconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char *ctx = NULL;
    if (size > 5 && memcmp(text, "#ctx:", 5) == 0) {
        const char *nl = memchr(text, '\n', size);
        if (nl)
            ctx = strndup(text + 5, (size_t)(nl - text - 5));
    }
    kubeconfig kc, again;
    char *err = NULL, *err2 = NULL;
    int rc = kubeconfig_parse(text, size, "fuzz", "/nonexistent/dir", ctx, &kc, &err);
    if (rc == 0) {
        if (err || !kc.server || !kc.source || !kc.cluster)
            abort();
        size_t sl = strlen(kc.server);
        if (sl == 0 || kc.server[sl - 1] == '/' ||
            (strncmp(kc.server, "https://", 8) && strncmp(kc.server, "http://", 7)))
            abort();
        if ((kc.cert_file || kc.cert_data.len) != (kc.key_file || kc.key_data.len))
            abort();
        /* relative paths are resolved against the directory given */
        if ((kc.ca_file && kc.ca_file[0] != '/') || (kc.cert_file && kc.cert_file[0] != '/') ||
            (kc.key_file && kc.key_file[0] != '/') || (kc.token_file && kc.token_file[0] != '/'))
            abort();
    } else if (rc != -1 || !err || !strstr(err, "kubeconfig fuzz")) {
        abort();   /* every failure says why, naming the source */
    }
    int rc2 = kubeconfig_parse(text, size, "fuzz", "/nonexistent/dir", ctx, &again, &err2);
    if (rc2 != rc || !same(err, err2) ||
        (rc == 0 && (!same(kc.server, again.server) || !same(kc.token, again.token) ||
                     kc.ca_data.len != again.ca_data.len || kc.insecure != again.insecure)))
        abort();
    if (rc == 0) {
        kubeconfig_free(&kc);
        kubeconfig_free(&again);
    }
    free(err);
    free(err2);
    free(ctx);
    return 0;
}
