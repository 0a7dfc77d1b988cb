/* serve_http.c — the HTTP side of `problemap serve`, on libmicrohttpd:
 * limits on what a client may send, routing, the access token, ETag and
 * 304, the embedded viewer files and the access log (see serve.h).
 *
 * Threads.  MHD runs its own listening and I/O on a pool of worker threads
 * (MHD_OPTION_THREAD_POOL_SIZE, one per core by default) rather than a
 * thread per connection: tiles are CPU work, so more threads than cores
 * only add memory and contention, and a thread per connection would let a
 * few hundred slow or idle clients take a few hundred threads.  In the pool
 * a worker multiplexes its connections with epoll, so a slow reader costs
 * a socket, not a thread, and the number of contexts rendering at once is
 * the pool's size.  A worker renders in its own callback (a tile takes
 * milliseconds; the few slow answers, reports, are serialised and cached).
 *
 * Each request gets a `req` in MHD's URI callback, where the raw request
 * target is still whole (for the log and the 4 KiB limit); the completion
 * callback writes the access log line and frees it.  The log has the
 * Combined Log Format, with the token's value replaced by "-": it records
 * the path and query and nothing of the data. */
#include "serve.h"
#include "web_assets.h"
#include "../engine/pm_alloc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef struct req {
    time_t started;
    char uri[SERVE_URI_MAX + 1];   /* the raw target, cut at the limit */
    size_t uri_len;                /* its whole length */
    char method[16], version[16];
    char client[INET6_ADDRSTRLEN];
    char referer[256], agent[256];
    unsigned status;               /* 0: never answered */
    size_t bytes;
    int seen, answered;            /* the handler has been called; has answered */
} req;

void reply_error(reply *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->status = status;
    blob_unref(r->body);
    r->body = NULL;
}

/* Copies at most cap − 1 bytes of s (NULL: "") into buf. */
static void copy_cut(char *buf, size_t cap, const char *s)
{
    snprintf(buf, cap, "%s", s ? s : "");
}

/* ---- the access log --------------------------------------------------------- */

/* Appends s to the line: printable ASCII as is, anything else (and the
 * quote and backslash) as \xHH, so a request cannot forge log lines. */
static size_t put_escaped(char *out, size_t at, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && at + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[at++] = (char)c;
        else
            at += (size_t)snprintf(out + at, cap - at, "\\x%02x", c);
    }
    out[at] = '\0';
    return at;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* 1 if the raw (percent-encoded) parameter name p[0..n) decodes to "token". */
static int is_token_name(const char *p, size_t n)
{
    static const char want[] = "token";
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        int c = (unsigned char)p[i];
        if (p[i] == '%' && i + 2 < n && hex_digit(p[i + 1]) >= 0 && hex_digit(p[i + 2]) >= 0) {
            c = hex_digit(p[i + 1]) * 16 + hex_digit(p[i + 2]);
            i += 2;
        }
        if (k >= sizeof want - 1 || c != want[k])
            return 0;
    }
    return k == sizeof want - 1;
}

/* A URL for the log (a request target or a Referer): escaped, and the
 * value of a token= parameter in its query replaced by "-". */
static size_t put_url(char *out, size_t at, size_t cap, const char *url)
{
    const char *q = strchr(url, '?');
    if (!q)
        return put_escaped(out, at, cap, url, strlen(url));
    at = put_escaped(out, at, cap, url, (size_t)(q - url) + 1);
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (eq && is_token_name(p, (size_t)(eq - p))) {
            at = put_escaped(out, at, cap, p, (size_t)(eq - p) + 1);
            at = put_escaped(out, at, cap, "-", 1);
        } else {
            at = put_escaped(out, at, cap, p, len);
        }
        p += len;
        if (*p == '&')
            at = put_escaped(out, at, cap, p++, 1);
    }
    return at;
}

/* Appends literal text. */
static size_t put_raw(char *out, size_t at, size_t cap, const char *s)
{
    int n = snprintf(out + at, cap - at, "%s", s);
    return n < 0 || (size_t)n >= cap - at ? cap - 1 : at + (size_t)n;
}

/* Appends a field: s escaped, or "-" when it is empty. */
static size_t put_field(char *out, size_t at, size_t cap, const char *s)
{
    return *s ? put_escaped(out, at, cap, s, strlen(s)) : put_raw(out, at, cap, "-");
}

static void access_log(server *s, const req *r, enum MHD_RequestTerminationCode toe)
{
    char when[40], line[SERVE_URI_MAX * 4 + 1024], num[48];
    struct tm tm;
    if (!gmtime_r(&r->started, &tm) || !strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm))
        strcpy(when, "-");
    unsigned status = r->status;
    if (!status) /* MHD answered (or the client left) before the handler ran */
        status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408
                 : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT  ? 499
                                                               : 400;
    size_t cap = sizeof line, at = 0;
    at = put_field(line, at, cap, r->client);
    at = put_raw(line, at, cap, " - - [");
    at = put_raw(line, at, cap, when);
    at = put_raw(line, at, cap, "] \"");
    at = put_field(line, at, cap, r->method);
    at = put_raw(line, at, cap, " ");
    at = put_url(line, at, cap, r->uri);
    if (r->uri_len > SERVE_URI_MAX)
        at = put_raw(line, at, cap, "...");
    at = put_raw(line, at, cap, " ");
    at = put_field(line, at, cap, r->version);
    if (r->bytes)
        snprintf(num, sizeof num, "\" %u %zu \"", status, r->bytes);
    else
        snprintf(num, sizeof num, "\" %u - \"", status);
    at = put_raw(line, at, cap, num);
    at = r->referer[0] ? put_url(line, at, cap, r->referer) : put_raw(line, at, cap, "-");
    at = put_raw(line, at, cap, "\" \"");
    at = put_field(line, at, cap, r->agent);
    put_raw(line, at, cap, "\"\n");
    pthread_mutex_lock(&s->log_lock);
    fputs(line, s->log);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_lock);
}

/* ---- MHD callbacks ------------------------------------------------------------ */

static void client_address(struct MHD_Connection *c, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)cap);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    req *r = pm_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->started = time(NULL);
    r->uri_len = strlen(uri);
    copy_cut(r->uri, sizeof r->uri, uri);
    client_address(c, r->client, sizeof r->client);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    req *r = *con_cls;
    if (!r)
        return;
    access_log(cls, r, toe);
    pm_free(r);
    *con_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    serve_log("http: %s", msg);
}

/* ---- answering ----------------------------------------------------------------- */

static void free_blob_ref(void *cls)
{
    blob_unref(cls);
}

/* 1 if the If-None-Match list names etag (weak or strong) or is "*". */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t elen = strlen(etag);
    for (const char *p = inm; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == elen && memcmp(p, etag, elen) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

static void common_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* a page opened as /?token=T must not hand the token on in Referer */
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* Queues the answer; the reply's body reference goes to MHD. */
static enum MHD_Result send_reply(struct MHD_Connection *c, req *r, int head, reply *rep)
{
    struct MHD_Response *resp;
    unsigned status = rep->status;
    size_t bytes = 0;
    if (status == MHD_HTTP_OK && rep->body) {
        blob *b = rep->body;
        rep->body = NULL;
        if (etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
                         b->etag)) {
            status = MHD_HTTP_NOT_MODIFIED;
            resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, b->etag);
            blob_unref(b);
        } else {
            bytes = b->len;
            resp = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, free_blob_ref, b);
            if (resp) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, b->type);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, b->etag);
            } else {
                blob_unref(b);
            }
        }
        if (resp && rep->cache)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, rep->cache);
    } else {
        if (status == MHD_HTTP_OK) /* a 200 without a body is a bug of ours */
            reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
        status = rep->status;
        strncat(rep->msg, "\n", sizeof rep->msg - strlen(rep->msg) - 1);
        bytes = strlen(rep->msg);
        resp = MHD_create_response_from_buffer(bytes, rep->msg, MHD_RESPMEM_MUST_COPY);
        if (resp) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
            if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
            if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"problemap\"");
        }
    }
    if (!resp)
        return MHD_NO;   /* out of memory: MHD closes the connection */
    common_headers(resp);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (r) {
        r->status = status;
        r->bytes = head ? 0 : bytes;
    }
    return ok;
}

/* An embedded file, made a blob (with its ETag) on first use. */
static void asset_reply(server *s, const web_asset *a, reply *rep)
{
    blob *b = (blob *)lru_get(s->assets, a->path);
    if (!b && (b = blob_copy(a->data, a->len, a->content_type, 0, a->path)))
        b = (blob *)lru_put(s->assets, a->path, &b->sh, b->len);
    if (!b) {
        reply_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    rep->status = MHD_HTTP_OK;
    rep->body = b;
    rep->cache = "no-cache";   /* they change with the program: revalidation is a 304 */
}

/* ---- the request ----------------------------------------------------------------- */

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                     const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    params *ps = cls;
    if (ps->n == SERVE_PARAMS_MAX)
        return MHD_NO;
    ps->v[ps->n++] = (param){key, value, value ? value_size : 0};
    return MHD_YES;
}

/* Constant-time comparison of a secret (its length is not a secret). */
static int secret_equal(const char *a, const char *b, size_t blen)
{
    if (!a || strlen(a) != blen)
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int authorised(const server *s, struct MHD_Connection *c, const params *ps)
{
    const char *tok = s->o.token;
    if (!tok)
        return 1;
    size_t n = strlen(tok);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && secret_equal(auth + 7 + strspn(auth + 7, " "), tok, n))
        return 1;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i].key, "token") == 0 && secret_equal(ps->v[i].value, tok, n))
            return 1;
    return 0;
}

/* A decimal number of at most 7 digits; -1 if not one. */
static long small_number(const char *s, size_t n)
{
    if (n == 0 || n > 7)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

serve_tile_addr serve_tile_path_parse(const char *path, char *layer, size_t cap, long zxy[3],
                                      int *size)
{
    size_t nlen = strcspn(path, "./");
    *size = 0;
    if (nlen == 0 || nlen >= cap)
        return SERVE_TILE_NO_LAYER;
    memcpy(layer, path, nlen);
    layer[nlen] = '\0';
    const char *p = path + nlen;
    if (strcmp(p, ".json") == 0)
        return SERVE_TILE_JSON;
    for (int i = 0; i < 3; i++) {
        if (*p != '/')
            return SERVE_TILE_NOT_TILE;
        p++;
        size_t len = strcspn(p, i < 2 ? "/" : "@.");
        zxy[i] = small_number(p, len);
        if (zxy[i] < 0)
            return SERVE_TILE_BAD_NUMBER;
        p += len;
    }
    *size = strcmp(p, "@2x.png") == 0 ? 512 : strcmp(p, ".png") == 0 ? 256 : 0;
    if (!*size)
        return SERVE_TILE_NOT_PNG;
    if (zxy[0] > SERVE_MAX_ZOOM)
        return SERVE_TILE_ZOOM;
    long side = 1L << zxy[0];
    if (zxy[1] >= side || zxy[2] >= side)
        return SERVE_TILE_OFF_GRID;
    return SERVE_TILE_OK;
}

/* /tiles/{layer}.json and /tiles/{layer}/{z}/{x}/{y}[@2x].png */
static void route_tiles(const api_call *a, const char *path, reply *rep)
{
    char name[16];
    long v[3] = {0, 0, 0};
    int size;
    serve_tile_addr t = serve_tile_path_parse(path, name, sizeof name, v, &size);
    int kind = t == SERVE_TILE_NO_LAYER ? -1 : layer_kind_parse(name);
    if (kind < 0) {
        reply_error(rep, MHD_HTTP_NOT_FOUND, "no such layer (heat, choropleth, grid, hotspots)");
        return;
    }
    switch (t) {
    case SERVE_TILE_JSON:
        api_tilejson(a, (layer_kind)kind, rep);
        return;
    case SERVE_TILE_NOT_TILE:
        reply_error(rep, MHD_HTTP_NOT_FOUND, "not a tile: /tiles/%s/{z}/{x}/{y}.png", name);
        return;
    case SERVE_TILE_BAD_NUMBER:
        reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad tile address: z, x and y are whole numbers");
        return;
    case SERVE_TILE_NOT_PNG:
        reply_error(rep, MHD_HTTP_NOT_FOUND, "not a tile: /tiles/%s/{z}/{x}/{y}.png or @2x.png", name);
        return;
    case SERVE_TILE_ZOOM:
        reply_error(rep, MHD_HTTP_BAD_REQUEST, "zoom %ld is beyond %d", v[0], SERVE_MAX_ZOOM);
        return;
    case SERVE_TILE_OFF_GRID:
        reply_error(rep, MHD_HTTP_BAD_REQUEST, "tile %ld/%ld/%ld is off the grid (x and y below %ld)", v[0],
                    v[1], v[2], 1L << v[0]);
        return;
    case SERVE_TILE_NO_LAYER: /* answered above */
    case SERVE_TILE_OK:
        break;
    }
    api_tile(a, (layer_kind)kind, (int)v[0], (uint32_t)v[1], (uint32_t)v[2], size, rep);
}

/* The data endpoints: with a generation and a context. */
static void route_data(server *s, const char *url, const params *ps, reply *rep)
{
    api_call a = {s, server_gen(s), ctx_pool_get(&s->pool), ps};
    if (strcmp(url, "/health") == 0)
        api_health(&a, rep);
    else if (strcmp(url, "/api/meta.json") == 0)
        api_meta(&a, rep);
    else if (strcmp(url, "/api/districts.geojson") == 0)
        api_districts(&a, rep);
    else if (strcmp(url, "/api/summary.json") == 0)
        api_summary(&a, rep);
    else if (strcmp(url, "/api/report.png") == 0 || strcmp(url, "/api/report.pdf") == 0)
        api_report(&a, strcmp(url, "/api/report.pdf") == 0, rep);
    else if (strncmp(url, "/tiles/", 7) == 0)
        route_tiles(&a, url + 7, rep);
    else
        reply_error(rep, MHD_HTTP_NOT_FOUND, "not found");
    ctx_pool_put(&s->pool, a.ctx);
    gen_unref(a.g);
}

/* A path a client may ask for: absolute, no "..", no backslash, no
 * control bytes (MHD has already decoded %2e%2e and the like). */
static int path_ok(const char *url)
{
    if (url[0] != '/' || strstr(url, "..") || strchr(url, '\\'))
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static void route(server *s, struct MHD_Connection *c, const req *r, const char *url, reply *rep)
{
    if (r->uri_len > SERVE_URI_MAX) {
        reply_error(rep, MHD_HTTP_URI_TOO_LONG, "request target longer than %d bytes", SERVE_URI_MAX);
        return;
    }
    if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > SERVE_PARAMS_MAX) {
        reply_error(rep, MHD_HTTP_BAD_REQUEST, "more than %d query parameters", SERVE_PARAMS_MAX);
        return;
    }
    params ps = {.n = 0};
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_param, &ps);
    if (!path_ok(url)) {
        reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad path");
        return;
    }
    const web_asset *asset = web_asset_find(url);
    if (asset) { /* the viewer's files hold no data: no token needed */
        asset_reply(s, asset, rep);
        return;
    }
    if (!authorised(s, c, &ps)) {
        reply_error(rep, MHD_HTTP_UNAUTHORIZED, "access token required (Authorization: Bearer, or ?token=)");
        return;
    }
    route_data(s, url, &ps, rep);
}

/* MHD calls this at least twice for a request: when the headers are in,
 * then once per piece of body, then once more with no data.  Answering
 * only at the last call keeps the connection alive (an answer queued
 * earlier makes MHD drop the rest of the request and close); a method we
 * refuse is answered at once, so no body of it is read. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)upload_data;
    server *s = cls;
    req *r = *con_cls;
    reply rep = {.status = MHD_HTTP_OK};
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!r) {
        reply_error(&rep, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return send_reply(c, NULL, 0, &rep);
    }
    if (!r->seen) {
        r->seen = 1;
        copy_cut(r->method, sizeof r->method, method);
        copy_cut(r->version, sizeof r->version, version);
        copy_cut(r->referer, sizeof r->referer, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_REFERER));
        copy_cut(r->agent, sizeof r->agent, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT));
        if (head || strcmp(method, MHD_HTTP_METHOD_GET) == 0)
            return MHD_YES;
        r->answered = 1;
        reply_error(&rep, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
        return send_reply(c, r, 0, &rep);
    }
    if (*upload_data_size || r->answered) { /* a body we do not read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    r->answered = 1;
    route(s, c, r, url, &rep);
    return send_reply(c, r, head, &rep);
}

struct MHD_Daemon *serve_http_start(server *s, const void *sa, size_t sa_len, int ipv6)
{
    (void)sa_len;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                            MHD_OPTION_THREAD_POOL_SIZE, s->o.threads,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNECTIONS_MAX,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVE_CONN_MEMORY,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
}
