"""The operations kit under ``deploy/`` (Prometheus, Grafana, compose, Kubernetes) and its runbook,
checked against the code it operates.

Every metric a query names is one a worker exports. Every ``DOM_`` variable is a setting with a
valid value. Every registry topic has its KafkaTopic, and every alert has its runbook section.
No network is used. The outside checkers ``promtool`` (installed by ``make test``) and
``kubectl kustomize`` (part of this machine) run too; a missing one is a failure that says how
to install it, never a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings
from schemas.topics import ALL_TOPICS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
DASHBOARD = GRAFANA / "dashboards" / "dom-pipeline.json"
RUNBOOK = REPO / "docs" / "runbook.md"
KIT_DIRS = (PROMETHEUS, GRAFANA, COMPOSE, K8S)

METRIC_NAME = re.compile(r"\b(?:dom|faust)_[A-Za-z0-9_]+")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
# Labels every scraped series can carry: Prometheus target labels, those prometheus.yml and
# the ServiceMonitor add, and the Prometheus Operator's Kubernetes labels.
TARGET_LABELS = {"job", "instance", "worker", "component", "env", "namespace", "pod", "service"}
REQUIRED_ALERTS = {
    "DomConsumerLagGrowing",
    "DomNoProgress",
    "DomDeadLetters",
    "DomDecisionLatencyHigh",
    "DomStageErrorRate",
    "DomWorkerDown",
}
SETTING_VARS = {f"DOM_{name.upper()}" for name in Settings.model_fields}
APP_IMAGE = "dom-pipeline"


# ---- what the code defines -----------------------------------------------------------------


@cache
def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name a worker's /metrics can show, with the label names it carries."""
    from streams.metrics import PipelineMetrics
    from streams.runtime.faust_metrics import FaustFigures

    pipeline = PipelineMetrics()
    faust = FaustFigures(pipeline.registry)  # Faust's own figures, as the runtime counts them
    figures = [value for name, value in vars(faust).items() if name.startswith("fig_")]
    collectors = [*vars(pipeline).values(), *figures]
    # prometheus_client keeps label names only privately; describe() does not list them.
    labels = {c._name: frozenset(c._labelnames) for c in collectors if hasattr(c, "_labelnames")}
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: dict[str, frozenset[str]] = {"up": frozenset()}
    for family in pipeline.registry.collect():
        family_labels = labels[family.name]
        for suffix in suffixes[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[family.name + suffix] = family_labels | extra
        for sample in family.samples:
            names.setdefault(sample.name, family_labels | set(sample.labels))
    return names


def kit_yaml_files() -> list[Path]:
    return sorted(p for d in KIT_DIRS for p in d.rglob("*") if p.suffix in {".yml", ".yaml"})


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return panels


def dashboard_queries() -> list[str]:
    queries = [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def assert_known_settings(env: dict[str, Any], where: str) -> None:
    """Names are settings, and the literal values are valid ones (interpolations aside)."""
    unknown = sorted(set(env) - SETTING_VARS)
    assert not unknown, f"{where}: not DOM_ settings: {unknown}"
    literal = {
        k.removeprefix("DOM_").lower(): v
        for k, v in env.items()
        if isinstance(v, str) and "$" not in v
    }
    Settings.model_validate(literal)


# ---- every file parses ------------------------------------------------------------------


@pytest.mark.parametrize("path", kit_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_of_the_kit_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"keys given twice (Grafana keeps the last): {repeated}"
    return dict(pairs)


def test_no_key_of_the_dashboard_is_given_twice() -> None:
    # A repeated key parses, silently losing the first value (a panel description was lost so).
    json.loads(DASHBOARD.read_text(), object_pairs_hook=_unique_keys)


def test_the_dashboard_has_panels_with_queries_over_a_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard_panels() if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["type"] == "prometheus"
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


# ---- metrics: every name a query uses is exported -----------------------------------------


def all_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every query in the kit: alerts, both copies, and the dashboard."""
    queries = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    for path, doc in k8s_documents():
        if doc["kind"] == "PrometheusRule":
            for group in doc["spec"]["groups"]:
                queries += [(f"{path.name} {r['alert']}", r["expr"]) for r in group["rules"]]
    queries += [("dashboard", q) for q in dashboard_queries()]
    return queries


def test_every_metric_a_query_names_is_exported_by_a_worker() -> None:
    known = exported_metrics()
    for where, query in all_queries():
        names = set(METRIC_NAME.findall(query)) | ({"up"} if re.search(r"\bup\{", query) else set())
        assert names, f"{where}: no metric in {query!r}"
        unknown = sorted(names - set(known))
        assert not unknown, f"{where}: no such metric {unknown} in {query!r}"


def test_every_label_a_query_groups_or_filters_by_exists_on_its_metrics() -> None:
    known = exported_metrics()
    for where, query in all_queries():
        names = set(METRIC_NAME.findall(query)) | {"up"}
        allowed = TARGET_LABELS.union(*(known.get(n, frozenset()) for n in names))
        used = {label.strip() for g in GROUPING.findall(query) for label in g.split(",")}
        used |= {m for s in SELECTOR.findall(query) for m in MATCHER.findall(s)}
        assert not (used - {""} - allowed), f"{where}: unknown labels {used - allowed} in {query!r}"


def test_the_dashboard_shows_every_pipeline_metric() -> None:
    text = " ".join(dashboard_queries())
    families = {
        n for n in exported_metrics() if n.startswith("dom_") and not n.endswith("_created")
    }
    shown = {f for f in families if re.search(rf"\b{f}\b", text)}
    bases = {re.sub(r"_(total|bucket|sum|count)$", "", f) for f in shown}
    missing = {f for f in families if re.sub(r"_(total|bucket|sum|count)$", "", f) not in bases}
    assert not missing, f"no panel shows {sorted(missing)}"


# ---- alerts -----------------------------------------------------------------------------


def test_alerts_cover_the_required_conditions_with_the_required_fields() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    runbook_anchors = {
        github_anchor(line[3:])
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in rules:
        assert rule["expr"].strip() and rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), rule["alert"]
        url, _, anchor = notes["runbook_url"].partition("#")
        assert url.endswith("docs/runbook.md"), notes["runbook_url"]
        assert anchor == rule["alert"].lower() and anchor in runbook_anchors, rule["alert"]
    by_name = {r["alert"]: " ".join(r["expr"].split()) for r in rules}
    assert by_name["DomWorkerDown"] == 'up{job="dom-worker"} == 0'
    assert (
        "histogram_quantile(0.99, sum by (le) (rate(dom_decision_latency_seconds_bucket"
        in (by_name["DomDecisionLatencyHigh"])
    )
    assert "rate(dom_stage_events_in_total" in by_name["DomNoProgress"]
    assert "dom_consumer_lag" in by_name["DomNoProgress"]


def test_the_operator_rules_are_the_same_as_the_prometheus_ones() -> None:
    rules = [doc for _, doc in k8s_documents() if doc["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    assert rules[0]["spec"]["groups"] == load_yaml(PROMETHEUS / "alerts.yml")["groups"]


def test_prometheus_scrapes_every_compose_worker_and_loads_the_alerts() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_job = jobs["dom-worker"]
    assert worker_job["metrics_path"] == "/metrics"
    targets = {t for sc in worker_job["static_configs"] for t in sc["targets"]}
    workers = {
        f"{name}:{svc['environment']['DOM_WEB_PORT']}"
        for name, svc in compose_services().items()
        if svc.get("command", [None, None])[:2] == ["dom", "worker"]
    }
    assert targets == workers
    connector_port = compose_services()["connector"]["environment"]["DOM_CONNECTOR_PORT"]
    assert jobs["dom-connector"]["static_configs"][0]["targets"] == [f"connector:{connector_port}"]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run `make test-tools` (apt-get install prometheus)")
    return found


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),  # loads alerts.yml through rule_files too
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),  # each alert fires on its case, and only then
    ],
    ids=" ".join,
)
def test_promtool_accepts_the_config_and_the_alerts_pass_their_unit_tests(
    args: tuple[str, ...],
) -> None:
    run = subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


# ---- Grafana provisioning -------------------------------------------------------------------


def test_grafana_provisions_a_prometheus_datasource_and_the_dashboard_folder() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dom.yml")["providers"][0]
    grafana = compose_services()["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith(".."))
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"


# ---- compose --------------------------------------------------------------------------------


@cache
def compose_services() -> dict[str, Any]:
    return load_yaml(COMPOSE / "docker-compose.yml")["services"]


def app_services() -> dict[str, Any]:
    return {n: s for n, s in compose_services().items() if s.get("image") == f"{APP_IMAGE}:local"}


def test_every_compose_service_has_an_image_and_its_mounts_exist() -> None:
    for name, service in compose_services().items():
        assert service.get("image") or service.get("build"), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name}: {source} does not exist"
    build = app_services()["w1"]["build"]
    assert (COMPOSE / build["context"] / build["dockerfile"]).is_file()
    assert "schema-registry" in compose_services()
    assert compose_services()["schema-registry"]["profiles"] == ["registry"]


def test_compose_runs_the_dom_commands_with_known_settings() -> None:
    from dom.cli import main

    services = app_services()
    assert {"topics", "connector"} <= set(services)
    for name, service in services.items():
        command = service["command"]
        assert command[0] == "dom", name
        leaf, rest = main, command[1:]
        while rest and hasattr(leaf, "commands") and rest[0] in leaf.commands:
            leaf, rest = leaf.commands[rest[0]], rest[1:]
        leaf.make_context(" ".join(command), list(rest))  # raises on an unknown option
        assert_known_settings(service["environment"], f"compose {name}")
    assert services["topics"]["command"] == ["dom", "topics", "create"]
    assert services["connector"]["command"] == ["dom", "connect"]
    workers = {n: s for n, s in services.items() if s["command"][:2] == ["dom", "worker"]}
    assert len(workers) >= 2
    names = [s["environment"]["DOM_WORKER_NAME"] for s in workers.values()]
    assert len(set(names)) == len(names), "two workers must never share a name"
    for name, service in workers.items():
        assert service["command"][2:] == ["--name", service["environment"]["DOM_WORKER_NAME"]]
        assert service["environment"]["DOM_WEB_HOST"] == name  # reachable by the other workers
    state = [v for s in workers.values() for v in s["volumes"] if v.endswith(":/var/lib/dom")]
    assert len(set(state)) == len(workers), "each worker needs a state volume of its own"


def test_the_app_image_installs_the_project_with_its_constraints() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert "pip install -c constraints.txt ." in dockerfile
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for item in source.split():
            assert (REPO / item).exists(), f"Dockerfile copies a missing {item}"


def test_every_manifest_names_its_api_kind_and_name() -> None:
    for path, doc in k8s_documents():
        if path.name == "kustomization.yaml":
            continue
        assert doc.get("apiVersion") and doc.get("kind"), path
        assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secret-example.yaml"}


def test_a_kafka_topic_for_every_registry_topic() -> None:
    partitions = Settings().topic_partitions
    declared = {
        doc["spec"]["topicName"]: (doc["spec"]["partitions"], doc["spec"]["config"])
        for _, doc in k8s_documents()
        if doc["kind"] == "KafkaTopic"
    }
    expected = {t.name: (partitions, t.config()) for t in ALL_TOPICS}
    assert declared == expected
    compacted = {n for n, (_, c) in declared.items() if c["cleanup.policy"] == "compact"}
    assert compacted == {t.name for t in ALL_TOPICS if t.compacted}


def pod_specs() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for _, doc in k8s_documents():
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            yield doc["kind"], doc, doc["spec"]["template"]["spec"]


def test_manifests_set_only_known_settings() -> None:
    config_maps = {
        d["metadata"]["name"]: d["data"] for _, d in k8s_documents() if d["kind"] == "ConfigMap"
    }
    for data in config_maps.values():
        assert_known_settings(data, "ConfigMap")
        assert int(data["DOM_TOPIC_PARTITIONS"]) == Settings().topic_partitions
    for _, doc, spec in pod_specs():
        for container in spec["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert_known_settings(env, doc["metadata"]["name"])
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
    for _, doc in k8s_documents():
        if doc["kind"] == "Secret":
            assert_known_settings(doc["stringData"], "Secret")


def test_each_worker_is_a_stateful_pod_with_its_name_volume_and_metrics() -> None:
    (worker,) = [d for kind, d, _ in pod_specs() if kind == "StatefulSet"]
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["dom", "worker"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DOM_WORKER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = next(d for _, d in k8s_documents() if d["kind"] == "ConfigMap")["data"]
    assert mounts[claim["metadata"]["name"]] == config["DOM_DATA_DIR"]
    services = {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == "Service"}
    service = services[worker["spec"]["serviceName"]]
    assert service["metadata"]["name"] == "dom-worker"  # the job label the alerts select on
    assert service["spec"]["clusterIP"] == "None"
    assert (
        service["spec"]["selector"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    )
    (monitor,) = [d for _, d in k8s_documents() if d["kind"] == "ServiceMonitor"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]


def test_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (part of this machine's image) is needed to build the kit"
    run = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    built = [d for d in yaml.safe_load_all(run.stdout) if d]
    sources = [
        d for p, d in k8s_documents() if p.name not in {"kustomization.yaml", "secret-example.yaml"}
    ]
    assert len(built) == len(sources)
    namespaced = [d for d in built if d["kind"] != "Namespace"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"dom"}
