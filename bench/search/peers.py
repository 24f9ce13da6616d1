"""Peer vector stores for `bench.search`, each in-process in a directory of its own.

Every peer gets the same segments (vectors, record flags, ACLs, content words) and answers
the same question as the hand-written SQL floor: the top k segments by cosine distance,
filtered natively. One small class per system behind `Peer`, so that the benchmark loop
never branches on the system. Each has one accuracy knob (`Peer.knob`) that the benchmark
sweeps; the HNSW graphs are built as pgvector builds them (M 16, ef_construction 64) where
the system has HNSW, so that the sweep compares engines rather than graph quality.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

M, EF_CONSTRUCTION = 16, 64
BATCH = 5000
#: how many candidates each leg of a hybrid search fetches (what mmsearch fetches at k=10)
HYBRID_CANDIDATES = 120


@dataclass(frozen=True)
class Segments:
    """The corpus every system loads: one row per segment, in ground-truth order."""

    vectors: np.ndarray  # (n, dim) float32, unit length
    record: np.ndarray  # (n,) record index of each segment
    #: selectivity flag name ("s10", "s1", "s01") → per-segment bool (its record's flag)
    flags: dict[str, np.ndarray]
    acl: list[list[str]]  # per record
    tags: list[list[str]]  # per record
    texts: list[str]

    def acl_of(self, j: int) -> list[str]:
        return self.acl[int(self.record[j])]

    def tags_of(self, j: int) -> list[str]:
        return self.tags[int(self.record[j])]


@dataclass(frozen=True)
class Query:
    """One search: a vector, at most one of a flag, a tag or a principal, and a text."""

    vector: np.ndarray | None
    flag: str | None = None
    tag: str | None = None
    principal: str | None = None
    text: str | None = None

    @property
    def kind(self) -> Literal["vector", "hybrid", "keyword"]:
        if self.text is None:
            return "vector"
        return "keyword" if self.vector is None else "hybrid"


class Peer:
    """A system under test: load, build its index, search; `knob` is its accuracy knob."""

    name: ClassVar[str]
    #: its name on the command line (`--systems`)
    key: ClassVar[str]
    knob: ClassVar[str]
    #: the knob's values for the sweep, cheapest first; `default` when not sweeping
    sweep: ClassVar[tuple[int, ...]]
    default: ClassVar[int]
    #: query kinds it cannot express → why (shown in the table instead of numbers)
    cannot: ClassVar[dict[str, str]] = {}

    #: the packages it needs (the `bench` extra)
    packages: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_installed(cls) -> None:
        missing = [name for name in cls.packages if importlib.util.find_spec(name) is None]
        if missing:
            raise SystemExit(f"{cls.name} needs {missing}: pip install -e '.[bench]'")

    def __init__(self, dim: int, keep: Path | None = None) -> None:
        """In a temporary directory, or under `keep` (kept for the next run, see `reuse`)."""
        self.dim = dim
        self.keep = keep
        label = self.name.split()[0].lower()
        if keep is None:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"mmsb-{label}-"))
        else:
            self.tmp = keep / label
            self.tmp.mkdir(parents=True, exist_ok=True)

    def reuse(self, data: Segments) -> bool:
        """Open what an earlier run kept, if it holds the same rows; False: load anew."""
        return False

    def load(self, data: Segments) -> None:
        """Insert every segment (timed as the ingest rate; an index built while inserting
        counts here)."""
        raise NotImplementedError

    def build(self) -> None:
        """Build the vector index and whatever the filters and text need (timed)."""
        raise NotImplementedError

    def search(self, query: Query, k: int, knob: int) -> list[int]:
        """Ids (segment numbers) of the top k."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What was configured, for the JSON and the docs."""
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    def size_mb(self) -> float:
        return sum(f.stat().st_size for f in self.tmp.rglob("*") if f.is_file()) / 1e6

    def close(self) -> None:
        if self.keep is None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def batches(n: int) -> list[slice]:
    return [slice(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


class LanceDB(Peer):
    """LanceDB: IVF_HNSW_FLAT with one partition (a plain HNSW graph over full vectors),
    bitmap indexes on the flags, a label-list index on the ACL, its native FTS index;
    filters as prefilters; hybrid = vector + FTS fused by its RRF reranker."""

    name = "LanceDB"
    key = "lancedb"
    packages = ("lancedb", "pyarrow")
    knob = "ef"
    sweep = (10, 20, 40, 80, 160, 320)
    default = 40

    def __init__(self, dim: int, keep: Path | None = None) -> None:
        # before lancedb's import: else a deprecation warning (scores not selected) per query
        os.environ.setdefault("LANCEDB_LOG", "error")
        super().__init__(dim, keep)

    def load(self, data: Segments) -> None:
        import lancedb
        import pyarrow as pa

        self.db = lancedb.connect(self.tmp)
        self.table = None
        if "bench" in self.db.table_names():
            self.db.drop_table("bench")
        for part in batches(len(data.vectors)):
            ids = np.arange(part.start, part.stop)
            batch = pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(data.vectors[part].ravel(), pa.float32()), self.dim
                    ),
                    **{name: pa.array(flag[part]) for name, flag in data.flags.items()},
                    "acl": pa.array([data.acl_of(j) for j in ids], pa.list_(pa.string())),
                    "tags": pa.array([data.tags_of(j) for j in ids], pa.list_(pa.string())),
                    "text": pa.array(data.texts[part], pa.string()),
                }
            )
            if self.table is None:
                self.table = self.db.create_table("bench", batch)
            else:
                self.table.add(batch)
        self.flags = list(data.flags)

    def build(self) -> None:
        from lancedb.index import FTS, Bitmap, HnswFlat, LabelList

        assert self.table is not None
        config = HnswFlat(
            distance_type="cosine", num_partitions=1, m=M, ef_construction=EF_CONSTRUCTION
        )
        self.table.create_index("vector", config=config)
        for name in self.flags:
            self.table.create_index(name, config=Bitmap())
        self.table.create_index("acl", config=LabelList())
        self.table.create_index("tags", config=LabelList())
        self.table.create_index("text", config=FTS())
        (self.tmp / "built").write_text(str(self.table.count_rows()))

    def reuse(self, data: Segments) -> bool:
        import lancedb

        built = self.tmp / "built"
        if not built.exists() or built.read_text() != str(len(data.vectors)):
            return False
        self.db = lancedb.connect(self.tmp)
        self.table = self.db.open_table("bench")
        self.flags = list(data.flags)
        return True

    def search(self, query: Query, k: int, knob: int) -> list[int]:
        from lancedb.rerankers import RRFReranker

        assert self.table is not None
        if query.kind == "keyword":
            builder: Any = self.table.search(query.text, query_type="fts")
        else:
            if query.kind == "hybrid":
                builder = self.table.search(query_type="hybrid", vector_column_name="vector")
                builder = builder.vector(query.vector).text(query.text)
                builder = builder.rerank(RRFReranker(K=60))
            else:
                builder = self.table.search(query.vector, vector_column_name="vector")
            builder = builder.distance_type("cosine").ef(knob)
        where = self.where(query)
        if where:
            builder = builder.where(where, prefilter=True)
        return builder.select(["id"]).limit(k).to_arrow()["id"].to_pylist()

    @staticmethod
    def where(query: Query) -> str | None:
        if query.flag:
            return query.flag
        if query.tag:
            return f"array_has_any(tags, ['{query.tag}'])"
        if query.principal:
            return f"array_has_any(acl, ['{query.principal}'])"
        return None

    def settings(self) -> dict[str, Any]:
        return {
            "index": f"IVF_HNSW_FLAT, 1 partition, m={M}, ef_construction={EF_CONSTRUCTION},"
            " cosine",
            "scalar": "BITMAP on each flag, LABEL_LIST on acl and tags, FTS (native) on text",
            "filters": "prefilter=True; flag as `s1`, tag as `array_has_any(tags, [t])`,"
            " ACL as `array_has_any(acl, [p])`",
            "hybrid": "vector + FTS, RRFReranker(K=60)",
        }

    def versions(self) -> dict[str, str]:
        return {"lancedb": version("lancedb")}


class Chroma(Peer):
    """Chroma (PersistentClient, local): its HNSW, built while adding; filters as `where`
    (flags as booleans, the ACL as a list with `$contains`). It cannot rank by text
    locally: `where_document` only filters, and its hybrid `search()` API (Knn + Rrf) is
    for distributed/hosted Chroma only."""

    name = "Chroma"
    key = "chroma"
    packages = ("chromadb",)
    knob = "ef_search"
    sweep = (10, 20, 40, 80, 160, 320)
    default = 100
    cannot: ClassVar[dict[str, str]] = {
        "hybrid": "no local text ranking (`search()` with Rrf is distributed/hosted only)",
        "keyword": "no local text ranking (`where_document` only filters)",
    }

    def load(self, data: Segments) -> None:
        import chromadb
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(
            path=str(self.tmp), settings=Settings(anonymized_telemetry=False)
        )
        self.collection = self.client.create_collection(
            "bench",
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "max_neighbors": M,
                    "ef_construction": EF_CONSTRUCTION,
                    "ef_search": self.default,
                }
            },
            embedding_function=None,
        )
        self.ef = self.default
        self.lock = threading.Lock()
        for part in batches(len(data.vectors)):
            ids = range(part.start, part.stop)
            self.collection.add(
                ids=[str(j) for j in ids],
                embeddings=data.vectors[part],
                metadatas=[
                    {
                        **{f: bool(v[j]) for f, v in data.flags.items()},
                        "acl": data.acl_of(j),
                        "tags": data.tags_of(j),
                    }
                    for j in ids
                ],
                documents=data.texts[part],
            )

    def build(self) -> None:
        """Nothing left: Chroma builds its HNSW graph as rows are added (in `load`)."""

    def search(self, query: Query, k: int, knob: int) -> list[int]:
        with self.lock:  # the 4-client run may arrive with a new setting in each thread
            if knob != self.ef:
                self.set_ef(knob)
        where: dict[str, Any] | None = None
        if query.flag:
            where = {query.flag: True}
        elif query.tag:
            where = {"tags": {"$contains": query.tag}}
        elif query.principal:
            where = {"acl": {"$contains": query.principal}}
        result = self.collection.query(
            query_embeddings=[query.vector], n_results=k, where=where, include=[]
        )
        return [int(i) for i in result["ids"][0]]

    def set_ef(self, ef: int) -> None:
        """`modify` only records ef_search: the process keeps searching its loaded index
        with the old one (checked: recall unchanged) until the client is opened anew."""
        import chromadb
        from chromadb.api.client import SharedSystemClient
        from chromadb.config import Settings

        self.collection.modify(configuration={"hnsw": {"ef_search": ef}})
        SharedSystemClient.clear_system_cache()
        self.client = chromadb.PersistentClient(
            path=str(self.tmp), settings=Settings(anonymized_telemetry=False)
        )
        self.collection = self.client.get_collection("bench")
        self.collection.query(
            query_embeddings=[np.full(self.dim, self.dim**-0.5)], n_results=1
        )  # load
        self.ef = ef

    def settings(self) -> dict[str, Any]:
        return {
            "index": f"HNSW (built on add), max_neighbors={M},"
            f" ef_construction={EF_CONSTRUCTION}, cosine",
            "filters": "where={flag: True}; ACL where={'acl': {'$contains': p}} on a list",
            "knob": "ef_search: collection.modify(configuration=...), then the client"
            " reopened (a loaded index keeps its ef_search)",
        }

    def versions(self) -> dict[str, str]:
        return {"chromadb": version("chromadb")}


class MilvusLite(Peer):
    """Milvus Lite (milvus-lite 3.x: an in-process Python engine behind pymilvus, FAISS
    for ANN indexes): HNSW; filters as expressions (`s1 == true`,
    `ARRAY_CONTAINS(acl, p)`); text through its BM25 function and sparse inverted index;
    hybrid through `hybrid_search` with an RRF ranker."""

    name = "Milvus Lite"
    key = "milvus"
    packages = ("pymilvus", "milvus_lite")
    knob = "ef"
    sweep = (10, 20, 40, 80, 160, 320)
    default = 64

    def load(self, data: Segments) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        self.client = MilvusClient(str(self.tmp / "milvus.db"))
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        for name in data.flags:
            schema.add_field(name, DataType.BOOL)
        for name in ("acl", "tags"):
            schema.add_field(
                name, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8,
                max_length=32,
            )  # fmt: skip
        schema.add_field("text", DataType.VARCHAR, max_length=1024, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        self.client.create_collection("bench", schema=schema)
        for part in batches(len(data.vectors)):
            self.client.insert(
                "bench",
                [
                    {
                        "id": j,
                        "vector": data.vectors[j],
                        **{f: bool(v[j]) for f, v in data.flags.items()},
                        "acl": data.acl_of(j),
                        "tags": data.tags_of(j),
                        "text": data.texts[j],
                    }
                    for j in range(part.start, part.stop)
                ],
            )
        self.flags = list(data.flags)

    def build(self) -> None:
        # sealed segments first: rows left in the memtable are searched by brute force in
        # Python (~2 s a query at 20k rows instead of ~15 ms)
        self.client.flush("bench")
        params = self.client.prepare_index_params()
        params.add_index(
            "vector",
            index_type="HNSW",
            metric_type="COSINE",
            params={"M": M, "efConstruction": EF_CONSTRUCTION},
        )
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        for name in self.flags:  # milvus-lite: "field type ARRAY does not support scalar index"
            params.add_index(name, index_type="INVERTED")
        self.client.create_index("bench", params)
        self.client.load_collection("bench")

    def search(self, query: Query, k: int, knob: int) -> list[int]:
        from pymilvus import AnnSearchRequest, RRFRanker

        where = ""
        if query.flag:
            where = f"{query.flag} == true"
        elif query.tag:
            where = f'ARRAY_CONTAINS(tags, "{query.tag}")'
        elif query.principal:
            where = f'ARRAY_CONTAINS(acl, "{query.principal}")'
        dense = {"metric_type": "COSINE", "params": {"ef": max(knob, k)}}
        if query.kind == "hybrid":
            legs = [
                AnnSearchRequest([query.vector], "vector", dense, HYBRID_CANDIDATES, where),
                AnnSearchRequest(
                    [query.text], "sparse", {"metric_type": "BM25"}, HYBRID_CANDIDATES, where
                ),
            ]
            hits = self.client.hybrid_search("bench", legs, RRFRanker(60), limit=k)
        elif query.kind == "keyword":
            hits = self.client.search(
                "bench", [query.text], where, limit=k, anns_field="sparse",
                search_params={"metric_type": "BM25"},
            )  # fmt: skip
        else:
            hits = self.client.search(
                "bench", [query.vector], where, limit=k, anns_field="vector", search_params=dense
            )
        return [int(hit["id"]) for hit in hits[0]]

    def settings(self) -> dict[str, Any]:
        return {
            "index": f"HNSW (FAISS IndexHNSWFlat), M={M}, efConstruction={EF_CONSTRUCTION},"
            " COSINE; INVERTED on flags (milvus-lite cannot index an ARRAY field);"
            " BM25 function + SPARSE_INVERTED_INDEX",
            "filters": "expr `s1 == true`; ACL `ARRAY_CONTAINS(acl, p)`",
            "hybrid": "hybrid_search: dense + BM25 legs of 120 each, RRFRanker(60)",
            "index types": "milvus-lite 3.2 builds BRUTE_FORCE/FLAT, HNSW, HNSW_SQ, IVF_FLAT,"
            " IVF_SQ8 (FAISS); IVF_PQ is not implemented",
        }

    def versions(self) -> dict[str, str]:
        return {
            "pymilvus": version("pymilvus"),
            "milvus-lite": version("milvus-lite"),
            "faiss-cpu": _maybe("faiss-cpu"),
        }

    def close(self) -> None:
        self.client.close()
        super().close()


def _maybe(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "-"


PEERS: dict[str, type[Peer]] = {cls.key: cls for cls in (LanceDB, Chroma, MilvusLite)}
