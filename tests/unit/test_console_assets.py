"""The console's chart library from its WebJar, without Maven Central: Maven is replaced by
something that drops a WebJar in the output directory as ``dependency:copy-dependencies``
does. The pinned release's script, stylesheet and licence land in the cache once; a WebJar
without one of them is refused naming it, and leaves nothing half there."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from dom.console import assets
from dom.processes import LaunchError

PREFIX = "META-INF/resources/webjars/uplot/1.6.30/"


def fake_maven(files: dict[str, bytes], calls: list[tuple[str, ...]]) -> Any:
    def maven(pom: Path, *goals: str) -> None:
        calls.append(goals)
        out = Path(next(g for g in goals if g.startswith("-DoutputDirectory=")).split("=", 1)[1])
        with zipfile.ZipFile(out / "uplot-1.6.30.jar", "w") as jar:
            for name, data in files.items():
                jar.writestr(PREFIX + name, data)

    return maven


WEBJAR = {
    "dist/uPlot.iife.min.js": b"var uPlot=function(){};",
    "dist/uPlot.min.css": b".uplot{}",
    "dist/uPlot.esm.js": b"export default 1;",
    "LICENSE": b"The MIT License",
}


def test_the_pinned_release_is_fetched_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(assets, "maven", fake_maven(WEBJAR, calls))
    settings = Settings(kafka_home=tmp_path)
    assert assets.uplot_version() == "1.6.30"  # deploy/console/pom.xml pins it
    assert assets.fetched(settings) is None

    where = assets.fetch_chart_library(settings)
    assert where == tmp_path / "console" / "uplot-1.6.30" == assets.fetched(settings)
    assert sorted(p.name for p in where.iterdir()) == [
        "LICENSE",
        "uPlot.iife.min.js",
        "uPlot.min.css",
    ]
    assert (where / "uPlot.iife.min.js").read_bytes() == WEBJAR["dist/uPlot.iife.min.js"]
    assert calls[0][0] == "dependency:copy-dependencies"  # not unpack: no markers in the repo

    assert assets.fetch_chart_library(settings) == where
    assert len(calls) == 1  # fetched once per release


def test_a_webjar_without_a_file_the_console_serves_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = {k: v for k, v in WEBJAR.items() if k != "dist/uPlot.min.css"}
    monkeypatch.setattr(assets, "maven", fake_maven(partial, []))
    settings = Settings(kafka_home=tmp_path)
    with pytest.raises(LaunchError, match=f"the uPlot WebJar has no uPlot.min.css under {PREFIX}"):
        assets.fetch_chart_library(settings)
    assert assets.fetched(settings) is None
    assert not (tmp_path / "console").exists()  # nothing half there
