"""The Grafana dashboard asks only for series a real provisioner's /metrics has.

A provisioner (local backend, uvicorn subprocess) gets a little of every kind
of traffic so that its labelled series exist: a claim, a WebSocket with pings
relayed both ways, a kill and its replacement, a refused claim and an ended
session. Its /metrics is parsed with prometheus_client's own text parser, and
every panel's PromQL with ``promql_parser`` (the Rust promql-parser crate,
Prometheus's grammar): metric names come from the parsed selectors, never
from a guess at which identifiers are functions, keywords or labels. Each
selected name must be a series the scrape has; each label matcher and each
``by``/``without`` label must be a label that series carries.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.support.servers import Server, new_session, start_server
from tests.support.wsclient import is_event, next_json, ping, until

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "pingpod.json"

# Grafana's own interval variables; each stands for a duration when the query runs.
GRAFANA_DURATIONS = ("$__rate_interval", "$__interval", "$__range")
_VARIABLE = re.compile(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Selector:
    """One series selector of a query: the metric name and its label matchers."""

    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


@dataclass
class QueryRefs:
    """What a query refers to: its selectors and the labels it groups by."""

    selectors: list[Selector] = field(default_factory=list)
    # Each aggregation's labels, with the metric names selected beneath it.
    groupings: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)


_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    # The binding's enum is not hashable: compare, do not look up.
    return next(text for member, text in _OPERATORS if op == member)


def _selector(node: promql_parser.VectorSelector) -> Selector:
    matchers = tuple((m.name, _op(m.op), m.value) for m in node.matchers.matchers)
    name = node.name
    if name is None:  # {__name__="..."} names the metric through a matcher
        name = next((v for label, op, v in matchers if label == "__name__" and op == "="), None)
    return Selector(name, tuple(m for m in matchers if m[0] != "__name__"))


def substitute_grafana_variables(expr: str) -> str:
    """Grafana's interval variables as a duration; any other variable is an error."""
    for variable in GRAFANA_DURATIONS:
        expr = expr.replace(variable, "1m")
    left = _VARIABLE.findall(expr)
    if left:
        raise ValueError(f"unknown dashboard variables {left} in {expr!r}")
    return expr


def query_refs(expr: str) -> QueryRefs:
    """Parse ``expr`` (PromQL as a panel holds it) and list what it refers to."""
    tree = promql_parser.parse(substitute_grafana_variables(expr))
    refs = QueryRefs()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            refs.selectors.append(_selector(node))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            beneath: list[str] = []

            def names(inner: promql_parser.Expr) -> bool:
                if isinstance(inner, promql_parser.VectorSelector):
                    selected = _selector(inner).name
                    if selected:
                        beneath.append(selected)
                return True

            promql_parser.walk(node.expr, names)
            refs.groupings.append((tuple(node.modifier.labels), tuple(beneath)))
        return True

    promql_parser.walk(tree, visit)
    return refs


Series = dict[str, dict[str, set[str]]]  # sample name -> label -> values seen


def scrape_series(text: str) -> Series:
    """Every sample name in a /metrics text, with its labels and their values."""
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = series.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    return series


def problems(expr: str, series: Series) -> list[str]:
    """What in ``expr`` the scraped series do not have (empty: all of it exists)."""
    refs = query_refs(expr)
    found: list[str] = []
    for selector in refs.selectors:
        if selector.name is None:
            found.append(f"a selector without a metric name: {selector.matchers}")
            continue
        labels = series.get(selector.name)
        if labels is None:
            found.append(f"no series named {selector.name}")
            continue
        for label, op, value in selector.matchers:
            if label not in labels:
                found.append(f"{selector.name} has no label {label!r}")
            elif op == "=" and value not in labels[label]:
                found.append(f"{selector.name}{{{label}={value!r}}} was never exposed")
    for grouped_by, names in refs.groupings:
        for label in grouped_by:
            if not any(label in series.get(name, {}) for name in names):
                found.append(f"grouping label {label!r} is on none of {list(names)}")
    return found


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, rows' panels included."""
    queries: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                queries.append((inner["title"], target["expr"]))
    return queries


def _drive_traffic(server: Server) -> None:
    """A claim, pings relayed both ways, a kill and its replacement, a 429, an end."""
    session = new_session(server)
    sid = session["session_id"]

    async def relay_and_kill() -> None:
        async with connect(server.ws + session["ws_url"]) as ws:
            await until(ws, is_event("upstream_ready"))
            await ping(ws, 1)
            assert (await until(ws, lambda f: f["type"] == "pong"))["seq"] >= 1
            killed = httpx.delete(server.url + f"/session/{sid}/pod", timeout=10)
            assert killed.status_code == 202
            # Pongs again: the replacement is Ready and its time was observed.
            first = session["pod"]["name"]
            await until(ws, lambda f: f["type"] == "pong" and f["pod"] != first, timeout=30)
            await ping(ws, 2)
            await next_json(ws)

    asyncio.run(relay_and_kill())
    refused = httpx.post(server.url + "/session", timeout=10)  # MAX_SESSIONS=1: full
    assert refused.status_code == 429, refused.text
    assert httpx.delete(server.url + f"/session/{sid}", timeout=10).status_code == 204


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Series]:
    server = start_server(
        "services.provisioner",
        tmp_path_factory.mktemp("dashboard"),
        {"POOL_SIZE": "2", "MAX_SESSIONS": "1", "CLAIM_TIMEOUT": "30"},
        "/ready",
        metrics=True,  # the scrape is on the metrics port, as the PodMonitor's
    )
    try:
        server.wait_pool(2)
        _drive_traffic(server)
        # The relay counts a frame once it is written; a scrape right after the
        # last pong may still miss it, so wait until both directions show.
        deadline = time.monotonic() + 10
        while True:
            scraped = scrape_series(httpx.get(server.metrics_url, timeout=10).text)
            directions = scraped.get("pingpod_relayed_messages_total", {}).get("direction", set())
            if directions >= {"up", "down"} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        yield scraped
    finally:
        server.stop()


def test_dashboard_is_importable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "pingpod-provisioner"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_has_the_panels_operators_need() -> None:
    by_title: dict[str, list[str]] = {}
    for title, expr in panel_queries(load_dashboard()):
        by_title.setdefault(title, []).append(expr)
    names = {
        title: {s.name for e in exprs for s in query_refs(e).selectors}
        for title, exprs in by_title.items()
    }
    assert names["Sessions now"] == {"pingpod_sessions_active"}
    assert names["Claims per second by path"] == {"pingpod_claims_total"}
    assert names["Claim latency p50 / p99"] == {"pingpod_claim_seconds_bucket"}
    assert names["Pool: warm and target"] >= {"pingpod_pool_pods", "pingpod_pool_target"}
    assert names["Replacement time p50 / p99"] == {"pingpod_replacement_seconds_bucket"}
    assert names["Relayed frames per second"] == {"pingpod_relayed_messages_total"}
    assert names["Rejections by reason"] == {"pingpod_rejections_total"}
    latencies = by_title["Claim latency p50 / p99"] + by_title["Replacement time p50 / p99"]
    quantiles = " ".join(latencies)
    assert quantiles.count("histogram_quantile(0.5,") == 2
    assert quantiles.count("histogram_quantile(0.99,") == 2
    assert 'state="warm"' in " ".join(by_title["Pool: warm and target"])


def test_every_panel_query_names_exposed_series_and_labels(series: Series) -> None:
    queries = panel_queries(load_dashboard())
    assert len(queries) >= 10
    failures = {f"{title}: {expr}": problems(expr, series) for title, expr in queries}
    assert {q: p for q, p in failures.items() if p} == {}


def test_labelled_series_were_driven(series: Series) -> None:
    """The traffic made the series the panels group by (else the check above proves less)."""
    assert series["pingpod_claims_total"]["path"] >= {"warm"}
    assert series["pingpod_relayed_messages_total"]["direction"] == {"up", "down"}
    assert "at_capacity" in series["pingpod_rejections_total"]["reason"]
    assert "deleted" in series["pingpod_sessions_ended_total"]["reason"]
    assert series["pingpod_pool_pods"]["state"] == {"warm", "starting", "assigned"}
    assert "le" in series["pingpod_replacement_seconds_bucket"]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        # A misspelt counter (no _total, wrong stem).
        ("sum(rate(pingpod_claim_total[$__rate_interval]))", "no series named pingpod_claim_total"),
        # A histogram's base name is not a series; its _bucket is.
        (
            "histogram_quantile(0.99, sum by (le) (rate(pingpod_claim_seconds[5m])))",
            "no series named pingpod_claim_seconds",
        ),
        # The name given through __name__.
        ('max({__name__="pingpod_pool_size"})', "no series named pingpod_pool_size"),
        # A label the metric does not have, and a value never exposed.
        ('max(pingpod_pool_pods{phase="warm"})', "pingpod_pool_pods has no label 'phase'"),
        ('max(pingpod_pool_pods{state="hot"})', "{state='hot'} was never exposed"),
        # Grouping by a label the selected series lack.
        (
            "sum by (pod) (rate(pingpod_claims_total[1m]))",
            "grouping label 'pod' is on none of ['pingpod_claims_total']",
        ),
        # Names on either side of a binary operation are both checked.
        (
            "sum(pingpod_websockets_open) / sum(pingpod_sessions_open)",
            "no series named pingpod_sessions_open",
        ),
    ],
)
def test_a_doctored_query_is_caught(series: Series, expr: str, problem: str) -> None:
    found = problems(expr, series)
    assert any(problem in p for p in found), found


def test_a_doctored_dashboard_fails_the_check(series: Series) -> None:
    dashboard = load_dashboard()
    target = dashboard["panels"][0]["targets"][0]
    target["expr"] = target["expr"].replace("pingpod_sessions_active", "pingpod_sessions_now")
    failures = [p for _, expr in panel_queries(dashboard) for p in problems(expr, series)]
    assert failures == ["no series named pingpod_sessions_now"]


def test_functions_keywords_and_labels_are_not_metric_names() -> None:
    refs = query_refs(
        'histogram_quantile(0.9, sum without (instance) (rate(a_bucket{le!="+Inf"}[5m])))'
        " > bool on (job) group_left (path) max by (job, path) (b offset 5m)"
        ' or label_replace(vector(1), "dst", "$1", "src", "(.*)")'
    )
    assert [s.name for s in refs.selectors] == ["a_bucket", "b"]
    assert refs.selectors[0].matchers == (("le", "!=", "+Inf"),)
    assert refs.groupings == [(("instance",), ("a_bucket",)), (("job", "path"), ("b",))]


def test_unknown_dashboard_variables_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown dashboard variables"):
        query_refs('sum(pingpod_claims_total{path="$path"})')
    with pytest.raises(ValueError, match=r"unclosed left parenthesis"):
        query_refs("sum(rate(pingpod_claims_total[5m])")
