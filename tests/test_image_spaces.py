"""The offline image spaces on real photos: EfficientNet-Lite2 features and ConSE.

Loads the packaged classifier and MiniLM once per module (conftest sets HF_HUB_OFFLINE);
photos come from scikit-image and scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

from mmsearch.embed.base import factory
from mmsearch.embed.conse import ConSEEmbedder, Recipe, class_hypernyms
from mmsearch.embed.efficientnet import EfficientNetFeatureEmbedder, shared_classifier

pytestmark = pytest.mark.model

#: ImageNet-1k indices of the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
CAT_CLASSES = {281, 282, 283, 284, 285}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    samples = load_sample_images()
    return {
        "cat": Image.fromarray(skimage.data.chelsea()),
        "rocket": Image.fromarray(skimage.data.rocket()),
        "coffee": Image.fromarray(skimage.data.coffee()),
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "photographer": Image.fromarray(skimage.data.camera()).convert("RGB"),
        "motorbike": Image.fromarray(skimage.data.stereo_motorcycle()[0]),
        "pagoda": Image.fromarray(samples.images[0]),
        "flower": Image.fromarray(samples.images[1]),
    }


@pytest.fixture(scope="module")
def features() -> EfficientNetFeatureEmbedder:
    return EfficientNetFeatureEmbedder()


@pytest.fixture(scope="module")
def conse() -> ConSEEmbedder:
    return ConSEEmbedder()


@pytest.fixture(scope="module")
def conse_photos(photos: dict[str, Image.Image], conse: ConSEEmbedder) -> dict[str, np.ndarray]:
    """Each photo's ConSE vector, classified once for the module."""
    return dict(zip(photos, conse.encode_images(list(photos.values())), strict=True))


def _crop_and_shrink(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((w // 10, h // 10, w - w // 10, h - h // 8)).reduce(2)


def test_classifier_sees_a_cat(photos: dict[str, Image.Image]) -> None:
    """Weights and preprocessing are right only if the cat photo comes out a cat."""
    logits = shared_classifier().run([photos["cat"], photos["coffee"]]).logits
    assert int(np.argmax(logits[0])) in CAT_CLASSES
    assert int(np.argmax(logits[1])) == 967  # espresso


def test_vectors_have_declared_dim_and_unit_norm(
    photos: dict[str, Image.Image], features: EfficientNetFeatureEmbedder, conse: ConSEEmbedder
) -> None:
    images = list(photos.values())[:3]
    for space, vectors in (
        (features, features.encode_images(images)),
        (conse, conse.encode_images(images)),
        (conse, conse.encode_texts(["a cat", "a rocket"], query=True)),
    ):
        assert vectors.shape == (len(vectors), space.dim)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert features.encode_images([]).shape == (0, features.dim)


@pytest.mark.parametrize(
    ("photo", "nearer", "farther"),
    [
        ("cat", "a cat", "a rocket"),
        ("cat", "a cat", "a dog"),
        ("rocket", "a rocket launch", "a cat"),
        ("coffee", "a cup of coffee", "a motorbike"),
        ("motorbike", "a motorbike", "a flower"),
    ],
)
def test_conse_image_is_nearer_its_description(
    conse_photos: dict[str, np.ndarray], conse: ConSEEmbedder, photo: str, nearer: str, farther: str
) -> None:
    image = conse_photos[photo]
    texts = conse.encode_texts([nearer, farther], query=True)
    assert image @ texts[0] > image @ texts[1]


@pytest.mark.parametrize(
    ("query", "photo"),
    [("a cat", "cat"), ("a flower", "flower"), ("a pagoda", "pagoda"), ("espresso", "coffee")],
)
def test_conse_text_query_ranks_the_right_photo_first(
    conse_photos: dict[str, np.ndarray], conse: ConSEEmbedder, query: str, photo: str
) -> None:
    """A generic word reaches a fine ImageNet class ("Egyptian Mau") through its hypernyms."""
    scores = np.stack(list(conse_photos.values())) @ conse.encode_texts([query], query=True)[0]
    assert list(conse_photos)[int(np.argmax(scores))] == photo


@pytest.mark.parametrize("space_name", ["features", "conse"])
def test_a_cropped_copy_finds_its_original(
    photos: dict[str, Image.Image], space_name: str, request: pytest.FixtureRequest
) -> None:
    space = request.getfixturevalue(space_name)
    originals = space.encode_images(list(photos.values()))
    copies = space.encode_images([_crop_and_shrink(im) for im in photos.values()])
    nearest = np.argmax(copies @ originals.T, axis=1)
    assert nearest.tolist() == list(range(len(photos)))


def test_recipe_changes_the_space_id() -> None:
    assert Recipe().model_id == "conse:efficientnet-lite2+all-MiniLM-L6-v2:v1"
    changed = Recipe(top_k=5, template="a photo of a {}").model_id
    assert changed != Recipe().model_id
    assert "top_k=5" in changed and "a photo of a {}" in changed
    with pytest.raises(ValueError):
        Recipe(top_k=0)


def test_hypernyms_lead_from_fine_classes_to_everyday_words() -> None:
    assert {"domestic cat", "cat"} <= {name for name, _ in class_hypernyms(285, 3)}
    assert "dog" in {name for name, _ in class_hypernyms(154, 3)}  # Pekingese
    assert "entity" not in {name for name, _ in class_hypernyms(285, 50)}


def test_families_are_registered() -> None:
    assert factory("conse") is ConSEEmbedder
    assert factory("efficientnet-features") is EfficientNetFeatureEmbedder
