r"""`mmsearch encode TEXT|FILE --space S`: a query vector for SQL, e.g. in psql.

\set qvec `mmsearch encode "how do I reset my password" --space text`
SELECT * FROM mmsearch.search(vectors => jsonb_build_object('text', :'qvec'), k => 5);
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("encode")
@click.argument("subject", metavar="TEXT|FILE")
@click.option("--space", default="text", show_default=True, help="The space to encode into.")
def encode_command(subject: str, space: str) -> None:
    """Print the query vector of TEXT (or of an example FILE) in a space, as pgvector text."""
    import numpy as np

    from mmsearch.config import Settings
    from mmsearch.embed.registry import Embedders
    from mmsearch.query.encode import encode_for_space

    settings = Settings.load()
    embedders = Embedders(settings.spaces)
    path = Path(subject)
    if path.is_file():
        from mmsearch.ingest.extract import Extractors, extract_query_file

        example = extract_query_file(path, Extractors(settings, embedders))
        vector = encode_for_space(embedders, example, space)
    else:
        vector = encode_for_space(embedders, subject, space)
    # float32's shortest round-trip form: psql gets back exactly the encoded vector
    click.echo("[" + ",".join(str(x) for x in np.asarray(vector, dtype=np.float32)) + "]")
