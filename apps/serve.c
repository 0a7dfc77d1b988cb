/* serve.c — `problemap serve`: the web map as an HTTP server (docs/server.md).
 *
 * This file is the process: options, the listening address (loopback
 * unless a token guards it), the initial load, the daemon
 * (serve_http.c), and the main thread's loop, which waits for signals and
 * every 2 s looks at the input files.  SIGHUP, or an input file that has
 * changed and then stayed the same for one more look (so a file being
 * written is not read half-way), starts a reload on a background thread:
 * it builds a new generation while the old one serves, then swaps it in.
 * A reload that fails leaves the old data serving, and the same files are
 * not retried until they change again.  SIGUSR1 reopens the access log
 * (after logrotate has moved it).  SIGINT/SIGTERM stop the daemon
 * (requests in flight finish), wait for a reload under way, free
 * everything and exit 0. */
#include "serve.h"
#include "../engine/pm_alloc.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "Usage: problemap serve --boundaries B.geojson --complaints C.csv [--listen ADDR:PORT]\n"
    "                       [options]\n"
    "       problemap serve --boundaries B.geojson --dataset D.pmdata [options]\n"
    "\n"
    "Places the complaints (as 'geocode' does), aggregates them (as 'cube' does) and serves\n"
    "the web map: the viewer, heat-map, choropleth and grid tiles, the districts' GeoJSON,\n"
    "the summary and the officials' report, each for any filter, drawn when first asked\n"
    "for and cached.  The data is reloaded without a pause on SIGHUP or when an input file\n"
    "changes.  Endpoints and deployment: docs/server.md.\n"
    "With --dataset the complaints come placed, aggregated and projected from a snapshot\n"
    "that 'problemap dataset' wrote (docs/dataset.md): the server starts without placing.\n"
    "\n";
static const char usage_serve[] =
    "Server:\n"
    "  --listen ADDR:PORT       where to listen (default 127.0.0.1:8080; [::1]:8080 for IPv6;\n"
    "                           port 0 picks a free port, printed at start)\n"
    "  --dataset FILE           the placed complaints, heat-map points and cube from this snapshot\n"
    "                           ('problemap dataset'; the same --boundaries and --topics)\n"
    "                           instead of --complaints; reloaded when it is replaced\n"
    "  --period day|week|month  the cube's period (default week)\n"
    "  --threads N              worker threads, for placing too (default: all cores)\n"
    "  --cache-mb N             memory for cached tiles and tables (default 64)\n"
    "  --token T                require this access token: 'Authorization: Bearer T' or ?token=T\n"
    "  --token-file FILE        the token from the first line of FILE (keeps it out of 'ps')\n"
    "  --insecure               allow an address beyond loopback without a token\n"
    "  --access-log FILE        requests in Combined Log Format, appended (default: standard\n"
    "                           error); reopened on SIGUSR1 (after logrotate)\n"
    "  --title TEXT             the map's and the report's title\n"
    "  --attribution TEXT       the boundaries' source, for the map and the report\n"
    "  -h, --help               this help\n";

#define POLL_S 2
#define WATCH_MAX 5

typedef struct listen_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    int ipv6, loopback;
    char host[128];
} listen_addr;

/* The process: the server and what only the main thread uses. */
typedef struct serve_main {
    server s;
    listen_addr addr;
    char token[260];
    const char *token_file;
} serve_main;

/* ---- options ----------------------------------------------------------------- */

static int parse_size(const char *arg, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (*end || end == arg || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "ADDR:PORT", "[V6]:PORT"; a host name resolves to its first address. */
static int parse_listen(const char *s, listen_addr *out)
{
    char host[128], port[8];
    const char *colon = strrchr(s, ':'), *h = s, *h_end = colon;
    if (s[0] == '[') {
        h_end = strchr(s, ']');
        if (!h_end || h_end[1] != ':')
            return cli_usage_error("serve", "--listen: '%s' is not [IPV6]:PORT", s);
        h = s + 1;
        colon = h_end + 1;
    }
    long p;
    if (!colon || h_end == h || (size_t)(h_end - h) >= sizeof host || parse_size(colon + 1, 0, 65535, &p))
        return cli_usage_error("serve", "--listen: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080)", s);
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    snprintf(port, sizeof port, "%ld", p);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc)
        return cli_usage_error("serve", "--listen: %s: %s", host, gai_strerror(rc));
    memcpy(&out->sa, ai->ai_addr, ai->ai_addrlen);
    out->len = ai->ai_addrlen;
    out->ipv6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (out->ipv6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)&out->sa)->sin6_addr;
        out->loopback = IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)&out->sa;
        out->loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    snprintf(out->host, sizeof out->host, out->ipv6 ? "[%s]" : "%s", host);
    return EXIT_OK;
}

/* A token is 1 to 256 visible ASCII characters (it travels in a header). */
static int token_ok(const char *t)
{
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] >= 0x7f)
            return 0;
    return n >= 1 && n <= 256;
}

static int read_token_file(serve_main *m)
{
    FILE *f = fopen(m->token_file, "r");
    if (!f)
        return cli_usage_error("serve", "--token-file: %s: %s", m->token_file, strerror(errno));
    int got = fgets(m->token, sizeof m->token, f) != NULL;
    fclose(f);
    if (got)
        m->token[strcspn(m->token, "\r\n")] = '\0';
    if (!got || !token_ok(m->token))
        return cli_usage_error("serve", "--token-file: %s: the first line must be the token "
                               "(1 to 256 visible ASCII characters)", m->token_file);
    m->s.o.token = m->token;
    return EXIT_OK;
}

static int parse_args(int argc, char **argv, serve_main *m)
{
    enum { O_LISTEN = OPT_PLACE_LAST, O_PERIOD, O_CACHE, O_TOKEN, O_TOKEN_FILE, O_INSECURE, O_LOG,
           O_TITLE, O_ATTRIBUTION, O_DATASET };
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"listen", required_argument, 0, O_LISTEN}, {"period", required_argument, 0, O_PERIOD},
        {"cache-mb", required_argument, 0, O_CACHE}, {"token", required_argument, 0, O_TOKEN},
        {"token-file", required_argument, 0, O_TOKEN_FILE},
        {"insecure", no_argument, 0, O_INSECURE}, {"access-log", required_argument, 0, O_LOG},
        {"title", required_argument, 0, O_TITLE}, {"attribution", required_argument, 0, O_ATTRIBUTION},
        {"dataset", required_argument, 0, O_DATASET},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    serve_opts *o = &m->s.o;
    const char *listen = "127.0.0.1:8080";
    long v;
    int opt, k;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if ((k = place_option(&o->p, "serve", opt, optarg)) < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case O_LISTEN: listen = optarg; break;
        case O_PERIOD:
            if (pm_period_kind_parse(optarg) < 0)
                return cli_usage_error("serve", "--period: '%s' is not day, week or month", optarg);
            o->period = optarg;
            break;
        case O_CACHE:
            if (parse_size(optarg, 1, 1 << 20, &v))
                return cli_usage_error("serve", "--cache-mb: '%s' is not a number from 1 to 1048576", optarg);
            o->cache_bytes = (size_t)v << 20;
            break;
        case O_TOKEN:
            if (!token_ok(optarg))
                return cli_usage_error("serve", "--token: 1 to 256 visible ASCII characters");
            o->token = optarg;
            break;
        case O_TOKEN_FILE: m->token_file = optarg; break;
        case O_INSECURE: o->insecure = 1; break;
        case O_LOG: o->access_log = optarg; break;
        case O_TITLE: o->title = optarg; break;
        case O_ATTRIBUTION: o->attribution = optarg; break;
        case O_DATASET: o->dataset = optarg; break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_serve); return -1;
        default: return cli_usage_error("serve", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    int ex = o->dataset ? place_check_dataset(&o->p, "serve") : place_check(&o->p, "serve");
    if (!ex && m->token_file)
        ex = o->token ? cli_usage_error("serve", "give --token or --token-file, not both") : read_token_file(m);
    if (!ex)
        ex = parse_listen(listen, &m->addr);
    if (!ex && !m->addr.loopback && !o->token && !o->insecure)
        ex = cli_usage_error("serve", "refusing to listen on %s, beyond this machine, without "
                             "--token (or --insecure, behind a proxy that checks access)", m->addr.host);
    if (!ex && o->token && strlen(o->token) < 16)
        serve_log("warning: a token of %zu characters is easy to guess; use 32 random ones",
                  strlen(o->token));
    o->threads = o->p.threads > 0 ? (unsigned)o->p.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (o->threads < 1)
        o->threads = 1;
    return ex;
}

/* ---- watching the inputs ---------------------------------------------------------- */

typedef struct file_sig {
    int missing;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_sig;

typedef struct inputs {
    const char *path[WATCH_MAX];
    size_t n;
} inputs;

typedef struct inputs_sig {
    file_sig f[WATCH_MAX];
} inputs_sig;

static void inputs_init(inputs *in, const serve_opts *o)
{
    const place_opts *p = &o->p;
    const char *maybe[WATCH_MAX] = {p->b.path, p->b.regions_path,
                                    o->dataset ? o->dataset : p->complaints, p->topics,
                                    /* a mapping given as a file, not a shipped name */
                                    p->mapping && (strchr(p->mapping, '/') || strstr(p->mapping, ".json"))
                                        ? p->mapping : NULL};
    in->n = 0;
    for (size_t i = 0; i < WATCH_MAX; i++)
        if (maybe[i])
            in->path[in->n++] = maybe[i];
}

static void inputs_stat(const inputs *in, inputs_sig *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < in->n; i++) {
        struct stat st;
        file_sig *f = &out->f[i];
        if (stat(in->path[i], &st) != 0) {
            f->missing = 1;
            continue;
        }
        f->dev = st.st_dev, f->ino = st.st_ino, f->size = st.st_size, f->mtime = st.st_mtim;
    }
}

static int sig_equal(const inputs_sig *a, const inputs_sig *b)
{
    for (size_t i = 0; i < WATCH_MAX; i++) {
        const file_sig *x = &a->f[i], *y = &b->f[i];
        if (x->missing != y->missing || x->dev != y->dev || x->ino != y->ino || x->size != y->size ||
            x->mtime.tv_sec != y->mtime.tv_sec || x->mtime.tv_nsec != y->mtime.tv_nsec)
            return 0;
    }
    return 1;
}

/* ---- reloading --------------------------------------------------------------------- */

typedef struct reloader {
    server *s;
    pthread_t thread;
    int running;              /* the main thread's view */
    atomic_int finished;      /* set by the reload thread as it ends */
    uint64_t number;          /* the generation it builds */
} reloader;

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void log_loaded(const char *what, const gen *g, int64_t t0_ms)
{
    double s = (double)(now_ms() - t0_ms) / 1000;
    const place_run *r = &g->d->run;
    serve_log("%s generation %llu in %.1f s: %llu complaints in %zu districts (%llu rejected)", what,
              (unsigned long long)g->number, s, (unsigned long long)pm_cube_total(g->d->cube),
              pm_districts_count(r->ds), (unsigned long long)r->rejected);
}

static void *reload_main(void *arg)
{
    reloader *rl = arg;
    int64_t t0 = now_ms();
    gen *g;
    if (gen_load(&rl->s->o, rl->number, &g) == EXIT_OK) {
        log_loaded("reloaded:", g, t0);
        server_swap(rl->s, g);
    } else {
        serve_log("reload failed (the reason is above); still serving generation %llu",
                  (unsigned long long)(rl->number - 1));
    }
    atomic_store(&rl->finished, 1);
    return NULL;
}

static void reload_start(reloader *rl)
{
    gen *g = server_gen(rl->s);
    rl->number = g->number + 1;
    gen_unref(g);
    atomic_store(&rl->finished, 0);
    if (pthread_create(&rl->thread, NULL, reload_main, rl) != 0) {
        serve_log("cannot start a reload thread: %s", strerror(errno));
        return;
    }
    rl->running = 1;
}

static void reload_reap(reloader *rl, int wait)
{
    if (rl->running && (wait || atomic_load(&rl->finished))) {
        pthread_join(rl->thread, NULL);
        rl->running = 0;
    }
}

/* ---- the process ---------------------------------------------------------------------- */

static int open_access_log(server *s)
{
    if (!s->o.access_log) {
        s->log = stderr;
        return EXIT_OK;
    }
    FILE *f = strcmp(s->o.access_log, "-") == 0 ? stdout : fopen(s->o.access_log, "a");
    if (!f) {
        serve_log("--access-log: %s: %s", s->o.access_log, strerror(errno));
        return EXIT_RUN;
    }
    s->own_log = f != stdout;
    s->log = f;
    return EXIT_OK;
}

/* After logrotate has moved it away. */
static void reopen_access_log(server *s)
{
    if (!s->own_log)
        return;
    pthread_mutex_lock(&s->log_lock);
    FILE *f = freopen(s->o.access_log, "a", s->log);
    int e = errno;
    s->log = f ? f : stderr;   /* freopen has closed the old stream either way */
    s->own_log = f != NULL;
    pthread_mutex_unlock(&s->log_lock);
    if (!f)
        serve_log("--access-log: cannot reopen %s: %s; logging to standard error", s->o.access_log,
                  strerror(e));
}

/* Waits for signals, watches the inputs, runs reloads; returns at SIGINT/SIGTERM. */
static void main_loop(server *s, const sigset_t *sigs)
{
    inputs in;
    inputs_sig acted, seen, now;
    inputs_init(&in, &s->o);
    inputs_stat(&in, &acted);
    seen = acted;
    reloader rl = {.s = s};
    int want = 0;
    int64_t next = now_ms() + POLL_S * 1000;
    for (;;) {
        int64_t left = next - now_ms();
        left = left > 0 ? left : 0;
        struct timespec wait = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            serve_log("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (sig == SIGUSR1)
            reopen_access_log(s);
        if (sig == SIGHUP) {
            serve_log("SIGHUP: reloading");
            inputs_stat(&in, &acted);
            seen = acted;
            want = 1;
        }
        if (now_ms() >= next) {
            next = now_ms() + POLL_S * 1000;
            inputs_stat(&in, &now);
            if (!sig_equal(&now, &acted) && sig_equal(&now, &seen)) { /* changed, then still */
                serve_log("an input file has changed: reloading");
                acted = now;
                want = 1;
            }
            seen = now;
        }
        reload_reap(&rl, 0);
        if (want && !rl.running) {
            reload_start(&rl);
            want = 0;
        }
    }
    if (rl.running)
        serve_log("waiting for the reload under way to finish");
    reload_reap(&rl, 1);
}

/* Everything the server owns, set up; the daemon not yet started. */
static int server_init(server *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->report_lock, NULL);
    pthread_mutex_init(&s->log_lock, NULL);
    if (ctx_pool_init(&s->pool, s->o.threads) || !(s->assets = lru_new(SIZE_MAX))) {
        serve_log("out of memory (or GEOS/PROJ would not start)");
        return EXIT_RUN;
    }
    return open_access_log(s);
}

static void server_destroy(server *s)
{
    server_swap(s, NULL);
    lru_free(s->assets);
    if (s->pool.all)
        ctx_pool_destroy(&s->pool);
    if (s->own_log)
        fclose(s->log);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->report_lock);
    pthread_mutex_destroy(&s->log_lock);
}

int cmd_serve(int argc, char **argv)
{
    serve_main m;
    memset(&m, 0, sizeof m);
    server *s = &m.s;
    place_opts_init(&s->o.p);
    s->o.cache_bytes = (size_t)64 << 20;
    int ex = parse_args(argc, argv, &m);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    if ((ex = server_init(s))) {
        server_destroy(s);
        return ex;
    }
    int64_t t0 = now_ms();
    gen *g;
    if ((ex = gen_load(&s->o, 1, &g))) {
        server_destroy(s);
        return ex;
    }
    log_loaded("loaded", g, t0);
    server_swap(s, g);
    /* From here on the main loop reads these signals (sigtimedwait);
     * every thread started later — MHD's, the reloads' and theirs —
     * inherits them blocked. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = serve_http_start(s, &m.addr.sa, m.addr.len, m.addr.ipv6);
    if (!d) {
        serve_log("cannot listen on %s (in use? see the message above)", m.addr.host);
        server_destroy(s);
        return EXIT_RUN;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    serve_log("listening on http://%s:%u/ (%u worker threads, %zu MiB cache%s)", m.addr.host,
              di ? (unsigned)di->port : 0u, s->o.threads, s->o.cache_bytes >> 20,
              s->o.token ? ", token required" : "");
    main_loop(s, &sigs);
    MHD_stop_daemon(d);
    server_destroy(s);
    serve_log("stopped");
    return EXIT_OK;
}
