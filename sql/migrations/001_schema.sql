-- 001_schema.sql — problemap's database of record: regions, districts (by
-- generation), topics, complaints (partitioned by month), rejects, cube cells.
--
-- Applied by pm_db_migrate() inside one transaction, after it has created
-- problemap.schema_version (version int primary key, applied_at timestamptz).
-- PostGIS must already be installed in the database; its schema is on the
-- search_path of problemap's sessions.  docs/postgis.md explains every table.

CREATE TABLE problemap.regions (
    id   text COLLATE "C" PRIMARY KEY,
    name text NOT NULL DEFAULT ''
);

-- A district keeps one row per generation: a municipal reform loads a new
-- generation (valid_from) and closes the previous one (valid_to), so history
-- is never rewritten.  The current map is the rows with valid_to IS NULL.
CREATE TABLE problemap.districts (
    id         text COLLATE "C" NOT NULL,
    valid_from date NOT NULL,
    valid_to   date,
    name       text NOT NULL DEFAULT '',
    region_id  text COLLATE "C" REFERENCES problemap.regions (id),
    population double precision CHECK (population >= 0),
    area_km2   double precision CHECK (area_km2 >= 0),
    geom       geometry(MultiPolygon, 4326) NOT NULL,
    PRIMARY KEY (id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX districts_geom_gist ON problemap.districts USING gist (geom);

-- The topic catalogue (data/topics.json): index is the position in the file.
CREATE TABLE problemap.topics (
    code    text COLLATE "C" PRIMARY KEY,
    index   integer NOT NULL CHECK (index >= 0),
    name_ru text NOT NULL DEFAULT '',
    name_en text NOT NULL DEFAULT '',
    color   text NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
    CONSTRAINT topics_index_key UNIQUE (index) DEFERRABLE INITIALLY DEFERRED
);

-- Complaints, partitioned by month of created_at (UTC).  Ids and codes sort
-- by bytes (COLLATE "C"), as in the engine.  A primary key of a
-- partitioned table must contain the partition key, so (id, created_at) is
-- only unique per partition; complaint_ids below makes ids unique across all
-- of them, and the loader inserts there first (ON CONFLICT DO NOTHING) in the
-- same transaction, which is what makes a re-load change nothing.
CREATE TABLE problemap.complaints (
    id            text COLLATE "C" NOT NULL,
    created_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    topic         text COLLATE "C" NOT NULL REFERENCES problemap.topics (code),
    source        text,
    status        text,
    executor      text,
    district_code text COLLATE "C",  -- the district code the input gave, if any
    district_id   text COLLATE "C",  -- where the engine placed it (NULL: not placed)
    placement     text CHECK (placement IN ('inside', 'border', 'snapped', 'by_code', 'outside')),
    line          bigint,            -- input line or record number
    geom          geometry(Point, 4326),
    PRIMARY KEY (id, created_at),
    CONSTRAINT complaints_answered_after_created CHECK (answered_at >= created_at),
    CONSTRAINT complaints_lon_lat CHECK (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
) PARTITION BY RANGE (created_at);
CREATE INDEX complaints_geom_gist ON problemap.complaints USING gist (geom);
CREATE TABLE problemap.complaints_default PARTITION OF problemap.complaints DEFAULT;

CREATE TABLE problemap.complaint_ids (
    id         text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL
);

-- Creates the partition of the month (UTC) of t if it is missing; true when
-- it made one.  The name comes from the date only (complaints_YYYY_MM).  Rows
-- that had landed in the default partition for that month are moved into the
-- new partition, so creating it never fails on them.
CREATE FUNCTION problemap.ensure_month_partition(t timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    lo   timestamptz := date_trunc('month', t, 'UTC');
    hi   timestamptz := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'complaints_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(format('problemap.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- one creator at a time; then look again
    PERFORM pg_advisory_xact_lock(7054177, 1);
    IF to_regclass(format('problemap.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM problemap.complaints_default
               WHERE created_at >= lo AND created_at < hi) THEN
        EXECUTE format('CREATE TABLE problemap.%I (LIKE problemap.complaints '
                       'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM problemap.complaints_default '
                       'WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                       'INSERT INTO problemap.%I SELECT * FROM moved', part) USING lo, hi;
        EXECUTE format('ALTER TABLE problemap.complaints ATTACH PARTITION problemap.%I '
                       'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    ELSE
        EXECUTE format('CREATE TABLE problemap.%I PARTITION OF problemap.complaints '
                       'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    END IF;
    RETURN true;
END
$fn$;

-- Complaints the intake or the placement set aside (never the complaint text).
CREATE TABLE problemap.rejects (
    source    text NOT NULL DEFAULT '',
    line      bigint,
    id        text,
    field     text,
    reason    text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejects_source ON problemap.rejects (source, line);

-- The cube's cells (engine/pm_cube.h) written back, one row per district ×
-- topic × period × source × status × executor at one period kind and UTC
-- offset.  delays_s (ascending answer delays) and open_created_at (ascending
-- creation times of the open ones) make cells merge exactly, as in the engine.
CREATE TABLE problemap.cube_cells (
    period_kind     text NOT NULL CHECK (period_kind IN ('day', 'week', 'month')),
    utc_offset_s    integer NOT NULL CHECK (utc_offset_s BETWEEN -64800 AND 64800),
    district_id     text COLLATE "C" NOT NULL,
    topic           text COLLATE "C" NOT NULL REFERENCES problemap.topics (code),
    period          bigint NOT NULL,
    source          text,
    status          text,
    executor        text,
    count           bigint NOT NULL CHECK (count = answered + open),
    answered        bigint NOT NULL CHECK (answered >= 0),
    answered_24h    bigint NOT NULL CHECK (answered_24h BETWEEN 0 AND answered),
    open            bigint NOT NULL CHECK (open >= 0),
    delays_s        bigint[] CHECK (cardinality(delays_s) = answered),
    open_created_at timestamptz[] CHECK (cardinality(open_created_at) = open),
    CONSTRAINT cube_cells_key UNIQUE NULLS NOT DISTINCT
        (period_kind, utc_offset_s, district_id, topic, period, source, status, executor)
);

-- ---- the cube's question in SQL --------------------------------------------

-- The current map.
CREATE VIEW problemap.current_districts AS
SELECT * FROM problemap.districts WHERE valid_to IS NULL;

-- Each complaint's district on the current map, by the database itself, with
-- the engine's border rule (docs/geocoding.md): a point belongs to the
-- districts whose closure contains it (ST_Intersects), and of several the
-- lowest id in byte order (COLLATE "C").  Complaints without coordinates go
-- by their district code.  Points in no district are left out (the engine may
-- snap some of them; the database does not).
CREATE VIEW problemap.complaint_district AS
(SELECT DISTINCT ON (c.id)
        c.id, c.created_at, c.answered_at, c.topic, c.source, c.status, c.executor,
        d.id AS district_id
 FROM problemap.complaints c
 JOIN problemap.current_districts d ON ST_Intersects(d.geom, c.geom)
 ORDER BY c.id, d.id COLLATE "C")
UNION ALL
SELECT c.id, c.created_at, c.answered_at, c.topic, c.source, c.status, c.executor,
       d.id AS district_id
FROM problemap.complaints c
JOIN problemap.current_districts d ON d.id = c.district_code
WHERE c.geom IS NULL;

-- Complaints per district × topic.
CREATE VIEW problemap.complaint_counts AS
SELECT district_id, topic, count(*) AS complaints
FROM problemap.complaint_district
GROUP BY district_id, topic;

-- The local date of t at a fixed UTC offset (seconds east of UTC).
CREATE FUNCTION problemap.local_date(t timestamptz, utc_offset_s integer) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ((t AT TIME ZONE 'UTC') + utc_offset_s * interval '1 second')::date;

-- The period index of t, as pm_period_of(): day = local days since
-- 1970-01-01; week = ISO weeks since the week of Monday 1970-01-05; month =
-- year * 12 + month - 1.  NULL for an unknown kind.
CREATE FUNCTION problemap.period_of(kind text, t timestamptz, utc_offset_s integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (CASE kind
    WHEN 'day' THEN problemap.local_date(t, utc_offset_s) - date '1970-01-01'
    WHEN 'week' THEN floor((problemap.local_date(t, utc_offset_s) - date '1970-01-05') / 7.0)
    WHEN 'month' THEN extract(year FROM problemap.local_date(t, utc_offset_s)) * 12
                      + extract(month FROM problemap.local_date(t, utc_offset_s)) - 1
END)::bigint;

-- The label of period p, as pm_period_label(): 2025-03-01, 2025-W09, 2025-03.
CREATE FUNCTION problemap.period_label(kind text, p bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE kind
    WHEN 'day' THEN to_char(date '1970-01-01' + p::integer, 'YYYY-MM-DD')
    WHEN 'week' THEN to_char(date '1970-01-05' + 7 * p::integer, 'IYYY-"W"IW')
    WHEN 'month' THEN to_char(make_date(floor(p / 12.0)::integer, (p - 12 * floor(p / 12.0))::integer + 1, 1),
                              'YYYY-MM')
END;

-- Complaints per district × topic × period at a period kind and UTC offset,
-- with the engine's cell counters: answered, answered within 24 h (a delay of
-- exactly 86 400 s counts as within) and open.
CREATE FUNCTION problemap.cube_counts(kind text, utc_offset_s integer)
RETURNS TABLE (district_id text, topic text, period bigint, complaints bigint,
               answered bigint, answered_24h bigint, open bigint)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF kind IS NULL OR kind NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'unknown period kind "%" (day, week or month)', kind;
    END IF;
    IF utc_offset_s IS NULL OR utc_offset_s NOT BETWEEN -64800 AND 64800 THEN
        RAISE EXCEPTION 'UTC offset % s is beyond ±18 h', utc_offset_s;
    END IF;
    RETURN QUERY
    SELECT p.district_id, p.topic, problemap.period_of(kind, p.created_at, utc_offset_s),
           count(*),
           count(p.answered_at),
           count(*) FILTER (WHERE extract(epoch FROM p.answered_at - p.created_at) <= 86400),
           count(*) FILTER (WHERE p.answered_at IS NULL)
    FROM problemap.complaint_district p
    GROUP BY 1, 2, 3;
END
$fn$;
