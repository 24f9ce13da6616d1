"""The rerank stage: the fusion of two orders, the interface, the evidence it gathers from
real media with the packaged models, and hub models (a cross-encoder, CLIP) loaded from tiny
random checkpoints built here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.client import Client
from mmsearch.query.search import Hit
from mmsearch.rerank import RerankContext, Reranker, fuse_orders, load
from mmsearch.rerank.cross_encoder import CrossEncoderReranker
from mmsearch.rerank.evidence import EvidenceReranker, _Judge, frames_at
from tests.avmedia import write_video
from tests.media import photo


def _hit(i: int, **fields: object) -> Hit:
    base = Hit(i, "c", f"/x/{i}", f"t{i}", "text", 100 + i, "chunk", None, None, None, None,
               1.0 / (i + 1), None, {"text": i + 1}, {})  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def test_fuse_orders_follows_a_confident_second_opinion_and_ignores_silence() -> None:
    # the second opinion reverses the first three; the fourth hit has none
    order = fuse_orders([0.1, 0.5, 0.9, None], k=1.0, weight=3.0)
    assert order[:3] == [2, 1, 0] and sorted(order) == [0, 1, 2, 3]
    assert fuse_orders([None, None, None]) == [0, 1, 2]  # no opinion: the search order stays
    assert fuse_orders([0.2, 0.2, 0.2]) == [0, 1, 2]  # ties keep the search order
    assert fuse_orders([0.9, 0.1], k=10.0, weight=0.0) == [0, 1]  # weight 0: off


class _Reverse(Reranker):
    name = "reverse"

    def order(self, query: str, hits: list[Hit], context: RerankContext) -> list[int]:
        return list(range(len(hits)))[::-1]


class _Broken(Reranker):
    name = "broken"

    def order(self, query: str, hits: list[Hit], context: RerankContext) -> list[int]:
        return [0, 0]


def test_a_reranker_reorders_its_depth_and_leaves_the_tail() -> None:
    hits = [_hit(i) for i in range(5)]
    context = RerankContext(db=None, embedders=None)  # type: ignore[arg-type]
    out = _Reverse(depth=3).rerank("q", hits, context)
    assert [h.record_id for h in out] == [2, 1, 0, 3, 4]
    assert [h.ranks.get("rerank") for h in out] == [1, 2, 3, None, None]
    assert out[0].ranks["text"] == 3  # the search's own ranks stay for explanation
    assert _Reverse().rerank("  ", hits, context) == hits  # nothing to compare
    with pytest.raises(ValueError, match="permute"):
        _Broken(depth=2).rerank("q", hits, context)


def test_load_by_name() -> None:
    assert load(None) is None and load({"name": "off"}) is None
    reranker = load({"name": "evidence", "depth": 8, "frames": 3})
    assert isinstance(reranker, EvidenceReranker) and reranker.depth == 8
    assert reranker.kinds == {"seen", "pictured", "heard"}
    with pytest.raises(ValueError, match="unknown evidence kinds"):
        load({"name": "evidence", "kinds": ["smelt"]})
    assert isinstance(load({"name": "cross-encoder", "model": "x"}), CrossEncoderReranker)
    with pytest.raises(ValueError, match="unknown reranker 'bm99'"):
        load({"name": "bm99"})


def test_frames_are_decoded_at_the_asked_times(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    pictures = [(np.full((48, 64, 3), c, np.uint8), 1.0) for c in colours]
    path = write_video(tmp_path / "rgb.mp4", pictures, fps=10)
    frames = frames_at(path, [0.5, 1.5, 2.5, 1.05])
    dominant = [int(np.argmax(np.asarray(f).reshape(-1, 3).mean(axis=0))) for f in frames]
    assert dominant == [0, 1, 2, 1]


@pytest.fixture(scope="module")
def panorama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cat at the left end of a wide picture of a rocket and coffee: the centre crop the
    classifier takes holds no cat."""
    size = (300, 300)
    parts = [photo(name).resize(size) for name in ("chelsea", "rocket", "coffee")]
    wide = Image.new("RGB", (900, 300))
    for i, part in enumerate(parts):
        wide.paste(part, (300 * i, 0))
    path = tmp_path_factory.mktemp("wide") / "wide.jpg"
    wide.save(path, quality=90)
    return path


@pytest.mark.model
def test_crops_find_what_the_centre_crop_missed(client: Client, panorama: Path) -> None:
    context = RerankContext(client.db, client.embedders)
    hit = _hit(1, uri=str(panorama), media_type="image", kind="image")
    with_crops = _Judge(EvidenceReranker(), "a cat", context).evidence(hit)
    centre_only = _Judge(EvidenceReranker(crops=False), "a cat", context).evidence(hit)
    assert with_crops is not None and centre_only is not None
    assert with_crops > centre_only + 0.05, (with_crops, centre_only)


@pytest.mark.model
def test_evidence_reranks_real_search_hits(client: Client, panorama: Path, tmp_path: Path) -> None:
    """Three photos searched for "a cat": the panorama, whose cat the index barely saw,
    rises once its crops are looked at; the hits stay the same records."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "wide.jpg").write_bytes(panorama.read_bytes())
    for name in ("astronaut", "horse", "camera"):
        photo(name).save(folder / f"{name}.jpg")
    client.ingest([folder], collection="rerank-photos")
    hits = client.search("a cat", collection="rerank-photos", mode="vector", k=4)
    before = [Path(h.uri).name for h in hits]
    reranked = EvidenceReranker(weight=3.0, rrf_k=1.0).rerank(
        "a cat", hits, RerankContext(client.db, client.embedders)
    )
    after = [Path(h.uri).name for h in reranked]
    assert sorted(after) == sorted(before)
    assert after[0] == "wide.jpg", (before, after)


@pytest.mark.model
def test_client_search_reranks_only_when_configured(
    client: Client, panorama: Path, tmp_path: Path
) -> None:
    """The evidence reranker in `[rerank]` reorders `Client.search` itself: even at k=1 it
    looks at its `depth` candidates, so the panorama's cat wins; a client without a
    `[rerank]` table (the default) and `rerank=False` keep the search's order."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "wide.jpg").write_bytes(panorama.read_bytes())
    for name in ("astronaut", "horse", "camera"):
        photo(name).save(folder / f"{name}.jpg")
    client.ingest([folder], collection="rerank-client")
    options = {"collection": "rerank-client", "mode": "vector"}
    assert client.settings.rerank == {}
    plain = [Path(h.uri).name for h in client.search("a cat", k=4, **options)]
    assert plain[0] != "wide.jpg" and "rerank" not in client.search("a cat", **options)[0].ranks
    rerank = {"name": "evidence", "weight": 3.0, "rrf_k": 1.0}
    configured = Client(
        client.db, replace(client.settings, rerank=rerank), embedders=client.embedders
    )
    assert configured.reranker() is configured.reranker()  # loaded once per client
    best = configured.search("a cat", k=1, **options)
    assert [Path(h.uri).name for h in best] == ["wide.jpg"] and "rerank" in best[0].ranks
    unranked = configured.search("a cat", k=4, rerank=False, **options)
    assert [Path(h.uri).name for h in unranked] == plain


def _tiny_cross_encoder(path: Path) -> Path:
    """A randomly initialised BERT cross-encoder with a WordPiece vocabulary of the test words."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = "the a cat dog sat on mat rocket launch password reset travel policy conference"
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(
        [words] * 3, trainers.WordPieceTrainer(vocab_size=120, special_tokens=special)
    )
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece, model_max_length=64)
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_cross_encoder_orders_by_its_model(client: Client, tmp_path: Path) -> None:
    """The hub loading code on a tiny random checkpoint: with its weight made dominant, the
    order is the model's scores of (query, segment text), read from the database."""
    from sentence_transformers import CrossEncoder

    folder = tmp_path / "docs"
    folder.mkdir()
    texts = {
        "a.txt": "the cat sat on the mat",
        "b.txt": "a rocket launch",
        "c.txt": "password reset",
        "d.txt": "travel policy for a conference",
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    client.ingest([folder], collection="rerank-text")
    hits = client.search("the cat", collection="rerank-text", mode="keyword", k=10)
    hits += [
        h
        for h in client.search("rocket password travel", collection="rerank-text", k=10)
        if h.record_id not in {x.record_id for x in hits}
    ]
    assert len(hits) == 4
    model_dir = _tiny_cross_encoder(tmp_path / "tiny-ce")
    reranker = CrossEncoderReranker(str(model_dir), weight=1000.0, rrf_k=1.0)
    reranked = reranker.rerank("the cat", hits, RerankContext(client.db, client.embedders))
    contents = [texts[Path(h.uri).name] for h in hits]
    scores = CrossEncoder(str(model_dir), device="cpu").predict([("the cat", t) for t in contents])
    expected = [hits[i].uri for i in np.argsort(-np.asarray(scores), kind="stable")]
    assert [h.uri for h in reranked] == expected


@pytest.mark.model
def test_a_clip_checkpoint_rescores_images_by_configuration(
    client: Client, panorama: Path, tmp_path: Path
) -> None:
    """`image_model` swaps the packaged image space for a hub checkpoint in the reranker."""
    from mmsearch.embed.clip import ClipEmbedder
    from mmsearch.rerank.evidence import _embedder
    from tests.test_hub_embedders import tiny_clip

    path = tiny_clip(tmp_path / "tiny-clip")
    context = RerankContext(client.db, client.embedders)
    override = {"family": "clip", "model": str(path)}
    assert isinstance(_embedder(context, "image", override), ClipEmbedder)
    hit = _hit(1, uri=str(panorama), media_type="image", kind="image")
    score = _Judge(EvidenceReranker(image_model=override), "a cat", context).evidence(hit)
    assert score is not None and -1.0 <= score <= 1.0


@pytest.mark.model
def test_a_chunk_is_read_with_its_neighbours_only_when_asked(
    client: Client, tmp_path: Path
) -> None:
    """The "written" evidence: the chunk and the chunks around it under the title, read as
    the caller; off by default (it did not pay on the judged sets)."""
    folder = tmp_path / "long"
    folder.mkdir()
    paragraphs = [f"Paragraph {i} is about topic {i}. " * 12 for i in range(12)]
    (folder / "notes.txt").write_text("\n\n".join(paragraphs))
    client.ingest([folder], collection="rerank-chunks", acl=["group:eng"])
    eng = ["group:eng"]
    hits = client.search("topic 5", collection="rerank-chunks", mode="keyword", k=1, principals=eng)
    context = RerankContext(client.db, client.embedders, tuple(eng))
    asked = _Judge(EvidenceReranker(kinds=["written"], window_chars=600), "topic 5", context)
    own, window = asked._passage(hits[0])
    assert own and own in window and window.startswith("notes. ") and len(window) > len(own)
    assert asked.evidence(hits[0]) is not None
    assert _Judge(EvidenceReranker(), "topic 5", context).evidence(hits[0]) is None
    principal_only = RerankContext(client.db, client.embedders, ("user:nobody",))
    hidden = _Judge(EvidenceReranker(kinds=["written"]), "topic 5", principal_only)
    assert hidden._passage(hits[0]) == ("", "")  # RLS: a caller who cannot see it reads nothing
