"""Space registration: column, HNSW index and operator class really exist; conflicts refused."""

from __future__ import annotations

import pytest

from mmsearch.db.engine import Database
from mmsearch.errors import SpaceConflict, UserError
from mmsearch.spaces import list_spaces, register_space


def column_type_and_index(db: Database, column: str) -> tuple[str, str]:
    with db.transaction() as conn:
        coltype = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'mmsearch.segment'::regclass AND attname = %s",
            (column,),
        ).fetchone()[0]
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'mmsearch' AND indexdef LIKE %s",
            (f"%({column} %",),
        ).fetchone()[0]
    return coltype, indexdef


@pytest.mark.parametrize(
    ("name", "dim", "distance", "expected_type", "opclass"),
    [
        ("t_cos", 384, "cosine", "vector(384)", "vector_cosine_ops"),
        ("t_ip", 512, "ip", "vector(512)", "vector_ip_ops"),
        ("t_l2", 8, "l2", "vector(8)", "vector_l2_ops"),
        ("t_big", 3072, "cosine", "halfvec(3072)", "halfvec_cosine_ops"),
    ],
)
def test_register_adds_column_and_hnsw_index(
    db: Database, name: str, dim: int, distance: str, expected_type: str, opclass: str
) -> None:
    with db.transaction() as conn:
        space = register_space(
            conn, name, modalities=["text"], model_id="m", revision="1", dim=dim, distance=distance
        )
    assert space.column_name == f"{name}_vec"
    coltype, indexdef = column_type_and_index(db, space.column_name)
    assert coltype == expected_type
    assert "USING hnsw" in indexdef and opclass in indexdef


def test_register_is_idempotent_and_refuses_another_model(db: Database) -> None:
    args = {"modalities": ["image", "text"], "revision": "r1", "dim": 16, "distance": "cosine"}
    with db.transaction() as conn:
        first = register_space(conn, "same", model_id="model-a", **args)
    with db.transaction() as conn:
        again = register_space(conn, "same", model_id="model-a", **args)
    assert first == again
    for change in ({"model_id": "model-b"}, {"model_id": "model-a", "dim": 32}):
        with pytest.raises(SpaceConflict, match="new space name"), db.transaction() as conn:
            register_space(conn, "same", **{**args, **change})
    with db.transaction() as conn:
        names = [s.name for s in list_spaces(conn)]
    assert names.count("same") == 1


@pytest.mark.parametrize("name", ["Bad", "1abc", "x; drop table", "a" * 41])
def test_register_refuses_bad_names(db: Database, name: str) -> None:
    with pytest.raises(UserError), db.transaction() as conn:
        register_space(
            conn, name, modalities=["text"], model_id="m", revision="", dim=4, distance="l2"
        )


def test_register_refuses_dims_hnsw_cannot_index(db: Database) -> None:
    with pytest.raises(UserError, match=r"outside 1\.\.4000"), db.transaction() as conn:
        register_space(
            conn, "huge", modalities=["text"], model_id="m", revision="", dim=5000, distance="l2"
        )
