-- Views for analysts and BI tools.
--
-- The metadata views (records, collection_stats, space_registry) are owned by the views
-- role and read the tables with its rights (security_invoker off), so BI needs a grant on
-- the views and none on any table. That role is not the owner and bypasses nothing: RLS
-- applies to it, with the caller's principals (current_principals() goes by session_user),
-- so each caller sees exactly the rows a SELECT of its own would. `segments` (content) is
-- security_invoker: analysts and the app read it with their own table grants.

CREATE OR REPLACE VIEW mmsearch.records WITH (security_invoker = false) AS
SELECT r.id AS record_id, c.name AS collection, r.uri, r.title, r.media_type, r.mime,
       r.bytes, r.duration_s, r.width, r.height, r.tags, r.metadata, r.acl,
       r.created_at, r.ingested_at,
       coalesce(s.segments, 0) AS segments,
       coalesce(s.chunks, 0) AS chunks,
       coalesce(s.images, 0) AS images,
       coalesce(s.windows, 0) AS windows,
       coalesce(s.shots, 0) AS shots,
       coalesce(s.transcripts, 0) AS transcripts,
       coalesce(s.ocr, 0) AS ocr
FROM mmsearch.record AS r
JOIN mmsearch.collection AS c ON c.id = r.collection_id
LEFT JOIN LATERAL (
    SELECT count(*) AS segments,
           count(*) FILTER (WHERE kind = 'chunk') AS chunks,
           count(*) FILTER (WHERE kind = 'image') AS images,
           count(*) FILTER (WHERE kind = 'window') AS windows,
           count(*) FILTER (WHERE kind = 'shot') AS shots,
           count(*) FILTER (WHERE kind = 'transcript') AS transcripts,
           count(*) FILTER (WHERE kind = 'ocr') AS ocr
    FROM mmsearch.segment AS g WHERE g.record_id = r.id
) AS s ON true;
COMMENT ON VIEW mmsearch.records IS 'One row per ingested item the caller may see, with segment counts per kind.';
COMMENT ON COLUMN mmsearch.records.uri IS 'Absolute path (or URL) of the ingested file.';
COMMENT ON COLUMN mmsearch.records.duration_s IS 'Length of audio/video in seconds; NULL for text and images.';
COMMENT ON COLUMN mmsearch.records.acl IS 'Principals allowed to see the record (user:…, group:…, public).';
COMMENT ON COLUMN mmsearch.records.segments IS 'Number of retrieval units (all kinds).';

CREATE OR REPLACE VIEW mmsearch.segments WITH (security_invoker = true) AS
SELECT g.id AS segment_id, g.record_id, c.name AS collection, r.uri, r.media_type, g.ordinal,
       g.kind, g.start_s, g.end_s, g.char_start, g.char_end, g.content, g.metadata
FROM mmsearch.segment AS g
JOIN mmsearch.record AS r ON r.id = g.record_id
JOIN mmsearch.collection AS c ON c.id = g.collection_id;
COMMENT ON VIEW mmsearch.segments IS 'Segments (units of retrieval) without their vectors.';
COMMENT ON COLUMN mmsearch.segments.start_s IS 'Start of the segment within its media, seconds.';
COMMENT ON COLUMN mmsearch.segments.char_start IS 'Offset of the segment in the extracted text.';

-- Counts aggregated per collection before the join, not counted per row of it: Citus
-- plans neither a correlated subquery beside a join of distributed tables nor one on a
-- reference table, and these pre-aggregated ones are as cheap on one server.
CREATE OR REPLACE VIEW mmsearch.collection_stats WITH (security_invoker = false) AS
SELECT c.name AS collection,
       coalesce(r.records, 0) AS records,
       coalesce(r.text_records, 0) AS text_records,
       coalesce(r.image_records, 0) AS image_records,
       coalesce(r.audio_records, 0) AS audio_records,
       coalesce(r.video_records, 0) AS video_records,
       coalesce(r.audio_hours, 0) AS audio_hours,
       coalesce(r.video_hours, 0) AS video_hours,
       coalesce(r.bytes, 0) AS bytes,
       coalesce(e.ingest_errors, 0) AS ingest_errors
FROM mmsearch.collection AS c
LEFT JOIN (
    SELECT collection_id,
           count(*) AS records,
           count(*) FILTER (WHERE media_type = 'text') AS text_records,
           count(*) FILTER (WHERE media_type = 'image') AS image_records,
           count(*) FILTER (WHERE media_type = 'audio') AS audio_records,
           count(*) FILTER (WHERE media_type = 'video') AS video_records,
           coalesce(sum(duration_s) FILTER (WHERE media_type = 'audio'), 0) / 3600.0 AS audio_hours,
           coalesce(sum(duration_s) FILTER (WHERE media_type = 'video'), 0) / 3600.0 AS video_hours,
           sum(bytes) AS bytes
    FROM mmsearch.record GROUP BY collection_id
) AS r ON r.collection_id = c.id
LEFT JOIN (
    SELECT collection_id, count(*) AS ingest_errors FROM mmsearch.ingest_error
    GROUP BY collection_id
) AS e ON e.collection_id = c.id;
COMMENT ON VIEW mmsearch.collection_stats IS 'Per collection: items and hours of media per type, ingest errors.';

CREATE OR REPLACE VIEW mmsearch.space_registry WITH (security_invoker = false) AS
SELECT name, modalities, model_id, revision, dim, distance, column_name, created_at
FROM mmsearch.space;
COMMENT ON VIEW mmsearch.space_registry IS 'Named vector spaces: which model fills which segment column.';

ALTER VIEW mmsearch.records OWNER TO :"role_views";
ALTER VIEW mmsearch.collection_stats OWNER TO :"role_views";
ALTER VIEW mmsearch.space_registry OWNER TO :"role_views";
GRANT SELECT ON mmsearch.records, mmsearch.collection_stats, mmsearch.space_registry
    TO :"role_app", :"role_analyst", :"role_bi";
GRANT SELECT ON mmsearch.segments TO :"role_app", :"role_analyst";
