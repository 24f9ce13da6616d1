"""The curated mutations of `make mutants` (tools/mutants.py): one per documented promise.

Each is one exact text replacement (`old` must occur exactly once in `path`) that breaks the
promise, and the narrowest tests that must then fail, the quickest first (the run stops at
the first failure). A promise the docs add gets its mutation here with the test that
guards it; a refactor that moves the text makes the runner fail loudly until it is updated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    id: str
    #: the behaviour users rely on that this mutation breaks
    promise: str
    path: str
    old: str
    new: str
    #: pytest node ids or files that must catch it
    tests: tuple[str, ...]


INGEST = "tests/test_ingest.py::"
LIFECYCLE = "tests/test_lifecycle.py::"
LABELS = "tests/test_labels.py::"
API = "tests/test_api.py::"
TRUST = "tests/test_ingest_trust.py::"
CLI = "tests/test_cli_options.py::"
RLS = "tests/test_rls.py::"
IDENTITIES = "tests/test_identities.py::"
SEARCH = "tests/test_search.py::"
FILTERS = "tests/test_filter_expression.py::"
FUSION = "tests/test_keyword_fusion.py::"

MUTATIONS: tuple[Mutation, ...] = (
    # -- ingestion ------------------------------------------------------------------------
    Mutation(
        "sha-skip",
        "re-ingesting an unchanged file is a no-op: no decode, OCR or embedding",
        "mmsearch/ingest/pipeline.py",
        "            if self._unchanged(job, target):\n",
        "            if False and self._unchanged(job, target):\n",
        (INGEST + "test_reingest_unchanged_decodes_and_embeds_nothing",),
    ),
    Mutation(
        "error-cleared",
        "a fixed file's ingest_error row goes when it ingests",
        "mmsearch/ingest/store.py",
        "    insert_segments(conn, record_id, extracted, vectors, spaces)\n"
        "    forget_error(conn, target.collection_id, uri)\n",
        "    insert_segments(conn, record_id, extracted, vectors, spaces)\n",
        (INGEST + "test_fixed_file_clears_its_ingest_error",),
    ),
    Mutation(
        "atomic-record",
        "a record and all its segments commit together or not at all",
        "mmsearch/ingest/store.py",
        "    insert_segments(conn, record_id, extracted, vectors, spaces)\n",
        '    conn.execute("COMMIT; BEGIN")\n'
        "    insert_segments(conn, record_id, extracted, vectors, spaces)\n",
        (INGEST + "test_a_write_that_fails_midway_leaves_the_old_version_whole",),
    ),
    Mutation(
        "stable-ids",
        "a changed file keeps its record_id and created_at",
        "mmsearch/ingest/store.py",
        "    if existing:\n        record_id = existing[0]\n",
        "    if existing:\n"
        '        conn.execute("DELETE FROM mmsearch.record WHERE id = %s", (existing[0],))\n'
        "    if False:\n"
        "        record_id = existing[0]\n",
        (INGEST + "test_changed_file_keeps_its_id_and_replaces_its_segments",),
    ),
    Mutation(
        "batch-goes-on",
        "a bad file lands in ingest_error and the batch goes on",
        "mmsearch/ingest/pipeline.py",
        "        except ExtractError as exc:\n            job.fail(exc.stage, str(exc))\n",
        "        except ExtractError:\n            raise\n",
        (INGEST + "test_summary_counts",),
    ),
    Mutation(
        "chunk-offsets",
        "a chunk's char_start:char_end is its text in the source",
        "mmsearch/ingest/text.py",
        "                    char_end=end,\n",
        "                    char_end=end - 1,\n",
        (INGEST + "test_chunk_offsets_round_trip_into_the_source",),
    ),
    Mutation(
        "segment-acl-follows",
        "segments follow their record's acl in the same transaction",
        "mmsearch/db/sql/020_functions.sql",
        "    UPDATE mmsearch.segment SET acl = NEW.acl WHERE record_id = NEW.id;",
        "    UPDATE mmsearch.segment SET acl = NEW.acl WHERE record_id = NEW.id AND false;",
        (LABELS + "test_acl_set_changes_what_each_principal_sees_at_once",),
    ),
    # -- trust: who may see what (issue 11, docs/security.md) ------------------------------
    Mutation(
        "rls-record",
        "a record is visible only to a caller whose principals overlap its acl",
        "mmsearch/db/sql/030_security.sql",
        "CREATE POLICY visible_to_principals ON mmsearch.record FOR SELECT\n"
        "    USING (acl && :caller_principals);",
        "CREATE POLICY visible_to_principals ON mmsearch.record FOR SELECT\n    USING (true);",
        (RLS + "test_app_role_sees_exactly_overlapping_rows",),
    ),
    Mutation(
        "rls-segment",
        "a segment is as private as its record",
        "mmsearch/db/sql/030_security.sql",
        "CREATE POLICY visible_to_principals ON mmsearch.segment FOR SELECT\n"
        "    USING (acl && :caller_principals);",
        "CREATE POLICY visible_to_principals ON mmsearch.segment FOR SELECT\n    USING (true);",
        (RLS + "test_app_role_sees_exactly_overlapping_rows",),
    ),
    Mutation(
        "rls-ingest-error",
        "a failed file's uri and reason are as private as the file",
        "mmsearch/db/sql/030_security.sql",
        "CREATE POLICY visible_to_principals ON mmsearch.ingest_error FOR SELECT\n"
        "    USING (acl && :caller_principals);",
        "CREATE POLICY visible_to_principals ON mmsearch.ingest_error FOR SELECT\n"
        "    USING (true);",
        (IDENTITIES + "test_ingest_errors_follow_the_acl",),
    ),
    Mutation(
        "login-bound-principals",
        "a person's login sees by the principals the owner gave it, whatever it sets",
        "mmsearch/db/sql/020_functions.sql",
        "RETURN CASE WHEN pg_catalog.pg_has_role(SESSION_USER, :'role_app', 'MEMBER')",
        "RETURN CASE WHEN true",
        (IDENTITIES + "test_person_sees_no_board_row_whatever_it_sets",),
    ),
    Mutation(
        "reads-as-service-login",
        "the app reads as the service login (RLS applies), never as the owner",
        "mmsearch/db/engine.py",
        "        self.reader_dsn = logins.service\n",
        "        self.reader_dsn = dsn\n",
        (RLS + "test_app_role_sees_exactly_overlapping_rows",),
    ),
    Mutation(
        "scram-only",
        "no login to the embedded server without its password",
        "mmsearch/db/embedded.py",
        "local all all scram-sha-256\n",
        "local all all trust\n",
        ("tests/test_embedded.py::test_no_login_without_its_password",),
    ),
    Mutation(
        "redact",
        "messages show a DSN without its password",
        "mmsearch/db/engine.py",
        '    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\\1***@", keyword)',
        "    return dsn",
        ("tests/test_passwords.py::test_redact_hides_the_password_in_every_dsn_form",),
    ),
    Mutation(
        "no-widening",
        "a re-ingest without an acl keeps the record's own (never widens access)",
        "mmsearch/ingest/store.py",
        "        return self.acl if self.acl is not None else stored or list(DEFAULT_ACL)",
        "        return self.acl if self.acl is not None else list(DEFAULT_ACL)",
        (TRUST + "test_reingest_without_acl_keeps_acl_and_tags",),
    ),
    Mutation(
        "symlinks-not-followed",
        "links out of the folder being ingested are not followed",
        "mmsearch/ingest/files.py",
        "            root = root or (None if follow_symlinks else path.resolve())",
        "            root = None",
        (TRUST + "test_symlink_out_of_the_folder_is_not_followed",),
    ),
    Mutation(
        "symlink-checked-on-open",
        "a file swapped for a link after the walk is refused when opened",
        "mmsearch/ingest/files.py",
        "        if root is not None and not _opened_path(fd, path).is_relative_to(root):",
        "        if False:",
        (TRUST + "test_file_swapped_for_a_link_after_the_walk_is_refused",),
    ),
    Mutation(
        "extract-the-hashed-copy",
        "the bytes hashed are the bytes extracted (a private copy)",
        "mmsearch/ingest/pipeline.py",
        "                self._extract(job, copy.path)",
        "                self._extract(job, job.path)",
        (TRUST + "test_file_changed_during_extraction_keeps_hash_and_content_together",),
    ),
    Mutation(
        "cli-ingest-acl",
        "`mmsearch ingest --acl` sets who may see the records",
        "mmsearch/cli/ingest.py",
        "            acl=list(acl) or None,",
        "            acl=None,",
        (CLI + "test_ingest_acl_tag_and_meta_reach_every_record",),
    ),
    Mutation(
        "token-principals-fixed",
        "an API token's principals are fixed: it cannot choose others per request",
        "mmsearch/api/auth.py",
        "        if not self.may_choose_principals:",
        "        if False:",
        (API + "test_a_token_cannot_choose_its_principals",),
    ),
    Mutation(
        "writes-block-searches",
        "a search never waits for a write: readers see the committed version meanwhile",
        "mmsearch/ingest/store.py",
        '    conn.execute(\n        "INSERT INTO mmsearch.ingest_lock (collection_id, uri)',
        '    conn.execute("LOCK TABLE mmsearch.segment IN ACCESS EXCLUSIVE MODE")\n'
        '    conn.execute(\n        "INSERT INTO mmsearch.ingest_lock (collection_id, uri)',
        ("tests/test_concurrent_search.py::test_a_search_never_waits_for_an_open_write",),
    ),
    # -- search (issue 14: one SQL search, sql/046_search_rules.sql, sql/047_search_core.sql) ---
    Mutation(
        "grouping",
        "one hit per record (its best segment) unless segments=True",
        "mmsearch/db/sql/047_search_core.sql",
        "                  CASE WHEN (plan ->> 'segments')::boolean THEN 'SELECT * FROM fused'",
        "                  CASE WHEN true THEN 'SELECT * FROM fused'",
        (SEARCH + "test_one_hit_per_record_unless_segments",),
    ),
    Mutation(
        "more-like-this-nearest",
        '"more like" a segment ranks the nearest first',
        "mmsearch/db/sql/047_search_core.sql",
        "        FOR item IN SELECT sp.name, source ->> sp.column_name AS vector"
        " FROM mmsearch.space AS sp",
        "        FOR item IN SELECT sp.name, ((source ->> sp.column_name)::vector"
        " - (source ->> sp.column_name)::vector - (source ->> sp.column_name)::vector)::text"
        " AS vector FROM mmsearch.space AS sp",
        (SEARCH + "test_more_like_this_ranks_records_by_their_nearest_segment",),
    ),
    Mutation(
        "more-like-this-own-record",
        '"more like" a segment leaves out that segment\'s whole record',
        "mmsearch/db/sql/047_search_core.sql",
        "                           CASE WHEN plan ? 'exclude_record'",
        "                           CASE WHEN false",
        (SEARCH + "test_more_like_this_leaves_out_the_whole_record_nearest_first",),
    ),
    Mutation(
        "search-as-the-caller",
        "the search definer functions see as the caller's principals, nothing more",
        "mmsearch/db/sql/047_search_core.sql",
        "    principals text[] := (SELECT mmsearch.current_principals());",
        "    principals text[] := (SELECT array_agg(DISTINCT p)"
        " FROM mmsearch.segment, unnest(acl) AS p);",
        (SEARCH + "test_permissions_decide_visibility",),
    ),
    Mutation(
        "filter-applied",
        "a filter expression restricts the hits (the oracle's rows exactly)",
        "mmsearch/db/sql/046_search_rules.sql",
        "        parts := parts || ('(' || tree.condition || ')');",
        "        parts := parts || 'true'::text;",
        (FILTERS + "test_results_equal_the_oracle",),
    ),
    Mutation(
        "filter-not",
        "`not` in a filter means exactly the other rows",
        "mmsearch/db/sql/046_search_rules.sql",
        "        condition := 'NOT (' || part.condition || ')';",
        "        condition := part.condition;",
        (FILTERS + "test_results_equal_the_oracle",),
    ),
    Mutation(
        "bm25-idf",
        "the keyword leg weighs a rare word above a common one (BM25's IDF)",
        "mmsearch/db/sql/047_search_core.sql",
        "CROSS JOIN LATERAL (SELECT ln(1 + (st.n - coalesce(d.df, 0)'",
        "CROSS JOIN LATERAL (SELECT 1 + 0 * ln(1 + (st.n - coalesce(d.df, 0)'",
        (FUSION + "test_a_rare_word_outranks_a_common_word_said_twice",),
    ),
    Mutation(
        "fusion-partial-keyword",
        "a keyword match on part of the query does not outvote the best vector match",
        "mmsearch/db/sql/047_search_core.sql",
        "             THEN 'power(covered, 2.5) * (0.8 + 0.2 * least(held, 1.0))'",
        "             THEN 'score'",  # raw BM25 fused with 0..1 vector scores
        (FUSION + "test_a_partial_keyword_match_does_not_outvote_the_best_vector_match",),
    ),
    Mutation(
        "sounds-like-twice",
        "a word held as written gains nothing again from the sounds_like leg",
        "mmsearch/db/sql/047_search_core.sql",
        "format('CASE WHEN NOT s.content_tsv @@ %L::tsquery'",
        "format('CASE WHEN true OR NOT s.content_tsv @@ %L::tsquery'",
        ("tests/test_sounds_like.py::test_text_documents_take_part_only_when_asked",),
    ),
    Mutation(
        "spelled-like-scope",
        "approximate spelling counts in text read off pictures only",
        "mmsearch/db/sql/047_search_core.sql",
        "        scope := ' AND s.kind = ''ocr''';",
        "        scope := '';",
        ("tests/test_sounds_like.py::test_a_word_spelled_otherwise_finds_the_text_in_a_picture",),
    ),
    Mutation(
        "moment-chain",
        "side-by-side segments the search found make one moment (gaps under 2 s)",
        "mmsearch/db/sql/047_search_core.sql",
        "' AND 1 PRECEDING) + 2.0 THEN 0 ELSE 1 END AS starts FROM moment_parts),'",
        "' AND 1 PRECEDING) - 1.0 THEN 0 ELSE 1 END AS starts FROM moment_parts),'",
        ("tests/test_moments.py::test_side_by_side_sentences_are_one_moment",),
    ),
    # -- keeping a collection in step -----------------------------------------------------
    Mutation(
        "prune-scope",
        "ingest --prune removes vanished files under the given paths only",
        "mmsearch/ingest/lifecycle.py",
        ' OR EXISTS (SELECT 1 FROM unnest(%s::text[]) AS p WHERE starts_with(uri, p)))"',
        ' OR %s::text[] IS NOT NULL)"',
        (LIFECYCLE + "test_prune_leaves_files_outside_the_paths_and_other_collections",),
    ),
    Mutation(
        "thumbnails-shared",
        "a removal keeps thumbnails another record's bytes still use",
        "mmsearch/ingest/lifecycle.py",
        "    if not used:\n        shutil.rmtree(folder, ignore_errors=True)",
        "    if True:\n        shutil.rmtree(folder, ignore_errors=True)",
        (LIFECYCLE + "test_thumbnails_go_with_the_last_record_of_their_bytes",),
    ),
    Mutation(
        "acl-unknown-uri",
        "acl/tag changes naming a uri the collection lacks change nothing",
        "mmsearch/ingest/labels.py",
        "            if wanted is not None:\n                refuse_missing(",
        "            if False:\n                refuse_missing(",
        (LABELS + "test_refusals_change_nothing",),
    ),
    Mutation(
        "acl-add-is-set",
        "acl add keeps the principals a record had",
        "mmsearch/ingest/labels.py",
        '    "add": "{col} || ARRAY(SELECT v FROM unnest(%(values)s::text[]) AS v'
        ' WHERE NOT v = ANY({col}))",',
        '    "add": "%(values)s::text[]",',
        (LABELS + "test_acl_set_changes_what_each_principal_sees_at_once",),
    ),
    Mutation(
        "backfill-no-op",
        "a second backfill over a filled space does nothing",
        "mmsearch/ingest/backfill.py",
        '            "s.{} IS NULL AND (%(cid)s::int IS NULL',
        '            "(s.{} IS NULL OR true) AND (%(cid)s::int IS NULL',
        ("tests/test_backfill.py::test_second_backfill_is_a_no_op",),
    ),
    # -- HTTP API -------------------------------------------------------------------------
    Mutation(
        "token-hashed",
        "API tokens are stored only as their SHA-256",
        "mmsearch/api/tokens.py",
        '    return hashlib.sha256(token.encode("utf-8")).digest()',
        '    return token.encode("utf-8")[:32].ljust(32, b"_")  # plaintext, the right length',
        (API + "test_token_commands_and_who_can_read_tokens",),
    ),
    Mutation(
        "api-hidden-404",
        "a record the caller may not see answers 404, like a missing one",
        "mmsearch/api/reads.py",
        '    """The record with this id if the caller may see it, with its segment count."""\n'
        "    with db.reader(principals) as conn",
        '    """The record with this id if the caller may see it, with its segment count."""\n'
        "    with db.writer() as conn",
        (API + "test_group_eng_never_sees_group_board",),
    ),
)
