"""The charting library the console serves with its own files: uPlot, from Maven Central.

``deploy/console/pom.xml`` pins the release (the WebJar of uPlot's npm package). It is fetched
once with Maven into the cache beside Kafka's jars, and the console serves its minified script,
its stylesheet and its licence under ``/static/vendor/``: the browser never reaches a CDN.

uPlot was chosen for size (50 KB minified, no dependencies) and because it draws from plain
arrays the page also shows as a table; the page makes the chart accessible itself (a labelled
figure, the table beside it as its text, colours safe for colour-blind readers and a dash
pattern per series).

``make run`` and ``make test`` fetch it (``python -m dom.console.assets``); ``dom console``
fetches it on start when it is missing, and without Maven serves the tables alone, saying so.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from config.settings import Settings
from dom.processes import LaunchError, maven, pom_property

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
POM = REPO_ROOT / "deploy" / "console" / "pom.xml"
FILES = ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE")
"""What the console serves of the package, by these names."""


def uplot_version(pom: Path = POM) -> str:
    """The uPlot release the pom pins."""
    return pom_property(pom, "uplot.version")


def vendor_dir(settings: Settings, pom: Path = POM) -> Path:
    """Where the pinned release's files live once fetched."""
    return settings.kafka_home / "console" / f"uplot-{uplot_version(pom)}"


def fetched(settings: Settings, pom: Path = POM) -> Path | None:
    """The directory of the files, if they were fetched."""
    where = vendor_dir(settings, pom)
    return where if all((where / name).is_file() for name in FILES) else None


def fetch_chart_library(settings: Settings, pom: Path = POM) -> Path:
    """Fetch and unpack the WebJar (once per release); the directory of :data:`FILES`."""
    ready = fetched(settings, pom)
    if ready is not None:
        return ready
    where = vendor_dir(settings, pom)
    with tempfile.TemporaryDirectory() as scratch:
        # copy-dependencies, not unpack: unpack leaves markers under the pom's target/
        maven(pom, "dependency:copy-dependencies", f"-DoutputDirectory={scratch}")
        jars = list(Path(scratch).glob("uplot-*.jar"))
        if len(jars) != 1:
            raise LaunchError(f"Maven gave {len(jars)} uPlot WebJars, not 1, from {pom}")
        prefix = f"META-INF/resources/webjars/uplot/{uplot_version(pom)}/"
        with zipfile.ZipFile(jars[0]) as jar:
            entries = {PurePosixPath(n).name: n for n in jar.namelist() if n.startswith(prefix)}
            missing = [name for name in FILES if name not in entries]
            if missing:
                raise LaunchError(f"the uPlot WebJar has no {', '.join(missing)} under {prefix}")
            partial = where.with_name(where.name + ".partial")  # renamed whole: never half there
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for name in FILES:
                (partial / name).write_bytes(jar.read(entries[name]))
        shutil.rmtree(where, ignore_errors=True)
        partial.rename(where)
    return where


def main() -> None:
    where = fetch_chart_library(Settings())
    print(f"console chart library (uPlot {uplot_version()}) in {where}")


if __name__ == "__main__":
    main()
