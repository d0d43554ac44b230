"""The declared config's decision table and the differences its log lines name (pure logic;
serve-up's use of it against a stand-in Ray is in test_serve_up.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ray_serve_haproxy.declared_config import (
    Reason,
    Record,
    RecordState,
    canonical,
    decide,
    deploy_report,
    diff_apps,
    differences,
    fingerprint,
    option_warning,
)

pytestmark = pytest.mark.unit


def app(name: str, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "route_prefix": f"/{name}",
        "import_path": f"demo_app:{name}_app",
        "deployments": [{"name": name.title(), "num_replicas": replicas}],
        **extra,
    }


DECLARED = {
    "http_options": {"host": "0.0.0.0", "port": 8000},
    "applications": [app("hello"), app("echo")],
}


def served(config: dict[str, Any]) -> dict[str, Any]:
    """What Serve reports for the config's applications: the same, spelled out further."""
    live = {}
    for application in config["applications"]:
        spelled = copy.deepcopy(application)
        spelled["runtime_env"] = {}
        for deployment in spelled["deployments"]:
            deployment["max_ongoing_requests"] = 5
        live[application["name"]] = spelled
    return live


def record(config: dict[str, Any], state: RecordState = RecordState.APPLIED) -> Record:
    return Record(config, state, "/etc/serve.yaml", "2026-12-07T04:00:00Z")


def changed() -> dict[str, Any]:
    """DECLARED with a new app, echo's replicas changed and hello removed."""
    return {**DECLARED, "applications": [app("echo", replicas=3), app("new")]}


@pytest.mark.parametrize(
    ("declared", "on_record", "live", "force", "deploy", "reason"),
    [
        # No config declared: Serve's applications are the API's business.
        (None, None, {}, False, False, Reason.NO_CONFIG),
        (None, record(DECLARED), served(DECLARED), True, False, Reason.NO_CONFIG),
        # A new cluster.
        (DECLARED, None, {}, False, True, Reason.NEW_CLUSTER),
        # A cluster an older image started (no record): what runs decides.
        (DECLARED, None, served(DECLARED), False, False, Reason.NO_RECORD_MATCHES),
        (DECLARED, None, served(changed()), False, True, Reason.NO_RECORD_DIFFERS),
        # A head restart with the same file: nothing deployed, whatever the API did since.
        (DECLARED, record(DECLARED), served(DECLARED), False, False, Reason.UNCHANGED),
        (DECLARED, record(DECLARED), served(changed()), False, False, Reason.UNCHANGED),
        # ... unless Serve runs nothing, or that file's deploy was never seen RUNNING.
        (DECLARED, record(DECLARED), {}, False, True, Reason.NOTHING_RUNS),
        (
            DECLARED,
            record(DECLARED, RecordState.SUBMITTED),
            served(DECLARED),
            False,
            True,
            Reason.NOT_CONFIRMED,
        ),
        # A changed file wins, whatever runs.
        (changed(), record(DECLARED), served(DECLARED), False, True, Reason.CHANGED),
        (changed(), record(DECLARED), served(changed()), False, True, Reason.CHANGED),
        (DECLARED, record(DECLARED), served(DECLARED), True, True, Reason.FORCED),
    ],
)
def test_decision_table(
    declared: dict[str, Any] | None,
    on_record: Record | None,
    live: dict[str, Any],
    force: bool,
    deploy: bool,
    reason: Reason,
) -> None:
    decision = decide(declared, on_record, live, force=force)
    assert (decision.deploy, decision.reason) == (deploy, reason)


def test_the_order_of_keys_is_no_change() -> None:
    reordered = {
        "applications": [dict(reversed(list(a.items()))) for a in DECLARED["applications"]]
    }
    reordered["http_options"] = {"port": 8000, "host": "0.0.0.0"}
    assert canonical(reordered) == canonical(DECLARED)
    assert fingerprint(reordered) == fingerprint(DECLARED)
    assert decide(reordered, record(DECLARED), served(DECLARED)).reason == Reason.UNCHANGED


def test_a_changed_option_is_a_change_and_is_warned_about() -> None:
    other = {**DECLARED, "http_options": {**DECLARED["http_options"], "request_timeout_s": 5}}
    assert decide(other, record(DECLARED), served(DECLARED)).reason == Reason.CHANGED
    warning = option_warning(record(DECLARED), other)
    assert warning is not None and "http_options changed" in warning
    assert option_warning(record(DECLARED), changed()) is None
    assert option_warning(None, other) is None


def test_differences_name_the_setting_and_both_values() -> None:
    old, new = app("echo"), app("echo", replicas=3, runtime_env={"env_vars": {"A": "1"}})
    assert differences(old, new) == [
        "deployments.Echo.num_replicas: 2 -> 3",
        'runtime_env: unset -> {"env_vars": {"A": "1"}}',
    ]
    # Against what Serve reports, only what the file sets counts.
    assert differences(served(DECLARED)["echo"], app("echo"), declared_only=True) == []
    assert differences(served(DECLARED)["echo"], app("echo", 1), declared_only=True) == [
        "deployments.Echo.num_replicas: 2 -> 1"
    ]


def test_diff_apps_describes_adds_changes_removes_keeps() -> None:
    diff = diff_apps(
        served(DECLARED), {a["name"]: a for a in changed()["applications"]}, declared_only=True
    )
    assert diff.differs
    assert diff.describe() == (
        "adds new; changes echo (deployments.Echo.num_replicas: 2 -> 3); removes hello"
    )
    same = diff_apps(
        served(DECLARED), {a["name"]: a for a in DECLARED["applications"]}, declared_only=True
    )
    assert not same.differs and same.describe() == "keeps echo, hello"
    # An application Serve reports no config for (serve.run) counts as changed.
    assert diff_apps({"hello": None}, {"hello": app("hello")}).changed == {
        "hello": ["no deployed config to compare"]
    }


def test_deploy_report_names_the_files_change_and_what_the_api_did() -> None:
    live = served(DECLARED)
    live["api-app"] = app("api-app")  # deployed through Serve's API since
    live["hello"]["deployments"][0]["num_replicas"] = 4  # scaled through the API
    lines = deploy_report(changed(), record(DECLARED), live)
    assert lines == [
        "the file changed since it was applied (2026-12-07T04:00:00Z): adds new; changes echo "
        "(deployments.Echo.num_replicas: 2 -> 3); removes hello",
        "deploying it over what Serve runs: adds new; changes echo "
        "(deployments.Echo.num_replicas: 2 -> 3); removes api-app, hello",
        "this replaces what was changed through Serve's API since: api-app (added through the "
        "API), hello (changed through the API)",
    ]
    # A new cluster: one line, everything added.
    assert deploy_report(DECLARED, None, {}) == [
        "deploying it over what Serve runs: adds echo, hello"
    ]


def test_record_round_trip_and_garbage() -> None:
    written = record(DECLARED, RecordState.SUBMITTED)
    assert Record.from_json(written.to_json()) == written
    assert Record.from_json(written.to_json().encode()).with_state(RecordState.APPLIED).state == (
        RecordState.APPLIED
    )
    for garbage in ("{}", '{"format": 99, "config": {}}', '{"format": 1, "config": 3}', "[]"):
        with pytest.raises(ValueError):
            Record.from_json(garbage)
