"""Fixtures of the end-to-end tests: the pipeline of one test, with its first worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from tests.e2e.harness import Pipeline


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """The test's topics and one running worker, ``w1``; every worker is stopped afterwards."""
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        yield pipeline
    finally:
        pipeline.stop_all()
