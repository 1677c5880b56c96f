"""Settings that reach the worker's Faust app: built, not started (nothing connects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dom.settings import Settings
from streams.app import create_app


def test_the_producer_linger_is_the_setting_in_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOM_PRODUCER_LINGER_MS", "1")
    settings = Settings(data_dir=tmp_path)
    assert settings.producer_linger_ms == 1

    pipeline = create_app(settings)

    assert pipeline.app.conf.producer_linger == pytest.approx(0.001)


def test_the_producer_linger_defaults_to_5_ms(tmp_path: Path) -> None:
    pipeline = create_app(Settings(data_dir=tmp_path))
    assert pipeline.app.conf.producer_linger == pytest.approx(0.005)
