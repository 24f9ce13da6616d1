"""Clients of the `citus` tests: one model (the `text` space), on any database."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mmsearch.client import Client
from mmsearch.config import Settings, SpaceSpec
from mmsearch.db.engine import Database


def text_client(dsn: str, home: Path) -> Client:
    """A client with only the `text` space: one model, fast ingests."""
    settings = Settings.load(home=home, database_url=dsn)
    settings = replace(settings, spaces=(SpaceSpec("text", "sentence-transformers"),))
    client = Client(Database(dsn), settings)
    client.register_spaces(["text"])
    return client
