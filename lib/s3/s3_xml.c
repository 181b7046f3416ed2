/* s3_xml.c - parses the S3 XML documents the client reads (with libxml2):
 * <Error> bodies into "Code: Message", and ListObjectsV2 pages into an
 * s3_listing.  Network access, DTD loading and entity substitution are off. */
#include "s3.h"
#include "xstr.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int XML_OPTS = XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS;

static xmlDocPtr parse(const char *body, size_t len)
{
    if (!body || len == 0 || len > 64u * 1024 * 1024)
        return NULL;
    return xmlReadMemory(body, (int)len, "s3.xml", NULL, XML_OPTS);
}

static bool named(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Text of the first child element called name, or NULL.  malloc'd. */
static char *child_text(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next) {
        if (named(n, name)) {
            xmlChar *t = xmlNodeGetContent(n);
            char *s = strdup(t ? (const char *)t : "");
            xmlFree(t);
            return s;
        }
    }
    return NULL;
}

char *s3_parse_error(const char *body, size_t len)
{
    xmlDocPtr doc = parse(body, len);
    if (!doc)
        return NULL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    char *out = NULL;
    if (named(root, "Error")) {
        char *code = child_text(root, "Code");
        char *msg = child_text(root, "Message");
        if (code || msg) {
            size_t n = (code ? strlen(code) : 0) + (msg ? strlen(msg) : 0) + 8;
            out = malloc(n);
            if (out)
                snprintf(out, n, "%s%s%s", code ? code : "", code && msg ? ": " : "",
                         msg ? msg : "");
        }
        free(code);
        free(msg);
    }
    xmlFreeDoc(doc);
    return out;
}

static int add_object(s3_listing *out, xmlNodePtr c)
{
    s3_object *grown = realloc(out->objects, (out->nobjects + 1) * sizeof *grown);
    if (!grown)
        return -1;
    out->objects = grown;
    s3_object *o = &out->objects[out->nobjects];
    memset(o, 0, sizeof *o);
    o->key = child_text(c, "Key");
    if (!o->key)
        return 0;                       /* a Contents without a Key: ignore */
    char *size = child_text(c, "Size");
    o->size = size ? strtoll(size, NULL, 10) : -1;
    free(size);
    o->last_modified = child_text(c, "LastModified");
    o->etag = child_text(c, "ETag");
    out->nobjects++;
    return 0;
}

static int add_prefix(s3_listing *out, xmlNodePtr c)
{
    char *p = child_text(c, "Prefix");
    if (!p)
        return 0;
    char **grown = realloc(out->prefixes, (out->nprefixes + 1) * sizeof *grown);
    if (!grown) {
        free(p);
        return -1;
    }
    out->prefixes = grown;
    out->prefixes[out->nprefixes++] = p;
    return 0;
}

int s3_parse_list_page(const char *body, size_t len, size_t max_items,
                       s3_listing *out, bool *truncated, char **next_token,
                       char **err)
{
    *truncated = false;
    *next_token = NULL;
    xmlDocPtr doc = parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!named(root, "ListBucketResult")) {
        if (err)
            *err = strdup("the ListObjectsV2 response is not a ListBucketResult XML document");
        xmlFreeDoc(doc);
        return S3_ERR;
    }
    int rc = 0;
    for (xmlNodePtr n = root->children; n && rc == 0; n = n->next) {
        if (named(n, "Contents") || named(n, "CommonPrefixes")) {
            if (out->nobjects + out->nprefixes >= max_items) {
                xerr_set(err, "the listing has more than %zu entries; narrow the prefix",
                         max_items);
                rc = S3_ERR;
                break;
            }
            if ((named(n, "Contents") ? add_object(out, n) : add_prefix(out, n)) != 0) {
                if (err)
                    *err = strdup("out of memory reading the listing");
                rc = S3_ERR;
            }
        } else if (named(n, "IsTruncated")) {
            xmlChar *t = xmlNodeGetContent(n);
            *truncated = t && strcmp((const char *)t, "true") == 0;
            xmlFree(t);
        } else if (named(n, "NextContinuationToken")) {
            free(*next_token);
            *next_token = child_text(root, "NextContinuationToken");
        }
    }
    xmlFreeDoc(doc);
    if (rc == 0 && *truncated && (!*next_token || !**next_token)) {
        if (err)
            *err = strdup("the listing is truncated but has no NextContinuationToken");
        rc = S3_ERR;
    }
    if (rc != 0) {
        free(*next_token);
        *next_token = NULL;
    }
    return rc;
}

void s3_listing_free(s3_listing *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nobjects; i++) {
        free(l->objects[i].key);
        free(l->objects[i].last_modified);
        free(l->objects[i].etag);
    }
    for (size_t i = 0; i < l->nprefixes; i++)
        free(l->prefixes[i]);
    free(l->objects);
    free(l->prefixes);
    memset(l, 0, sizeof *l);
}
