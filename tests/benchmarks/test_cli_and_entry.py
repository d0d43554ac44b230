"""The command line (arguments, --render-only), the console summary, and the entry tier of the
high-availability cluster as a path: measured where compose has an `entry` service, scored like
HAProxy on the head, and valid against the results schema."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from benchmarks.cli import main, parse_args
from benchmarks.compose_cluster import phase_override
from benchmarks.console import print_summary
from benchmarks.paths import PATHS, target_for
from benchmarks.phases import build_phases, parse_log_modes
from benchmarks.scoring import analyze

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "benchmarks" / "results.schema.json").read_text())
RECORDED = DATA / "results_haproxy_python_c1_c64.json"
SCORES = ("cpu", "latency_added", "ratios", "grpc_ratios", "targets")


def phases(entry: bool) -> list[Any]:
    return build_phases(
        ["haproxy", "python", "logmodes"],
        levels=[1, 64],
        grpc_levels=[64],
        variant_nbthread=0,
        log_modes=parse_log_modes("off:0"),
        log_mode_levels=[64],
        extra_env={},
        entry=entry,
    )


def test_arguments() -> None:
    args = parse_args(["--levels", "1,64", "--grpc-levels", "64,256", "--env", "A=b=c"])
    assert args.levels == [1, 64] and args.grpc_levels == [64]  # only levels that are run
    assert args.env == {"A": "b=c"}
    assert args.log_mode_levels == [args.target_level] == [64]
    assert parse_args(["--grpc-levels", ""]).grpc_levels == []
    for bad in (["--env", "NOEQUALS"], ["--log-modes", "loud:1"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(bad)
        assert exc.value.code == 2


def test_render_only_redraws_beside_the_file_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_ = tmp_path / "run.json"
    shutil.copy(RECORDED, copy_)
    assert main(["--render-only", str(copy_)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"run.json", "run.md", "run.png"}
    out = capsys.readouterr().out
    assert "CPU per request, us (entry node + dockerd + containerd + containerd_shim" in out
    assert re.search(r"HAProxy mode \(:8000\), access log all, metrics on +c=64 +237 \+ ", out)
    assert "latency added at c=1" in out
    assert "[   met] p50 added by HAProxy at c=1 (minus direct), ms: 0.323" in out
    assert "[   n/a]" in out and ": None " not in out  # goals without their phase
    assert json.loads(copy_.read_text())["cpu"] == json.loads(RECORDED.read_text())["cpu"]


def test_the_entry_tier_is_measured_only_where_compose_has_it() -> None:
    without, with_entry = phases(False), phases(True)
    assert [p.services for p in without] == [["head", "worker", "loadgen"]] * 3
    haproxy = with_entry[0]
    assert haproxy.paths == [
        "haproxy",
        "direct",
        "grpc_haproxy",
        "grpc_direct",
        "entry",
        "grpc_entry",
    ]
    assert haproxy.services == ["head", "worker", "loadgen", "entry"]
    # Python proxy and log-mode clusters run without it.
    assert [p.services for p in with_entry[1:]] == [["head", "worker", "loadgen"]] * 2
    assert PATHS["entry"].entry == "entry"
    assert target_for(PATHS["entry"], {}).url == "http://entry:8000/bench"
    assert target_for(PATHS["grpc_entry"], {}).url.startswith("http://entry:9000/")


def test_phase_override_sets_the_environment_and_unpublishes_the_entry() -> None:
    phase = phases(True)[0]
    doc = yaml.safe_load(phase_override(phase, has_entry=False))
    assert doc == {
        "services": {"head": {"environment": phase.env}, "worker": {"environment": phase.env}}
    }
    text = phase_override(phase, has_entry=True)
    assert "  entry:\n    ports: !reset []\n" in text  # compose's tag: no host ports at all
    doc = yaml.load(text, Loader=_ResetLoader)
    assert doc["services"]["entry"] == {"ports": "reset"}


class _ResetLoader(yaml.SafeLoader):
    pass


_ResetLoader.add_constructor("!reset", lambda loader, node: "reset")


def with_entry(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recorded run as if the entry tier had been measured on the haproxy cluster: its
    cells are the head's HAProxy cells, its CPU windows charged to an `entry` container."""
    data = copy.deepcopy(recorded)
    for key in SCORES:
        del data[key]
    for path, source in (("entry", "haproxy"), ("grpc_entry", "grpc_haproxy")):
        cells = copy.deepcopy(data["results"][source])
        for cell in cells.values():
            for r in cell["rounds"]:
                if r.get("cpu"):
                    r["cpu"]["containers_ms"]["entry"] = r["cpu"]["containers_ms"]["head"] / 2
        data["results"][path] = cells
        data["paths"][path] = {
            **data["paths"][source],
            "path": path,
            "label": PATHS[path].label,
            "entry": "entry",
        }
    analyze(data)
    return data


def test_the_entry_tier_is_scored_like_haproxy(capsys: pytest.CaptureFixture[str]) -> None:
    recorded = json.loads(RECORDED.read_text())
    data = with_entry(recorded)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    head, entry = data["cpu"]["haproxy"]["64"], data["cpu"]["entry"]["64"]
    assert entry["entry"] == ["entry"]
    assert entry["entry_us"]["median"] == pytest.approx(head["entry_us"]["median"] / 2, abs=1)
    row = data["ratios"]["64"]
    assert row["entry_over_python_rps"] == row["haproxy_over_python_rps"]
    assert data["grpc_ratios"]["64"]["entry_over_direct_p99"] is not None
    assert data["latency_added"]["entry"]["vs"] == "direct"
    goals = [t["target"] for t in data["targets"]]
    assert any(g.startswith("p50 added by the entry tier") for g in goals)
    assert any(g.startswith("errors through grpc_entry") for g in goals)
    # Without an entry tier nothing about it appears.
    plain = copy.deepcopy(recorded)
    analyze(plain)
    assert "entry_over_python_rps" not in plain["ratios"]["64"]
    assert not any("entry tier" in t["target"] for t in plain["targets"])
    print_summary(data)
    out = capsys.readouterr().out
    assert "Entry / Python req/s" in out and "gRPC Entry / direct p99" in out
