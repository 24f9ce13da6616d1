"""mmsearch: multimodal search over text, images, audio and video, in PostgreSQL.

from mmsearch import Client
client = Client.connect()
client.ingest(["docs/"], collection="demo")
hits = client.search("a cat on a sofa", collection="demo")
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "Hit", "IngestReport", "SearchOptions"]

if TYPE_CHECKING:
    from mmsearch.client import Client
    from mmsearch.ingest.pipeline import IngestReport
    from mmsearch.query.request import SearchOptions
    from mmsearch.query.search import Hit


def __getattr__(name: str) -> Any:
    """Import lazily so `import mmsearch` (and `mmsearch --help`) stays fast."""
    if name == "Client":
        from mmsearch.client import Client

        return Client
    if name == "Hit":
        from mmsearch.query.search import Hit

        return Hit
    if name == "SearchOptions":
        from mmsearch.query.request import SearchOptions

        return SearchOptions
    if name == "IngestReport":
        from mmsearch.ingest.pipeline import IngestReport

        return IngestReport
    raise AttributeError(name)
