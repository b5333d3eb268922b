"""docker-compose.yml, Prometheus and Grafana files: what they name exists and fits together,
no secret is written in them, and the dashboard asks only for metrics ctq serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT

# design.md, "Metrics": what GET /metrics serves.
DESIGN_METRICS = frozenset(
    {
        "ctq_api_requests_total",
        "ctq_http_429_total",
        "ctq_queue_depth",
        "ctq_jobs",
        "ctq_dead_letters",
        "ctq_points_used",
        "ctq_points_budget",
        "ctq_breaker_open",
        "ctq_limiter_margin_seconds",
        "ctq_permit_wait_seconds",
        "ctq_workers_alive",
    }
)
HISTOGRAMS = frozenset({"ctq_permit_wait_seconds"})
SERIES = DESIGN_METRICS | {f"{h}_{part}" for h in HISTOGRAMS for part in ("bucket", "sum", "count")}
PROMQL_FUNCTIONS = frozenset(
    {"sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "vector"}
)
PROMQL_KEYWORDS = frozenset({"or", "and", "unless", "bool"})
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|KEY|AUTH|SECRET", re.IGNORECASE)


def load_yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(load_yaml("docker-compose.yml"))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads((ROOT / "monitoring/grafana/dashboards/ctq.json").read_text()))


def test_compose_runs_the_stack_by_default_and_monitoring_by_profile(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    profiles = {name: set(service.get("profiles", [])) for name, service in services.items()}
    assert {n for n, p in profiles.items() if not p} == {"redis", "worker", "beat", "api"}
    assert profiles["flower"] == {"flower", "monitoring"}
    assert profiles["prometheus"] == profiles["grafana"] == {"monitoring"}
    assert services["flower"]["command"][:2] == ["ctq", "flower"]
    assert services["flower"]["env_file"] == services["api"]["env_file"]  # FLOWER_BASIC_AUTH
    assert services["api"]["command"][-2:] == ["--port", "8080"]


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_WORDS.search(variable):
                # Only a path to a secret file may be given here, never the secret.
                assert variable.endswith("__FILE"), (name, variable)
                assert str(value).startswith("/run/secrets/"), (name, variable)
    for secret in compose["secrets"].values():
        assert set(secret) == {"environment"}  # from the environment (.env), not a value


def test_every_file_the_services_mount_is_in_the_repository(compose: dict[str, Any]) -> None:
    mounts = [
        volume.split(":")
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    ]
    host_paths = [source for source, *_ in mounts if source.startswith("./")]
    assert len(host_paths) == 3
    for source in host_paths:
        assert (ROOT / source).exists(), source


def test_prometheus_scrapes_the_api_with_the_key_compose_hands_it(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    [secret] = prometheus["secrets"]
    assert compose["secrets"][secret] == {"environment": "METRICS_API_KEY"}
    [job] = load_yaml("monitoring/prometheus.yml")["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": f"/run/secrets/{secret}",
    }
    assert job["static_configs"] == [{"targets": ["api:8080"]}]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard_it_mounts(
    compose: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    volumes = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provisioning = ROOT / "monitoring/grafana/provisioning"
    assert volumes["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    [source] = load_yaml("monitoring/grafana/provisioning/datasources/prometheus.yml")[
        "datasources"
    ]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = yaml.safe_load((provisioning / "dashboards/ctq.yml").read_text())["providers"]
    assert volumes["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, ranges, groupings, dashboard
    variables and functions left out); an unknown function is reported as a name."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\w+", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        word, call = match.groups()
        if not ((call and word in PROMQL_FUNCTIONS) or word in PROMQL_KEYWORDS):
            names.add(word)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = "histogram_quantile(0.95, sum by (le) (rate(ctq_permit_wait_seconds_bucket[5m])))"
    assert metric_names(expr) == {"ctq_permit_wait_seconds_bucket"}
    assert metric_names('ctq_jobs{state=~"done|dead"} or vector($x)') == {"ctq_jobs"}
    assert metric_names("ctq_points_used / on(site) ctq_points_budget") == {
        "ctq_points_used",
        "ctq_points_budget",
    }
    assert metric_names("sum(ctq_queue_deph)") == {"ctq_queue_deph"}
    assert metric_names("irate(ctq_jobs[1m])") == {"irate", "ctq_jobs"}


def test_the_dashboard_reads_only_and_every_metric_design_md_lists(
    dashboard: dict[str, Any],
) -> None:
    read: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names <= SERIES, (panel["title"], names - SERIES)
            read |= names
    assert {re.sub(r"_(bucket|sum|count)$", "", n) for n in read} == DESIGN_METRICS


def test_the_dashboard_has_the_panels_an_operator_looks_for(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Permits per second vs the limit",
        "429s per minute",
        "Queue depth per lane",
        "Points used vs budget per site",
        "Breakers open",
        "Limiter margin",
        "Permit wait (quantiles)",
        "Workers alive",
        "Dead letters",
    } <= titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.skipif(
    not shutil.which("docker")
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose is not installed here: the file is checked with PyYAML above",
)
def test_docker_compose_accepts_the_file_with_every_profile() -> None:
    checked = subprocess.run(
        ["docker", "compose", "--profile", "monitoring", "--profile", "sandbox", "config", "-q"],
        cwd=ROOT,
        env={**os.environ, "METRICS_API_KEY": "k", "GRAFANA_ADMIN_PASSWORD": "p"},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
