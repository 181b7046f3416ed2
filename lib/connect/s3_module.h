/* s3_module.h - the `s3` option of the ocpv.dr modules that read object
 * storage (oadp_parse: backups and Restore results), and the one place that
 * turns it into an s3_client: credentials (parameters or an AWS-style
 * credentials file, every value read registered as a secret with the module
 * runtime), plain http refused unless allow_insecure_http, and a module
 * warning whenever TLS verification is off or plain http is allowed. */
#ifndef OCPVDR_S3_MODULE_H
#define OCPVDR_S3_MODULE_H

#include "module.h"
#include "s3.h"

/* The suboptions of `s3` (endpoint, region, bucket, prefix, access_key,
 * secret_key, session_token, credentials_file, profile, ca_cert,
 * validate_certs, allow_insecure_http, path_style, retries). */
extern const mod_opt s3_mod_opts[];

/* Builds the client from a validated `s3` dict.  NULL with *err (naming the
 * option) on a bad configuration; never puts a credential into *err. */
s3_client *s3_mod_client(module *m, json_t *s3dict, char **err);

#endif
