"""`Client`: the Python entry point. One client holds one pool and loads each model once."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.config import Settings
from mmsearch.db import schema
from mmsearch.db.credentials import CredentialStore
from mmsearch.db.engine import Database, resolve_dsn
from mmsearch.embed.registry import Embedders
from mmsearch.errors import UserError
from mmsearch.spaces import Space, list_spaces, register_configured

if TYPE_CHECKING:
    from mmsearch.embed.base import Embedder
    from mmsearch.ingest.backfill import BackfillReport, Coverage
    from mmsearch.ingest.extract import Extractors
    from mmsearch.ingest.labels import Change, Column
    from mmsearch.ingest.lifecycle import CollectionSummary, Removal
    from mmsearch.ingest.pipeline import IngestReport
    from mmsearch.ingest.types import Extracted
    from mmsearch.query.request import Fusion, Mode, SearchOptions, SoundsLike, VectorPath
    from mmsearch.query.search import Hit, SearchPlan
    from mmsearch.rerank import Reranker


class Client:
    """Connect once, then ingest and search; models load on first use and stay loaded.

    The client only wires the layers together: a `Database` (pool and role-scoped
    transactions), the `Embedders` of the configured spaces, and the settings. Ingestion and
    search receive those narrow parts, never the client.
    """

    def __init__(
        self, db: Database, settings: Settings, *, embedders: Embedders | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.embedders = embedders if embedders is not None else Embedders(settings.spaces)
        self._query_extractors: Extractors | None = None
        self._reranker: Reranker | None = None
        self._reranker_loaded = False
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls, dsn: str | None = None, *, home: Path | str | None = None, upgrade: bool = True
    ) -> Client:
        """Connect to `dsn`, else `MMSEARCH_DATABASE_URL`, else the embedded server.

        With `upgrade` (the default) a missing or older schema is brought to head first;
        without it, such a database raises `SchemaMissing` (run `mmsearch init`).
        """
        settings = Settings.load(home=Path(home) if home else None, database_url=dsn)
        url = resolve_dsn(settings)
        schema.ensure(url, migrate=upgrade)
        return cls(Database(url, credentials=CredentialStore.in_home(settings.home)), settings)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- spaces -----------------------------------------------------------------------

    def embedder(self, space: str) -> Embedder:
        """The embedder behind a configured space, loaded once per process."""
        return self.embedders.get(space)

    def register_spaces(self, names: Iterable[str] | None = None) -> list[Space]:
        """Register the configured spaces (loading their models) and return them."""
        return list(register_configured(self.db, self.embedders, names).values())

    def spaces(self) -> list[Space]:
        with self.db.transaction() as conn:
            return list_spaces(conn)

    def coverage(self, space: Space) -> Coverage:
        """How many segments have the space's vector, still lack one, or were skipped."""
        from mmsearch.ingest.backfill import coverage

        return coverage(self.db, space)

    def backfill(
        self,
        space: str,
        *,
        collection: str | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> BackfillReport:
        """Embed the stored segments that lack a vector in the configured `space` (registering
        it first if it is new): text from the stored content, pictures and sound from the
        source file while its sha256 matches, else skipped with the reason.

        Batched in short transactions, so searches keep running; a killed backfill continues
        where it stopped when run again, and a second run over a filled space does nothing.
        """
        from mmsearch.ingest.backfill import Backfill

        run = Backfill(
            self.db,
            self.embedders,
            self.settings,
            space,
            collection=collection,
            batch_size=batch_size,
        )
        return run.run(progress=progress)

    def drop_space(self, name: str) -> Space:
        """Drop a space's vectors, column and index for good (the registry row goes too).

        A space still in the configuration comes back, empty, at the next ingest.
        """
        from mmsearch.spaces import drop_space

        return drop_space(self.db, name)

    # -- work -------------------------------------------------------------------------

    def ingest(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        collection: str = "default",
        tags: str | Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        acl: str | Iterable[str] | None = None,
        recursive: bool = True,
        progress: bool = False,
        prune: bool = False,
        follow_symlinks: bool = False,
    ) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped, bad ones recorded.

        `acl` and `tags` None (not given) keep what a record already has, so a re-ingest
        never widens access; a new record is `public`, untagged. Symbolic links leading out
        of a folder are not followed unless `follow_symlinks`. With `prune`, the collection's
        records under `paths` whose files are gone are removed too (counted in
        `report.removed`): a folder is kept in step with the disk.
        """
        from mmsearch.ingest import arguments as check
        from mmsearch.ingest.pipeline import Pipeline

        return Pipeline(self.db, self.embedders, self.settings).run(
            check.paths_argument(paths),
            **_checked_ingest_options(collection, tags, metadata, acl, follow_symlinks),
            recursive=check.flag_argument(recursive, "recursive"),
            progress=check.flag_argument(progress, "progress"),
            prune=check.flag_argument(prune, "prune"),
        )

    def watch(
        self,
        folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        collection: str = "default",
        tags: str | Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        acl: str | Iterable[str] | None = None,
        recursive: bool = True,
        follow_symlinks: bool = False,
        stop: threading.Event | None = None,
    ) -> Iterator[IngestReport]:
        """Keep `collection` in step with folders as they change: first one sync of each
        folder (an ingest with prune), then, for every batch of changes on disk, the paths it
        touched ingested or pruned. Yields a report per pass; ends when `stop` is set (or on
        Ctrl-C). Symbolic links are held to the watched folder as in `ingest`."""
        from mmsearch.ingest import arguments as check
        from mmsearch.ingest.pipeline import Pipeline
        from mmsearch.ingest.watch import FolderWatcher

        roots = check.paths_argument(folders)
        recursive = check.flag_argument(recursive, "recursive")
        run = functools.partial(
            Pipeline(self.db, self.embedders, self.settings).run,
            **_checked_ingest_options(collection, tags, metadata, acl, follow_symlinks),
            recursive=recursive,
            progress=False,
            prune=True,
            within=roots,
        )
        with FolderWatcher(roots, recursive=recursive) as watcher:  # changes queue from here
            yield run(roots)
            for touched in watcher.batches(stop):
                yield run(touched)

    # -- lifecycle: removal ------------------------------------------------------------

    def remove(self, uris: Iterable[str | Path], *, collection: str) -> Removal:
        """Remove records by uri (a path is made absolute, as ingest stores it), one
        transaction each; `Removal.missing` lists the uris the collection did not hold."""
        from mmsearch.ingest.lifecycle import remove_records

        return remove_records(self.db, self.settings, collection, uris)

    def remove_collection(self, name: str) -> int:
        """Remove a collection and every record in it; returns how many records went."""
        from mmsearch.ingest.lifecycle import remove_collection

        return remove_collection(self.db, self.settings, name)

    def set_search_defaults(
        self, collection: str, *, fusion: Fusion | None, weights: dict[str, float] | None
    ) -> None:
        """The fusion and leg weights a search of `collection` alone uses unless it sets
        its own (`mmsearch eval --tune --apply` chooses them); None for both: the defaults."""
        from mmsearch.ingest.lifecycle import set_search_defaults
        from mmsearch.query.request import SearchOptions

        checked = SearchOptions(fusion=fusion, weights=weights)  # the same checks as a search
        set_search_defaults(self.db, collection, checked.fusion, checked.weights)

    def collections(self) -> list[CollectionSummary]:
        """Every collection with its record and ingest-error counts (all rows, as ingest)."""
        from mmsearch.ingest.lifecycle import list_collections

        return list_collections(self.db)

    # -- lifecycle: access and labels, no re-ingest --------------------------------------

    def set_acl(
        self,
        principals: Iterable[str],
        *,
        collection: str,
        uris: Sequence[str | Path] | None = None,
    ) -> int:
        """Replace the acl of the named records (all of the collection's when `uris` is None);
        segments follow in the same transaction. Returns how many records changed."""
        return self.change_labels("acl", "set", principals, collection, uris)

    def add_acl(
        self,
        principals: Iterable[str],
        *,
        collection: str,
        uris: Sequence[str | Path] | None = None,
    ) -> int:
        """Let more principals see the named records; returns how many records changed."""
        return self.change_labels("acl", "add", principals, collection, uris)

    def remove_acl(
        self,
        principals: Iterable[str],
        *,
        collection: str,
        uris: Sequence[str | Path] | None = None,
    ) -> int:
        """Take principals off the named records (refused if one would be left with none)."""
        return self.change_labels("acl", "remove", principals, collection, uris)

    def set_tags(
        self, tags: Iterable[str], *, collection: str, uris: Sequence[str | Path] | None = None
    ) -> int:
        """Replace the tags of the named records (an empty list clears them)."""
        return self.change_labels("tags", "set", tags, collection, uris)

    def add_tags(
        self, tags: Iterable[str], *, collection: str, uris: Sequence[str | Path] | None = None
    ) -> int:
        """Add tags to the named records; returns how many records changed."""
        return self.change_labels("tags", "add", tags, collection, uris)

    def remove_tags(
        self, tags: Iterable[str], *, collection: str, uris: Sequence[str | Path] | None = None
    ) -> int:
        """Take tags off the named records; returns how many records changed."""
        return self.change_labels("tags", "remove", tags, collection, uris)

    def change_labels(
        self,
        column: Column,
        change: Change,
        values: Iterable[str],
        collection: str,
        uris: Sequence[str | Path] | None = None,
    ) -> int:
        """The six methods above in one: `column` is "acl" or "tags", `change` is "set",
        "add" or "remove". All or nothing; returns how many records changed."""
        from mmsearch.ingest.labels import change_labels

        return change_labels(self.db, column, change, values, collection=collection, uris=uris)

    def search(
        self,
        query: str | Path | int,
        *,
        collection: str | Sequence[str] | None = None,
        media_types: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        tags_all: str | Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        filter: str | None = None,
        mode: Mode = "hybrid",
        principals: str | Sequence[str] | None = None,
        k: int = 10,
        weights: dict[str, float] | None = None,
        rrf_k: int = 60,
        fusion: Fusion | None = None,
        segments: bool = False,
        spaces: str | Sequence[str] | None = None,
        ef_search: int | None = None,
        vector_path: VectorPath = "auto",
        sounds_like: SoundsLike | None = None,
        rerank: bool = True,
    ) -> list[Hit]:
        """Search by text, by example (a `Path`), or "more like" a segment id (an `int`).

        Filters: `collection`, `media_types`, `tags` (any of), `tags_all`, `metadata`
        (containment), `filter` (an expression, `mmsearch.query.expression`). `mode` picks
        the legs (vector legs of every space in `spaces`, default all, that encodes the query;
        a keyword leg); `fusion` combines them ("relative": the sum of weight * each leg's
        score on a 0..1 scale; "rrf": reciprocal ranks with `rrf_k`), each leg weighted by
        `weights` ({leg: w}). A typed query's plain words also find words that sound like
        them (the `sounds_like` leg: in transcripts by default, "all" for every segment's
        text, "off"). A search of one collection that sets neither takes the
        collection's own (`set_search_defaults`), else relative with weights 1. `principals` are
        whom to search as (row-level security decides). One hit per record, its best segment,
        unless `segments`. `ef_search` and `vector_path` ("exact", "hnsw") override how
        vector legs rank. A string where a list is expected is one item. With a reranker
        configured (`[rerank]` in config.toml) and `rerank`, a typed query's first `depth`
        candidates are reordered by it before the cut to `k`.
        """
        from mmsearch.query.request import SearchOptions

        options = SearchOptions(
            collection=collection, media_types=media_types, tags=tags, tags_all=tags_all,
            metadata=metadata, filter=filter, mode=mode, principals=principals, k=k,
            weights=weights, rrf_k=rrf_k, fusion=fusion, segments=segments, spaces=spaces,
            ef_search=ef_search, vector_path=vector_path, sounds_like=sounds_like,
        )  # fmt: skip
        if not isinstance(rerank, bool):
            raise TypeError(f"rerank must be True or False, not {rerank!r}")
        reranker = self.reranker() if rerank and isinstance(query, str) else None
        if reranker is None:
            return self.run(self.plan(query, options))
        from mmsearch.rerank import RerankContext

        deeper = replace(options, k=max(options.k, reranker.depth))
        hits = self.run(self.plan(query, deeper))
        context = RerankContext(self.db, self.embedders, tuple(options.principals or ()))
        return reranker.rerank(query, hits, context)[: options.k]

    def reranker(self) -> Reranker | None:
        """The configured second stage (`[rerank]`), loaded once per client; None when off."""
        from mmsearch.rerank import load

        with self._lock:
            if not self._reranker_loaded:
                try:
                    self._reranker = load(self.settings.rerank)
                except (TypeError, ValueError) as exc:
                    raise UserError(f"[rerank] in config.toml: {exc}") from None
                self._reranker_loaded = True
            return self._reranker

    def plan(self, query: str | Path | int, options: SearchOptions | None = None) -> SearchPlan:
        """Encode a query once, for `run` and `explain` (the CLI's --explain uses both)."""
        from mmsearch.query.search import plan

        return plan(self.db, self.embedders, self._subject(query), options)

    def run(self, planned: SearchPlan) -> list[Hit]:
        from mmsearch.query.search import run

        return run(self.db, planned)

    def explain(self, planned: SearchPlan, *, analyze: bool = False) -> str:
        """The SQL a planned search runs, to paste into psql; with `analyze`, its plan."""
        from mmsearch.query.search import explain

        return explain(self.db, planned, analyze=analyze)

    def _subject(self, query: str | Path | int) -> str | Extracted | int:
        """A query file is decoded here, by the same extractors ingestion uses."""
        if not isinstance(query, Path):
            return query
        from mmsearch.ingest.extract import extract_query_file

        return extract_query_file(query, self._extractors())

    def _extractors(self) -> Extractors:
        """Built once per client: OCR and the transcriber load on the first query file only."""
        with self._lock:
            if self._query_extractors is None:
                from mmsearch.ingest.extract import Extractors

                self._query_extractors = Extractors(self.settings, self.embedders)
            return self._query_extractors


def _checked_ingest_options(
    collection: object, tags: object, metadata: object, acl: object, follow_symlinks: object
) -> dict[str, Any]:
    """What `ingest` and `watch` both hand the pipeline, each argument type-checked."""
    from mmsearch.ingest import arguments as check

    return {
        "collection": check.text_argument(collection, "collection"),
        "tags": check.strings_argument(tags, "tags"),
        "metadata": check.metadata_argument(metadata),
        "acl": check.strings_argument(acl, "acl"),
        "follow_symlinks": check.flag_argument(follow_symlinks, "follow_symlinks"),
    }
