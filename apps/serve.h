/* serve.h — the inside of `problemap serve`, shared by apps/serve*.c:
 *   serve.c        options, the listening daemon, signals, reloading
 *   serve_cache.c  reference-counted bodies and the LRU caches
 *   serve_state.c  generations (a dataset with its caches), the context pool
 *   serve_http.c   libmicrohttpd callbacks: limits, routing, token, ETag, log
 *   serve_api.c    the endpoints: filters → layers, tiles, tables, reports
 *
 * No hidden globals: everything lives in one `server`, the MHD closure.
 * Data is immutable once shared: a request takes a reference to the
 * current generation and keeps it until its answer is built, so a reload
 * swaps generations under requests in flight.  Program code. */
#ifndef PM_SERVE_H
#define PM_SERVE_H

#include "layers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- limits ------------------------------------------------------------- */

enum {
    SERVE_URI_MAX = 4096,         /* request target, bytes (414 beyond) */
    SERVE_PARAMS_MAX = 32,        /* query parameters (400 beyond) */
    SERVE_VALUE_MAX = 200,        /* one parameter's value, bytes */
    SERVE_LAYERS_MAX = 16,        /* map layers cached per generation */
    SERVE_MAX_ZOOM = 18,
    SERVE_CONNECTIONS_MAX = 512,
    SERVE_TIMEOUT_S = 30,         /* idle connection */
    SERVE_CONN_MEMORY = 32 * 1024 /* per connection: request line and headers */
};

/* ---- shared objects (serve_cache.c) -------------------------------------- */

/* A reference-counted object: destroy runs when the last reference goes. */
typedef struct shared shared;
struct shared {
    atomic_long refs;
    void (*destroy)(shared *s);
};
void shared_init(shared *s, void (*destroy)(shared *s));   /* one reference */
shared *shared_ref(shared *s);
void shared_unref(shared *s);                             /* NULL is fine */

/* A response body with its type and strong ETag, shared by a cache and the
 * responses that are sending it. */
typedef struct blob {
    shared sh;
    uint8_t *data;          /* owned (pm_malloc) */
    size_t len;
    const char *type;       /* static Content-Type */
    char etag[24];          /* "\"<16 hex digits>\"" */
} blob;

/* A blob of len bytes at data, which it takes (pm_malloc'd; freed here on
 * failure too).  The ETag hashes generation, key and content.  NULL when
 * out of memory. */
blob *blob_adopt(uint8_t *data, size_t len, const char *type, uint64_t generation, const char *key);
/* The same with a copy of data (data may be malloc'd, static, anything). */
blob *blob_copy(const void *data, size_t len, const char *type, uint64_t generation, const char *key);
static inline blob *blob_ref(blob *b) { return (blob *)shared_ref(&b->sh); }
static inline void blob_unref(blob *b) { if (b) shared_unref(&b->sh); }

/* A least-recently-used cache of shared objects by string key, bounded by
 * the sum of the entries' costs (bytes, or 1 per entry for a count).
 * Thread-safe. */
typedef struct lru lru;
lru *lru_new(size_t max_cost);                 /* NULL when out of memory */
void lru_free(lru *c);                         /* drops the cache's references */
/* The object cached under key with a new reference, or NULL. */
shared *lru_get(lru *c, const char *key);
/* Caches v under key.  Takes the caller's reference to v and returns one
 * to what is now cached under key: v, or the object another thread cached
 * there first (v is then dropped).  An object that cannot be kept (out of
 * memory, dearer than the whole bound) is returned uncached. */
shared *lru_put(lru *c, const char *key, shared *v, size_t cost);
void lru_clear(lru *c);
size_t lru_count(lru *c);
size_t lru_cost(lru *c);

/* FNV-1a, 64 bits: ETags and hash tables. */
uint64_t serve_hash(uint64_t h, const void *data, size_t len);
#define SERVE_HASH_SEED 0xcbf29ce484222325ull

/* ---- the server ----------------------------------------------------------- */

typedef struct serve_opts {
    place_opts p;            /* the placing options (--threads is the worker pool too) */
    const char *listen;      /* "127.0.0.1:8080" */
    const char *period;      /* day, week (default), month */
    const char *dataset;     /* a dataset snapshot instead of p.complaints, or NULL */
    const char *token;       /* NULL: open */
    const char *access_log;  /* path; NULL: standard error */
    const char *title, *attribution;
    int insecure;            /* listen beyond loopback without a token */
    size_t cache_bytes;      /* response cache bound per generation */
    unsigned threads;        /* worker pool */
} serve_opts;

/* One loaded dataset with its caches.  A request holds a reference while
 * it works; the server holds one while the generation is current. */
typedef struct gen {
    shared sh;
    uint64_t number;
    dataset *d;
    pm_ctx *ctx;             /* the context that built it, and frees it */
    time_t loaded_at;
    lru *responses;          /* bodies (tiles, tables, reports), bytes */
    lru *layers;             /* map layers (layer_ref), count */
} gen;

/* A context for each worker thread, handed out under a mutex. */
typedef struct ctx_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    pm_ctx **all, **free;
    size_t n, n_free;
} ctx_pool;

typedef struct server {
    serve_opts o;
    pthread_mutex_t lock;    /* guards cur */
    gen *cur;
    ctx_pool pool;
    lru *assets;             /* the embedded files as blobs */
    pthread_mutex_t report_lock;   /* one report at a time (Pango; CPU) */
    pthread_mutex_t log_lock;
    FILE *log;               /* the access log */
    int own_log;             /* log is ours to close */
} server;

/* ---- generations and contexts (serve_state.c) ----------------------------- */

/* Loads the data (messages on standard error) as generation `number`, with
 * everything that is built lazily built now, so it can be shared.
 * Returns an exit status; *out is NULL on failure. */
int gen_load(const serve_opts *o, uint64_t number, gen **out);
static inline void gen_unref(gen *g) { if (g) shared_unref(&g->sh); }
/* The current generation, with a reference for the caller. */
gen *server_gen(server *s);
/* Makes g (whose reference the server takes) current; the old one is
 * freed when its last request finishes; its bodies are dropped now. */
void server_swap(server *s, gen *g);

int ctx_pool_init(ctx_pool *p, size_t n);   /* PM_E_NOMEM */
void ctx_pool_destroy(ctx_pool *p);
pm_ctx *ctx_pool_get(ctx_pool *p);          /* waits for a free one */
void ctx_pool_put(ctx_pool *p, pm_ctx *ctx);

/* A map layer in a generation's layer cache. */
typedef struct layer_ref {
    shared sh;
    map_layer *l;
} layer_ref;

/* Lines on standard error, "problemap serve: ..." (never complaint data). */
void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- HTTP (serve_http.c) -------------------------------------------------- */

struct MHD_Daemon;
/* Starts listening on sa (the options' address) with the worker pool. */
struct MHD_Daemon *serve_http_start(server *s, const void *sa, size_t sa_len, int ipv6);

/* ---- endpoints (serve_api.c) ---------------------------------------------- */

/* One query parameter as MHD decoded it (value NULL when there was no '='). */
typedef struct param {
    const char *key, *value;
    size_t value_len;
} param;

typedef struct params {
    param v[SERVE_PARAMS_MAX];
    size_t n;
} params;

/* What an endpoint answers: a body (200), or a status with a message. */
typedef struct reply {
    unsigned status;
    blob *body;              /* a reference; NULL: msg as text/plain */
    const char *cache;       /* Cache-Control of a 200 */
    char msg[256];
} reply;

void reply_error(reply *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Everything an endpoint works with. */
typedef struct api_call {
    server *srv;
    gen *g;
    pm_ctx *ctx;
    const params *ps;
} api_call;

void api_health(const api_call *a, reply *r);
void api_meta(const api_call *a, reply *r);
void api_tilejson(const api_call *a, layer_kind k, reply *r);
void api_tile(const api_call *a, layer_kind k, int z, uint32_t x, uint32_t y, int size, reply *r);
void api_districts(const api_call *a, reply *r);
void api_summary(const api_call *a, reply *r);
void api_report(const api_call *a, int pdf, reply *r);

/* ---- tile addresses (serve_http.c) ---------------------------------------- */

/* What serve_tile_path_parse() found in the part of a URL after "/tiles/". */
typedef enum serve_tile_addr {
    SERVE_TILE_OK = 0,        /* {layer}/{z}/{x}/{y}.png or @2x.png, on the grid */
    SERVE_TILE_JSON,          /* {layer}.json */
    SERVE_TILE_NO_LAYER,      /* no layer name, or one longer than the buffer */
    SERVE_TILE_NOT_TILE,      /* not /{z}/{x}/{y} after the layer */
    SERVE_TILE_NOT_PNG,       /* z/x/y not followed by .png or @2x.png */
    SERVE_TILE_BAD_NUMBER,    /* z, x or y not a whole number of 1 to 7 digits */
    SERVE_TILE_ZOOM,          /* z beyond SERVE_MAX_ZOOM */
    SERVE_TILE_OFF_GRID       /* x or y not below 2^z */
} serve_tile_addr;

/* Parses path (NUL-terminated, no "/tiles/" prefix): the layer name goes
 * into layer (cap bytes; set whenever the result is not
 * SERVE_TILE_NO_LAYER, whether or not the layer exists — the caller checks
 * the name), the numbers into zxy[] as far as they were read, and the tile
 * size (256, or 512 for @2x) into *size.  Pure: no I/O, no allocation. */
serve_tile_addr serve_tile_path_parse(const char *path, char *layer, size_t cap, long zxy[3],
                                      int *size);

#endif
