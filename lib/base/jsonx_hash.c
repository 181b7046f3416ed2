/* jsonx_hash.c - SHA-256 of a JSON value's canonical form (OpenSSL libcrypto).
 * Kept apart from jsonx.c so statically linked modules that never hash do not
 * pull libcrypto in. */
#include "jsonx.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jx_sha256(const json_t *v, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *s = jx_canonical(v);
    EVP_Digest(s ? s : "", s ? strlen(s) : 0, md, &mdlen, EVP_sha256(), NULL);
    free(s);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}
