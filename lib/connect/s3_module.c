/* s3_module.c - the `s3` option of the ocpv.dr modules: its suboptions and
 * s3_mod_client(), which reads the credentials (parameters, or a credentials
 * file whose access key, secret key and session token are all registered as
 * secrets so none of them reaches any output), refuses plain http unless
 * allow_insecure_http is set, and warns whenever TLS verification is off or
 * plain http is allowed. */
#include "s3_module.h"
#include "xstr.h"

#include <stdlib.h>
#include <string.h>

const mod_opt s3_mod_opts[] = {
    { .name = "endpoint", .type = OPT_STR },
    { .name = "region", .type = OPT_STR, .def = "\"us-east-1\"" },
    { .name = "bucket", .type = OPT_STR, .required = true },
    { .name = "prefix", .type = OPT_STR, .def = "\"\"" },
    { .name = "access_key", .type = OPT_STR, .no_log = true,
      .aliases = (const char *[]){ "aws_access_key_id", NULL } },
    { .name = "secret_key", .type = OPT_STR, .no_log = true,
      .aliases = (const char *[]){ "aws_secret_access_key", NULL } },
    { .name = "session_token", .type = OPT_STR, .no_log = true },
    { .name = "credentials_file", .type = OPT_PATH },
    { .name = "profile", .type = OPT_STR, .def = "\"default\"" },
    { .name = "ca_cert", .type = OPT_PATH },
    { .name = "validate_certs", .type = OPT_BOOL, .def = "true" },
    { .name = "allow_insecure_http", .type = OPT_BOOL, .def = "false" },
    { .name = "path_style", .type = OPT_BOOL },
    { .name = "retries", .type = OPT_INT, .def = "3" },
    { 0 }
};

static void scrub_free(char *s)
{
    if (s)
        memset(s, 0, strlen(s));
    free(s);
}

s3_client *s3_mod_client(module *m, json_t *d, char **err)
{
    const char *ak = mod_dict_str(d, "access_key");
    const char *sk = mod_dict_str(d, "secret_key");
    const char *tok = mod_dict_str(d, "session_token");
    const char *cf = mod_dict_str(d, "credentials_file");
    char *fak = NULL, *fsk = NULL, *ftok = NULL;
    if (cf && (ak || sk)) {
        xerr_set(err, "s3: give either access_key/secret_key or credentials_file, not both");
        return NULL;
    }
    if (cf) {
        if (s3_load_credentials(cf, mod_dict_str(d, "profile"), &fak, &fsk, &ftok, err) != 0)
            return NULL;
        /* every value of the file is as secret as a no_log parameter */
        mod_add_secret(m, fak);
        mod_add_secret(m, fsk);
        mod_add_secret(m, ftok);
        ak = fak;
        sk = fsk;
        tok = ftok;
    } else if (!ak || !sk) {
        xerr_set(err, "s3: access_key and secret_key (or credentials_file) are required");
        return NULL;
    }
    json_t *ps = json_object_get(d, "path_style");
    const char *ep = mod_dict_str(d, "endpoint");
    bool insecure = json_is_true(json_object_get(d, "allow_insecure_http"));
    s3_conf conf = {
        .endpoint = ep,
        .region = mod_dict_str(d, "region"),
        .bucket = mod_dict_str(d, "bucket"),
        .access_key = ak,
        .secret_key = sk,
        .session_token = tok,
        .ca_cert = mod_dict_str(d, "ca_cert"),
        .validate_certs = json_is_true(json_object_get(d, "validate_certs")),
        .allow_insecure_http = insecure,
        /* Default: path style for a custom endpoint (MinIO, ODF/NooBaa), as
         * OADP's s3ForcePathStyle usually is; virtual-host for AWS. */
        .path_style = json_is_boolean(ps) ? json_is_true(ps) : (ep && *ep),
        .retries = (int)json_integer_value(json_object_get(d, "retries")),
    };
    s3_client *c = s3_new(&conf, err);
    scrub_free(fak);
    scrub_free(fsk);
    scrub_free(ftok);
    if (!c)
        return NULL;
    const char *shown = ep && *ep ? ep : "the AWS S3 endpoint";
    if (s3_is_plain_http(c)) {
        mod_warn(m, "s3: allow_insecure_http is set and %s is plain http: every request - the "
                    "access key id, request signatures, session token - and the backup's "
                    "contents travel unencrypted and can be read or altered on the network; "
                    "use an https:// endpoint", shown);
    } else {
        if (insecure)
            mod_warn(m, "s3: allow_insecure_http is set (unused: %s is https); remove it so that "
                        "a later http:// endpoint is refused", shown);
        if (!conf.validate_certs)
            mod_warn(m, "s3: validate_certs is false: the TLS certificate of %s is not verified, "
                        "so anyone on the network path can impersonate the object store and read "
                        "the requests (access key id, signatures, session token) and the backup; "
                        "set validate_certs: true (with ca_cert for a private CA)", shown);
    }
    return c;
}
