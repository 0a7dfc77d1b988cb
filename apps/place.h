/* place.h — the placing pipeline that every command reading complaints
 * runs: boundaries → topic catalogue → column mapping → intake (rejects) →
 * locator → batch on threads → post checks (swapped coordinates, unknown
 * district codes: their placement becomes PM_PLACE_REJECTED, which no
 * output counts).  Program code; the library's pieces do the work. */
#ifndef PM_PLACE_H
#define PM_PLACE_H

#include "cli.h"
#include "../engine/pm_complaint.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_locate.h"
#include "../geodata/pm_complaints_in.h"
#include "../geodata/pm_out.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

typedef struct place_opts {
    cli_boundaries b;
    const char *complaints, *format, *mapping, *topics;
    const char *db;          /* --db CONNINFO ("" : the PG* variables) or NULL */
    const char *rejects;     /* path; NULL: standard error */
    long utc_offset;
    int have_offset;
    double snap_m;           /* < 0: default */
    int threads, brute, quiet;
    size_t block;            /* --block-size: complaints per block while reading */
    pm_reject_fn also_reject;  /* NULL, or where rejects go besides the file */
    void *also_reject_user;
} place_opts;

/* Options every placing command takes (getopt_long entries and values). */
enum {
    OPT_COMPLAINTS = OPT_FIRST_LOCAL, OPT_FORMAT, OPT_MAPPING, OPT_REJECTS, OPT_SNAP,
    OPT_THREADS, OPT_BRUTE, OPT_DB, OPT_BLOCK, OPT_PLACE_LAST
};
#define CLI_PLACE_OPTIONS                                                      \
    CLI_BOUNDARY_OPTIONS,                                                      \
    {"complaints", required_argument, 0, OPT_COMPLAINTS},                      \
    {"format", required_argument, 0, OPT_FORMAT},                              \
    {"mapping", required_argument, 0, OPT_MAPPING},                            \
    {"topics", required_argument, 0, OPT_TOPICS},                              \
    {"utc-offset", required_argument, 0, OPT_UTC_OFFSET},                      \
    {"rejects", required_argument, 0, OPT_REJECTS},                            \
    {"snap-tolerance", required_argument, 0, OPT_SNAP},                        \
    {"threads", required_argument, 0, OPT_THREADS},                            \
    {"block-size", required_argument, 0, OPT_BLOCK},                           \
    {"brute-force", no_argument, 0, OPT_BRUTE},                                \
    {"db", required_argument, 0, OPT_DB},                                      \
    {"quiet", no_argument, 0, 'q'}

/* Complaints per block: placed (and aggregated) while the rest is read.
 * Big enough that handing a block over is cheap next to its work, small
 * enough that the reader's queue (64 batches of 4096) covers that work. */
enum { PLACE_BLOCK_DEFAULT = 262144 };

/* The help text for those options. */
extern const char place_usage[];

void place_opts_init(place_opts *o);
/* Handles one option: 1 if it was one, 0 if not, -1 after a usage error
 * (message printed). */
int place_option(place_opts *o, const char *cmd, int opt, const char *arg);
/* Checks that the required ones are there (message printed): EXIT_OK or
 * EXIT_USAGE.  With --db and neither --boundaries nor --complaints, both
 * come from the database (place_from_db()). */
int place_check(const place_opts *o, const char *cmd);
/* The same, but the files are required even with --db (db load). */
int place_check_files(const place_opts *o, const char *cmd);
/* The same for a command reading a dataset snapshot (--dataset) instead:
 * --boundaries, and nothing that reads complaints. */
int place_check_dataset(const place_opts *o, const char *cmd);
/* 1 when the boundaries and complaints come from the database. */
int place_from_db(const place_opts *o);

/* Rejects: one CSV row each (line, id, field, reason), as they come. */
typedef struct place_rejects {
    FILE *f;
    uint64_t n;
    pm_reject_fn also;       /* NULL, or a second sink (e.g. the database) */
    void *also_user;
} place_rejects;
int place_reject(void *user, uint64_t line, const char *id, const char *field, const char *reason);

typedef struct place_run {
    pm_districts *ds;
    pm_topics *t;
    pm_mapping *m;
    pm_complaints *cs;
    pm_locator *loc;
    pm_placed *pl;
    pm_intake_counts ic;
    uint64_t accepted, rejected;
    uint64_t post_rejected;  /* rejected after placing (swapped, unknown code) */
    pm_outfile *rof;
    place_rejects rj;
    struct pm_db *db;        /* open when place_from_db(): the source (owned) */
} place_run;

/* Runs the pipeline into r (zeroed by the caller).  Returns an exit status;
 * on failure the message is printed.  place_free() in every case.  It is
 * place_run_open() then place_run_read() with no block work. */
int place_run_all(pm_ctx *ctx, const place_opts *o, place_run *r);
/* Its first half: boundaries, topics, mapping, rejects file, locator. */
int place_run_open(pm_ctx *ctx, const place_opts *o, place_run *r);
/* Work on a block of complaints [from, to) of r->cs once they are placed
 * and checked (r->pl holds them): PM_OK, or a PM_E_* code with the error
 * set in ctx.  Blocks come in order, on the calling thread, while the
 * rest of the file is still read (o->block complaints each; the last one
 * shorter, after the read). */
typedef int (*place_block_fn)(void *user, pm_ctx *ctx, place_run *r, size_t from, size_t to);
/* Its second half: reads the complaints (file or database) and places
 * them block by block; fn (may be NULL) gets each block, and its failure
 * is reported as fn_stage ("aggregating: ...").  Returns an exit status. */
int place_run_read(pm_ctx *ctx, const place_opts *o, place_run *r, place_block_fn fn, void *user,
                   const char *fn_stage);
/* Commits the rejects file (after any later rejects were added). */
int place_commit_rejects(pm_ctx *ctx, place_run *r);

/* A cube fed while the complaints are read (`problemap cube`, the map's
 * dataset): place_cube_feed_block, as place_run_read()'s fn with the feed
 * as user, gives each placed block to a pm_cube_adder, which does most of
 * its work while the next blocks are read. */
typedef struct place_cube_feed {
    pm_cube *cube;          /* borrowed; set before the read */
    pm_cube_adder *adder;   /* from the first block on */
    uint64_t rejected;      /* rejected by the cube (already held, date out of range) */
} place_cube_feed;
int place_cube_feed_block(void *user, pm_ctx *ctx, place_run *r, size_t from, size_t to);
/* Ends the feed after place_run_read() returned ex: when ex is EXIT_OK,
 * puts the complaints into the cube (*added: how many), counts the cube's
 * rejects as rejected rather than accepted and commits the rejects file;
 * frees the adder in every case.  Returns an exit status (message
 * printed): ex when it was not EXIT_OK. */
int place_cube_feed_end(pm_ctx *ctx, place_run *r, place_cube_feed *f, int ex, uint64_t *added);
void place_free(pm_ctx *ctx, place_run *r);
/* The name of the complaints' source for messages: the file or "database". */
const char *place_source_name(const place_opts *o);
/* "read N, accepted N, ... outside N" on standard error. */
void place_print_counts(const place_opts *o, const place_run *r);

#endif
