"""Every manifest under examples/kuberay/ against the schemas the API server enforces (schemas.py):
KubeRay v1.7.0's CRDs for RayCluster and RayService, Kubernetes' own for the rest. Copies with a
misspelled field and a wrong type prove that the validation bites, with the paths the API server
would name.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .schemas import (
    _IN_LIST,
    CRD_FILES,
    CRDS,
    _cel_rules,
    crd_schemas,
    pinned_sums,
    sha256,
    validate_document,
    validate_text,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((REPO / "examples" / "kuberay").glob("*.yaml"))
# KubeRay v1.7.0's release files, as the lead's offline copy lists them (../shared/kuberay-crds).
UPSTREAM_SHA256 = {
    "ray.io_rayclusters.yaml": "c44704442eef0c6721ad40c1d66782c8bd3fdab9d3344306a5820910a679baa1",
    "ray.io_rayservices.yaml": "0a8fc325e6e22b9231c1f282b309555e2ecf94227ca20a03df3d1d9a403907ab",
}
# Fields a typo is tried on first, and values whose type is changed first (the issue's examples).
MISSPELL_FIRST = ("readinessProbe", "record")  # record: a PrometheusRule's first rule
RETYPE_FIRST = ("terminationGracePeriodSeconds",)
# Fields Kubernetes types as int-or-string (ports, quantities): a wrong type cannot be planted.
INT_OR_STRING = ("port", "targetPort", "endPort", "cpu", "memory", "storage", "divisor")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


DOCUMENTS = [(path.name, doc) for path in MANIFESTS for doc in documents(path)]


def doc_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1].get('kind')}/{item[1].get('metadata', {}).get('name')}"


# --------------------------------------------------------------------------------------------
# The schemas themselves


def test_crd_copies_are_kuberay_v1_7_0_byte_for_byte() -> None:
    assert pinned_sums() == UPSTREAM_SHA256
    for name in CRD_FILES:
        assert sha256(CRDS / name) == UPSTREAM_SHA256[name], f"{name} is not the pinned file"
    kinds = sorted(kind for _, kind in crd_schemas())
    assert kinds == ["RayCluster", "RayCluster", "RayService", "RayService"]  # v1, v1alpha1


def test_every_cel_rule_of_the_crds_is_evaluated_or_a_transition_rule() -> None:
    """KubeRay v1.7.0's rules are `self in [...]` (evaluated here) and `self == oldSelf`
    (update-only). A release with other rules makes this fail, so they get looked at."""
    seen = []

    def walk(schema: Any) -> Iterator[str]:
        if isinstance(schema, dict):
            yield from (r["rule"] for r in schema.get("x-kubernetes-validations", []))
            for value in schema.values():
                yield from walk(value)
        elif isinstance(schema, list):
            for item in schema:
                yield from walk(item)

    for schema in crd_schemas().values():
        seen += list(walk(schema))
    assert seen, "the CRDs carry CEL rules; none found"
    others = [r for r in seen if r.strip() != "self == oldSelf" and not _IN_LIST.match(r.strip())]
    assert not others, f"CEL rules this validator does not evaluate: {others}"
    print(f"\n[kuberay] {len(seen)} CEL rules in the served CRD versions, all handled")


def test_fetch_script_checks_the_pinned_sums(tmp_path: Path) -> None:
    """The online path (pinned URL + sha256), pointed at a local mirror: the same files pass,
    a changed byte fails."""
    script = REPO / "scripts" / "fetch-kuberay-crds.sh"
    env = {**os.environ, "KUBERAY_CRD_BASE_URL": f"file://{CRDS}"}
    good = subprocess.run(
        ["bash", str(script), "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert good.returncode == 0, good.stderr
    assert "the copies in tests/kuberay/crds are the same files" in good.stdout
    for name in CRD_FILES:
        shutil.copy(CRDS / name, tmp_path / name)
    with (tmp_path / CRD_FILES[1]).open("a") as handle:
        handle.write("# changed\n")
    env["KUBERAY_CRD_BASE_URL"] = f"file://{tmp_path}"
    bad = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert f"{CRD_FILES[1]}: FAILED" in bad.stdout + bad.stderr


# --------------------------------------------------------------------------------------------
# The manifests


@pytest.mark.parametrize("name,doc", DOCUMENTS, ids=[doc_id(d) for d in DOCUMENTS])
def test_manifest_document_is_valid(name: str, doc: dict[str, Any]) -> None:
    result = validate_document(doc, f"{name}: {doc.get('kind')}")
    assert not result.errors, "\n".join(map(str, result.errors))
    assert not result.cel_not_evaluated, result.cel_not_evaluated


def _leaves(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield [*path, key], value
            yield from _leaves(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield [*path, index], value
            yield from _leaves(value, [*path, index])


def _text(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _get_parent(doc: Any, path: list[Any]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def misspelled(name: str) -> str:
    """readinessProbe -> readinesProbe: one letter of the first double dropped (else one
    from the middle)."""
    for i in range(1, len(name)):
        if name[i] == name[i - 1]:
            return name[:i] + name[i + 1 :]
    return name[: len(name) // 2] + name[len(name) // 2 + 1 :]


def break_document(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy with one misspelled field and one value of the wrong type, and their paths."""
    broken = copy.deepcopy(doc)
    leaves = list(_leaves(doc.get("spec"), ["spec"]))
    keys = [p for p, _ in leaves if isinstance(p[-1], str)]
    typo = next((p for p in keys if p[-1] in MISSPELL_FIRST), keys[0])

    def typed(path: list[Any]) -> bool:
        name = str(path[-1] if isinstance(path[-1], str) else path[-2])
        apart = path[: len(typo)] != typo  # not the misspelled field or inside it
        return apart and name not in INT_OR_STRING and "port" not in name.lower()

    integers = [p for p, v in leaves if isinstance(v, int) and not isinstance(v, bool)]
    strings = [p for p, v in leaves if isinstance(v, str) and typed(p)]
    retype = next((p for p in integers if p[-1] in RETYPE_FIRST), None)
    # An integer field given as a string, else a string given as a number.
    retype = retype or next((p for p in integers if typed(p)), None)
    retype = retype or (strings[0] if strings else None)
    assert retype is not None, f"{doc.get('kind')}: nothing to give a wrong type"
    parent = _get_parent(broken, retype)
    value = parent[retype[-1]]
    parent[retype[-1]] = str(value) if isinstance(value, int) else 42
    parent = _get_parent(broken, typo)
    parent[misspelled(typo[-1])] = parent.pop(typo[-1])
    return broken, [_text([*typo[:-1], misspelled(typo[-1])]), _text(retype)]


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_a_broken_copy_of_each_manifest_is_refused_with_the_paths(path: Path) -> None:
    """One typo and one wrong type in every document of a copy of the manifest: each is reported
    at its path, and nothing else is."""
    broken_docs, expected = [], []
    for doc in documents(path):
        broken, paths = break_document(doc)
        broken_docs.append(broken)
        expected += [(doc_id((path.name, doc)), p) for p in paths]
    copy_text = yaml.safe_dump_all(broken_docs, sort_keys=False)
    results = validate_text(copy_text, f"copy of {path.name}")
    reported = {
        (doc_id((path.name, doc)), error.path)
        for doc, result in zip(broken_docs, results, strict=True)
        for error in result.errors
        # A misspelled required field is also missing, as the API server says too.
        if not error.message.endswith("is a required property")
    }
    for item in expected:
        assert item in reported, f"not reported: {item}\nreported: {sorted(reported)}"
    assert reported == set(expected), f"unexpected: {sorted(reported - set(expected))}"
    print(f"\n[kuberay] copy of {path.name}: {len(expected)} planted errors, all reported")


def test_the_issues_examples_are_reported_with_the_api_servers_paths() -> None:
    doc = documents(REPO / "examples" / "kuberay" / "rayservice.yaml")[0]
    broken, paths = break_document(doc)
    assert paths == [
        "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0].readinesProbe",
        "spec.rayClusterConfig.headGroupSpec.template.spec.terminationGracePeriodSeconds",
    ]
    errors = {e.path: e.message for e in validate_document(broken, "rayservice").errors}
    assert errors[paths[0]] == 'unknown field "readinesProbe"'
    assert errors[paths[1]] == "must be of type integer, got str '90'"


def test_cel_rule_is_evaluated() -> None:
    doc = copy.deepcopy(documents(REPO / "examples" / "kuberay" / "raycluster.yaml")[0])
    doc["spec"]["managedBy"] = "someone-else"
    result = validate_document(doc, "raycluster")
    assert result.cel_evaluated == 1
    (error,) = result.errors
    assert error.path == "spec.managedBy"
    assert error.message.startswith("the managedBy field value must be either")
    doc["spec"]["managedBy"] = "ray.io/kuberay-operator"
    assert not validate_document(doc, "raycluster").errors
    rules = list(_cel_rules(crd_schemas()[("ray.io/v1", "RayCluster")], doc, []))
    # Only fields the manifest has: managedBy (its value list, immutability) and the GCS
    # fault-tolerance backend (immutability, a transition rule checked on update only).
    paths = [path for path, _, _ in rules]
    assert "spec.managedBy" in paths
    assert set(paths) <= {"spec.managedBy", "spec.gcsFaultToleranceOptions.backend"}


# Kinds other helpers add (a Secret for the auth token, a Redis for GCS fault tolerance with its
# PVC and ConfigMap): validated by dispatch alone, typos included.
OTHER_KINDS = """\
apiVersion: v1
kind: Secret
metadata: {name: ray-token}
type: Opaque
stringData: {token: abc}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: redis}
data: {redis.conf: "appendonly yes"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: redis}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
spec:
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
        - name: redis
          image: redis:7
          ports: [{containerPort: 6379}]
"""


def test_other_kinds_are_validated_by_dispatch() -> None:
    results = validate_text(OTHER_KINDS, "other kinds")
    assert [r.errors for r in results] == [[], [], [], []]
    broken = OTHER_KINDS.replace("accessModes:", "accesModes:").replace(
        "replicas: 1", 'replicas: "1"'
    )
    errors = [str(e) for r in validate_text(broken, "other kinds") for e in r.errors]
    assert (
        'spec.accesModes: unknown field "accesModes" [Kubernetes 1.30 PersistentVolumeClaim v1]'
        in errors
    )
    replicas = "spec.replicas: must be of type ['integer', 'null'], got str '1'"
    assert f"{replicas} [Kubernetes 1.37 Deployment apps/v1]" in errors


def test_a_kind_without_a_schema_is_an_error() -> None:
    (result,) = validate_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", "x"
    )
    assert [e.message for e in result.errors] == [
        "no schema for example.com/v1 Widget in Kubernetes 1.30",
        "no schema for example.com/v1 Widget in Kubernetes 1.37",
    ]
