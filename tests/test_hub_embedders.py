"""Loading code of the hub families (CLIP, SigLIP, CLAP) on tiny random checkpoints.

The checkpoints are built here, offline, and saved the way the hub stores them, so
`from_pretrained` runs its real path. The weights are random: these tests check shapes,
norms, determinism and batching, never semantics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.embed.base import Embedder, factory

os.environ["HF_HUB_OFFLINE"] = "1"

PHRASES = (
    "a photo of the cat dog bird car house tree river mountain city street night day",
    "red green blue small large old new glass breaking rain on tin roof quiet room",
    "quick brown fox jumps over lazy barking engine running crowd cheering piano music",
)
TEXTS = ["a cat", "glass breaking in a quiet room", "rain", "a red car on a street at night"]
PROJECTION = 24


def corpus() -> list[str]:
    """Deterministic pseudo-sentences for a BPE of at most 200 tokens."""
    words = " ".join(PHRASES).split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=8)) for _ in range(400)]


def images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    sizes = [(40, 50), (32, 32), (64, 48)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


def clip_tokenizer():
    """A BPE trained like CLIP's (lowercase, words end in </w>, byte-level pieces)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=200,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        end_of_word_suffix="</w>",
    )
    bpe.train_from_iterator(corpus(), trainer)
    return CLIPTokenizerFast(tokenizer_object=bpe, model_max_length=16)


def tiny_tower(**extra: object) -> dict[str, object]:
    return dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, **extra
    )


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def tiny_clip(path: Path) -> Path:
    """A randomly initialised CLIP checkpoint with its processor, saved under `path`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = clip_tokenizer()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    eos = tokenizer.eos_token_id
    config = CLIPConfig(
        text_config=tiny_tower(
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=tiny_tower(image_size=32, patch_size=8),
        projection_dim=PROJECTION,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SigLIP towers with the CLIP tokenizer: sentencepiece is not installed, and the
    embedder's SigLIP path (full-length padding, no projection) does not depend on it."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    path = tmp_path_factory.mktemp("tiny-siglip")
    tokenizer = clip_tokenizer()
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    config = SiglipConfig(
        text_config=tiny_tower(vocab_size=len(tokenizer), max_position_embeddings=16),
        vision_config=tiny_tower(image_size=32, patch_size=8),
    )
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(path)
    return path


def assert_unit_rows(vectors: np.ndarray, rows: int, dim: int) -> None:
    assert vectors.shape == (rows, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def assert_batch_equals_items(
    embedder: Embedder, encode: Callable[[list], np.ndarray], items: list
) -> None:
    """Two per call forces several batches and padding against neighbours of other lengths."""
    embedder.batch_size = 2
    batched = encode(items)
    single = np.concatenate([encode([item]) for item in items])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_clip_loads_tiny_checkpoint(clip_dir: Path) -> None:
    embedder = factory("clip")(model=str(clip_dir))

    assert embedder.model_id == str(clip_dir)
    assert embedder.revision == "main"
    assert embedder.dim == PROJECTION
    assert embedder.distance == "cosine"
    assert embedder.supports("image") and not embedder.supports("text")
    assert embedder.supports("text", query=True) and embedder.supports("image", query=True)

    texts = embedder.encode_texts(TEXTS, query=True)
    pictures = embedder.encode_images(images())
    assert_unit_rows(texts, len(TEXTS), embedder.dim)
    assert_unit_rows(pictures, 3, embedder.dim)
    np.testing.assert_array_equal(texts, embedder.encode_texts(TEXTS, query=True))
    np.testing.assert_array_equal(pictures, embedder.encode_images(images()))
    np.testing.assert_array_equal(texts, embedder.encode_texts(TEXTS, query=False))
    assert embedder.encode_texts([]).shape == (0, embedder.dim)

    assert_batch_equals_items(embedder, embedder.encode_texts, TEXTS)
    assert_batch_equals_items(embedder, embedder.encode_images, images())


def test_clip_truncates_text_longer_than_context(clip_dir: Path) -> None:
    embedder = factory("clip")(model=str(clip_dir), revision="v1")

    assert embedder.revision == "v1"
    long_text = " ".join(["quiet room"] * 40)
    assert_unit_rows(embedder.encode_texts([long_text]), 1, embedder.dim)


def test_clip_rejects_single_tower_model(tmp_path: Path, clip_dir: Path) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(clip_dir)
    CLIPTextModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not an image–text dual encoder"):
        factory("clip")(model=str(tmp_path))


def test_siglip_loads_tiny_checkpoint(siglip_dir: Path) -> None:
    embedder = factory("clip")(model=str(siglip_dir))

    assert embedder.dim == 32  # no projection: the towers meet at the vision width
    texts = embedder.encode_texts(TEXTS)
    pictures = embedder.encode_images(images())
    assert_unit_rows(texts, len(TEXTS), embedder.dim)
    assert_unit_rows(pictures, 3, embedder.dim)
    np.testing.assert_array_equal(texts, embedder.encode_texts(TEXTS))
    assert_batch_equals_items(embedder, embedder.encode_texts, TEXTS)
    assert_batch_equals_items(embedder, embedder.encode_images, images())


# --- CLAP -------------------------------------------------------------------------------

CLAP_RATE = 16_000  # the tiny extractor's rate; LAION's checkpoints use 48 kHz


def roberta_tokenizer():
    """A byte-level BPE with RoBERTa's special tokens, as CLAP's text tower expects."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import RobertaTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.train_from_iterator(corpus(), trainer)
    return RobertaTokenizerFast(tokenizer_object=bpe, model_max_length=30)


@pytest.fixture(scope="module", params=["unfused", "fused"])
def clap_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both LAION variants: "unfused" crops long audio, "fused" adds the fusion branch and
    the extractor's "fusion" mode (which flags a random batch item as long)."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    fused = request.param == "fused"
    path = tmp_path_factory.mktemp(f"tiny-clap-{request.param}")
    tokenizer = roberta_tokenizer()
    extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=CLAP_RATE,
        hop_length=160,
        max_length_s=1,
        fft_window_size=400,
        frequency_max=7_000,
        truncation="fusion" if fused else "rand_trunc",
    )
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(path)
    config = ClapConfig(
        text_config=tiny_tower(vocab_size=len(tokenizer), max_position_embeddings=32),
        audio_config=dict(
            num_mel_bins=64,
            spec_size=128,
            window_size=4,
            depths=[1, 1],
            num_attention_heads=[1, 2],
            patch_embeds_hidden_size=16,
            hidden_size=32,
            enable_fusion=fused,
            fusion_type="aff_2d" if fused else None,
        ),
        projection_dim=PROJECTION,
    )
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(path)
    return path


def clips() -> list[np.ndarray]:
    """A short clip, one of exactly the window, and one 2.5 windows long."""
    rng = np.random.default_rng(2)
    lengths = [CLAP_RATE // 3, CLAP_RATE, 5 * CLAP_RATE // 2]
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]


def test_clap_loads_tiny_checkpoint(clap_dir: Path) -> None:
    embedder = factory("clap")(model=str(clap_dir))

    assert embedder.model_id == str(clap_dir)
    assert embedder.revision == "main"
    assert embedder.dim == PROJECTION
    assert embedder.sample_rate == CLAP_RATE
    assert embedder.supports("audio") and not embedder.supports("text")
    assert embedder.supports("text", query=True) and embedder.supports("audio", query=True)

    texts = embedder.encode_texts(TEXTS, query=True)
    audio = embedder.encode_audio(clips(), CLAP_RATE)
    assert_unit_rows(texts, len(TEXTS), embedder.dim)
    assert_unit_rows(audio, 3, embedder.dim)
    np.testing.assert_array_equal(texts, embedder.encode_texts(TEXTS))
    np.testing.assert_array_equal(audio, embedder.encode_audio(clips(), CLAP_RATE))
    assert embedder.encode_audio([], CLAP_RATE).shape == (0, embedder.dim)

    assert_batch_equals_items(embedder, embedder.encode_texts, TEXTS)
    assert_batch_equals_items(
        embedder, lambda batch: embedder.encode_audio(batch, CLAP_RATE), clips()
    )


def test_clap_pools_long_clip_over_windows(clap_dir: Path) -> None:
    embedder = factory("clap")(model=str(clap_dir))
    long_clip = clips()[2]
    windows = [
        long_clip[:CLAP_RATE],
        long_clip[CLAP_RATE : 2 * CLAP_RATE],
        long_clip[2 * CLAP_RATE :],
    ]

    per_window = embedder.encode_audio(windows, CLAP_RATE)
    weights = np.array([len(w) for w in windows], dtype=np.float32)[:, None]
    expected = (per_window * weights).sum(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(
        embedder.encode_audio([long_clip], CLAP_RATE)[0], expected, atol=1e-5
    )


def test_clap_resamples_and_rejects_bad_clips(clap_dir: Path) -> None:
    embedder = factory("clap")(model=str(clap_dir))
    seconds = np.arange(CLAP_RATE // 2) / CLAP_RATE
    tone = np.sin(2 * np.pi * 440 * seconds).astype(np.float32)
    tone_at_8k = tone[::2].copy()

    np.testing.assert_allclose(
        embedder.encode_audio([tone_at_8k], 8_000),
        embedder.encode_audio([tone], CLAP_RATE),
        atol=0.05,
    )
    with pytest.raises(ValueError, match="non-empty mono"):
        embedder.encode_audio([np.zeros(0, dtype=np.float32)], CLAP_RATE)
    with pytest.raises(ValueError, match="non-empty mono"):
        embedder.encode_audio([np.zeros((CLAP_RATE, 2), dtype=np.float32)], CLAP_RATE)


def test_resample_keeps_a_tone() -> None:
    from mmsearch.embed.clap import resample

    def tone(rate: int) -> np.ndarray:
        return np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)

    upsampled = resample(tone(44_100), 44_100, 48_000)
    assert upsampled.dtype == np.float32 and len(upsampled) == 48_000
    # away from the edges, where the filter sees zero padding, the tone is reproduced
    np.testing.assert_allclose(upsampled[1000:-1000], tone(48_000)[1000:-1000], atol=1e-2)
    same = tone(16_000)
    assert resample(same, 16_000, 16_000) is same
