"""Fixtures of the end-to-end tests: the pipeline of one test, with its first worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.settings import Settings
from tests.e2e import world
from tests.e2e.harness import Pipeline


@contextmanager
def one_worker(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Pipeline]:
    """The test's topics and one running worker, ``w1`` (with ``env`` set: ``DOM_`` settings
    the harness does not pass itself); every worker is stopped afterwards."""
    pipeline = Pipeline(settings, tmp_path)
    pipeline.overrides.update(env)
    pipeline.start_worker("w1")
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


@contextmanager
def static_pair(
    settings: Settings, tmp_path: Path, session_s: int, stock: dict[str, int]
) -> Iterator[Pipeline]:
    """The test's topics, one DC holding ``stock`` and two running workers, ``w1`` and
    ``w2``, static members of their group under their names (``DOM_STATIC_MEMBERSHIP``) with a
    session timeout of ``session_s``; every worker is stopped afterwards."""
    pipeline = Pipeline(settings, tmp_path)
    pipeline.overrides.update(
        DOM_STATIC_MEMBERSHIP="true", DOM_BROKER_SESSION_TIMEOUT=str(session_s)
    )
    try:
        pipeline.start_worker("w1")
        pipeline.start_worker("w2")
        world.one_dc(pipeline, stock)
        yield pipeline
    finally:
        pipeline.stop_all()


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """The test's topics and one running worker, ``w1``."""
    with one_worker(settings, tmp_path) as pipeline:
        yield pipeline
