"""The Lee et al. (2005) document-similarity corpus: do our text vectors agree with people?

Fifty short Australian news articles, each pair rated for similarity by students; the
ratings, averaged and scaled to [0, 1], ship with gensim's tests as `similarities0-1.txt`
(the upper triangle of a 50×50 matrix, zeros below the diagonal). A text space is scored by
the Pearson and Spearman correlation between the cosine similarity of its document vectors
and those ratings over the 1,225 distinct pairs. Lee, Pincombe and Welsh report an
inter-rater correlation of about 0.6 and LSA at about 0.6; gensim's `test_lee.py` asserts
its LSA reaches 0.6, "the value which was achieved in the original paper".

This is not a retrieval set with judged queries, so it is no `JudgedSet`: it asks whether
the space's notion of "similar" is a person's, which ranking metrics cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.evalsets.fetch import DataUnavailable, pypi_wheel

if TYPE_CHECKING:
    from mmsearch.embed.base import Embedder

TEST_DATA = "gensim/test/test_data"


@dataclass(frozen=True)
class LeeCorpus:
    documents: tuple[str, ...]
    #: symmetric 50×50 mean human similarity in [0, 1], ones on the diagonal
    ratings: np.ndarray


def load(cache: Path) -> LeeCorpus:
    """The 50 documents (one per line, Latin-1) and the symmetrised rating matrix."""
    data = pypi_wheel("gensim", cache) / TEST_DATA
    try:
        lines = (data / "lee.cor").read_bytes().decode("latin-1").splitlines()
        upper = np.loadtxt(data / "similarities0-1.txt")
    except OSError as exc:
        raise DataUnavailable(f"the gensim wheel has no Lee corpus: {exc}") from exc
    documents = tuple(line.strip() for line in lines if line.strip())
    ratings = np.triu(upper, 1) + np.triu(upper, 1).T + np.eye(len(upper))
    if len(documents) != len(ratings):
        raise DataUnavailable(f"{len(documents)} documents but a {ratings.shape} rating matrix")
    return LeeCorpus(documents, ratings)


def correlation(vectors: np.ndarray, ratings: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman between pairwise cosine similarity and the ratings, over the
    distinct pairs (upper triangle without the diagonal, 1,225 for 50 documents)."""
    from scipy.stats import pearsonr, spearmanr

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    pairs = np.triu_indices(len(ratings), 1)
    cosine = (unit @ unit.T)[pairs]
    human = np.asarray(ratings)[pairs]
    return {
        "pearson": float(pearsonr(cosine, human).statistic),
        "spearman": float(spearmanr(cosine, human).statistic),
        "pairs": len(human),
    }


def tfidf_vectors(documents: tuple[str, ...]) -> np.ndarray:
    """The reference baseline: TF-IDF over the 50 documents, English stop words removed."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words="english").fit_transform(documents).toarray()


def evaluate(corpus: LeeCorpus, embedder: Embedder) -> dict[str, dict[str, float]]:
    """Correlations of the text space and of the TF-IDF baseline with the human ratings.

    Each document is one vector: every Lee document is 51–152 word pieces, inside MiniLM's
    256, so this is also the single chunk that ingest would store.
    """
    return {
        "text space": correlation(embedder.encode_texts(list(corpus.documents)), corpus.ratings),
        "TF-IDF baseline": correlation(tfidf_vectors(corpus.documents), corpus.ratings),
    }
