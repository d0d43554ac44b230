"""Differential test: the corpus (corpus.py) through HAProxy mode and through Ray's Python
proxy on the same compose cluster; the report it writes (docs/switching/differences.json and
.md); the committed expectations (expectations.yaml) it must match; and what the runtime says
about applications that rely on something HAProxy mode drops.

    bash scripts/test.sh -m differential -s      # about 4 minutes of exclusive machine time
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from integration.cluster import note

from . import corpus, report
from .compare import MODES, check, classify, load_expectations, report_data

pytestmark = [pytest.mark.integration, pytest.mark.differential]


@pytest.fixture(scope="module")
def results(differential: dict[str, Any]) -> list[Any]:
    cases = [(c.name, c.group, c.sends) for c in corpus.CASES]
    return classify(cases, differential["observations"], load_expectations())


def test_every_case_answered_in_both_modes(differential: dict[str, Any]) -> None:
    for mode in MODES:
        observed = differential["observations"][mode]
        missing = [c.name for c in corpus.CASES if c.name not in observed]
        assert not missing, f"{mode}: no observation for {missing}"
    # Cases that reached nothing would compare equal: the corpus must exercise the apps. The
    # Python proxy is the reference: there each of these does what the case is about.
    reference = differential["observations"]["python_proxy"]
    musts = {
        "method_post": lambda o: o["body"]["body_bytes"] == 10 and o["body"]["method"] == "POST",
        "upload_10mb": lambda o: o["body"] == {"body_bytes": 10485760, "sha256_matches": True},
        "download_10mb": lambda o: o["body"] == {"bytes": 10485760, "matches": True},
        "upload_chunked": lambda o: o["body"]["sha256_matches"] is True,
        "expect_100_continue": lambda o: o["status"] == 200 and o["body"]["body_bytes"] == 65536,
        "http10_get": lambda o: o["status"] == 200,
        "stream_lines": lambda o: o["lines"] == [f"line {i}" for i in range(1, 6)],
        "websocket_echo": lambda o: o["status"] == 101 and len(o["messages"]) == 2,
        "request_id_given": lambda o: o["app_request_id"] == "<sent>",
        "request_timeout": lambda o: o["status"] == 408,
        "client_disconnect": lambda o: o["handler"] in ("cancelled", "completed"),
        "multiplexing_ingress": lambda o: o["replicas_serving_the_model"] == 1,
        "grpc_unary": lambda o: o["code"] == "OK",
        "grpc_server_streaming": lambda o: len(o["messages"]) == 4,
        "root_app_root": lambda o: o["body"]["app"] == "root",
        "route_longest_prefix": lambda o: o["body"]["app"] == "v1",
    }
    failed = {}
    for name, holds in musts.items():
        try:
            ok = holds(reference[name])
        except (KeyError, TypeError) as exc:
            ok, reference[name]["check_error"] = False, repr(exc)
        if not ok:
            failed[name] = reference[name]
    assert not failed, f"the corpus did not exercise the apps: {json.dumps(failed)[:3000]}"


def test_report_is_written(differential: dict[str, Any], results: list[Any]) -> None:
    data = report_data(results, differential["versions"])
    report.REPORT_DIR.mkdir(parents=True, exist_ok=True)
    report.REPORT_JSON.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    report.write_report(data)
    summary = data["summary"]
    note(
        f"[diff] {summary['cases']} cases: {summary['same']} same, {summary['expected']} "
        f"expected, {summary['defect']} defect(s); written to {report.REPORT_JSON}"
    )
    for r in results:
        if r.differs:
            print(f"  {r.klass:<12} {r.name}: {', '.join(r.differs)}")
    if not report.GUIDE_MD.exists() or report.GUIDE_MD.read_text() != report.render_guide(data):
        print(
            f"NOTE: {report.GUIDE_MD} no longer matches the report: run "
            "`python tests/differential/report.py --write`"
        )


def test_differences_match_the_expectations(results: list[Any]) -> None:
    """Fails when a case changes class: a new difference, a known one gone, or one that now
    differs in other fields (e.g. after a Ray upgrade). Update expectations.yaml, rerun."""
    problems = check(results, load_expectations())
    assert not problems, "the differences changed:\n" + "\n".join(problems)


def test_check_and_startup_log_name_the_multiplexed_ingress(differential: dict[str, Any]) -> None:
    """In HAProxy mode, `check` and serve-up (the head's start-up program) with the corpus as
    RSH_SERVE_CONFIG name `mux` (multiplexed ingress), not `muxhandle` (models behind a
    handle); with the Python proxy, which routes by model id, neither warns."""
    runtime = differential["runtime"]
    check_out = runtime["haproxy"]["check"]
    assert "WARN  RSH_SERVE_CONFIG application 'mux'" in check_out, check_out
    # 'muxhandle' may be named for a reason of its own (its graceful shutdown), never this one.
    assert "ray-project/ray#65976" in check_out, check_out
    assert "RSH_SERVE_CONFIG application 'muxhandle'" not in check_out, check_out
    startup = runtime["haproxy"]["serve-up"]
    assert "serve-up: WARNING: application 'mux' relies on model multiplexing" in startup, startup
    assert startup.index("WARNING") < startup.index("starting Serve"), startup
    assert "application 'muxhandle' relies on" not in startup, startup
    for output in runtime["python_proxy"].values():
        assert "RSH_SERVE_CONFIG application 'mux'" not in output, output
        assert "relies on model multiplexing" not in output, output
        assert "ray-project/ray#65976" not in output, output


def test_tune_bufsize_lifts_the_header_limits(differential: dict[str, Any]) -> None:
    """The requests and responses with large headers that HAProxy refuses with its default
    buffer pass through a worker's HAProxy run with RAY_SERVE_HAPROXY_TUNE_BUFSIZE=65536, as
    they pass through the Python proxy."""
    head = differential["observations"]["haproxy"]
    fixed = differential["with_setting"]["haproxy"]
    reference = differential["observations"]["python_proxy"]
    for name in corpus.BUFSIZE_CASES:
        assert head[name]["status"] in (400, 500), (name, head[name])
        assert fixed[name]["status"] == 200, (name, fixed[name])
        for field in ("status", "app_saw_bytes", "x-big_bytes", "body"):
            if field in reference[name]:
                assert fixed[name].get(field) == reference[name][field], (name, field)
    note(
        "[diff] RAY_SERVE_HAPROXY_TUNE_BUFSIZE=65536: "
        + ", ".join(
            f"{n} {head[n]['status']} -> {fixed[n]['status']}" for n in corpus.BUFSIZE_CASES
        )
    )
