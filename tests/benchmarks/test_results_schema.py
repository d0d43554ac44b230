"""The results document: a recorded real run validates against benchmarks/results.schema.json,
and scoring it again from its rounds gives what it holds; markdown and chart render from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from benchmarks.outputs import write_outputs
from benchmarks.report_markdown import render_markdown
from benchmarks.scoring import analyze

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "benchmarks" / "results.schema.json").read_text())
RECORDED = DATA / "results_haproxy_python_c1_c64.json"


@pytest.fixture
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_recorded_run_validates(recorded: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(recorded)


def test_schema_catches_a_missing_score(recorded: dict[str, Any]) -> None:
    broken = copy.deepcopy(recorded)
    del broken["cpu"]["haproxy"]["64"]["total_us"]
    with pytest.raises(jsonschema.ValidationError, match="total_us"):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)
    broken = copy.deepcopy(recorded)
    broken["targets"][0]["met"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_scoring_again_gives_the_recorded_scores(recorded: dict[str, Any]) -> None:
    again = copy.deepcopy(recorded)
    for key in ("cpu", "latency_added", "ratios", "grpc_ratios", "targets"):
        del again[key]
    analyze(again)
    for key in ("cpu", "latency_added", "ratios", "grpc_ratios", "targets"):
        assert again[key] == recorded[key], key


def test_every_ratio_and_score_a_check_needs_is_there(recorded: dict[str, Any]) -> None:
    cpu = recorded["cpu"]
    haproxy, python = cpu["haproxy"]["64"], cpu["python_proxy"]["64"]
    parts = ("entry_us", "dockerd_us", "containerd_us", "containerd_shim_us")
    for c in (haproxy, python):
        assert c["total_us"]["median"] == pytest.approx(sum(c[p]["median"] for p in parts), abs=1)
    assert haproxy["entry"] == ["head"] and cpu["direct"]["64"]["entry"] == [
        "worker-1",
        "worker-2",
    ]
    # Where HAProxy's CPU goes: its own process and Serve's metrics parser on the head.
    assert {"haproxy", "ray::HAProxyManager"} <= set(haproxy["processes_us"])
    assert "ray::ProxyActor" in python["processes_us"]
    assert haproxy["total_us"]["median"] < python["total_us"]["median"]
    added = recorded["latency_added"]["haproxy"]
    assert added["vs"] == "direct" and added["p50_ms"] is not None
    assert set(recorded["ratios"]) == {"1", "64"}
    goals = {t["target"].split(" (")[0]: t for t in recorded["targets"]}
    assert any(t["met"] is not None for t in goals.values())


def test_markdown_and_chart(recorded: dict[str, Any], tmp_path: Path) -> None:
    text = render_markdown(recorded)
    assert "CPU per request" in text and "Latency added at concurrency 1" in text
    assert "| HAProxy mode (:8000), access log all, metrics on | 64 | head |" in text
    data = copy.deepcopy(recorded)
    data["name"] = "check"
    write_outputs(data, tmp_path)
    assert (tmp_path / "check.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "check.json").read_text())["cpu"] == recorded["cpu"]
