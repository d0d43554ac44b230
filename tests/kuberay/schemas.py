"""Validates Kubernetes manifests against the schemas the API server enforces, offline.

Every YAML document is dispatched by apiVersion and kind:
- `ray.io/v1` RayCluster and RayService: the `openAPIV3Schema` of KubeRay v1.7.0's CRDs
  (crds/, checked against crds/SHA256SUMS), with every object closed the way the API server's
  strict field validation (`kubectl apply`'s default) closes it: a field the schema does not
  declare is an error unless the object says `x-kubernetes-preserve-unknown-fields` or has an
  `additionalProperties` schema. The CRD leaves the top-level `metadata` open: it gets
  Kubernetes' ObjectMeta, as on the server. Their CEL rules (`x-kubernetes-validations`) are
  evaluated where they are simple (`self in [...]`), skipped where they are transition rules
  (`self == oldSelf`, update only), and listed as not evaluated otherwise.
- `monitoring.coreos.com/v1` ServiceMonitor: a closed subset of the prometheus-operator CRD,
  written here (SERVICE_MONITOR below) for the fields the manifests use; a field outside it is an
  error until it is added here.
- `monitoring.coreos.com/v1` PrometheusRule: the same, PROMETHEUS_RULE below.
- everything else (Service, NetworkPolicy, Secret, ConfigMap, PVC, Deployment, StatefulSet, ...):
  Kubernetes' own JSON schemas in their strict form, as the `kubernetes-validate` package ships
  them, for each version in KUBERNETES_VERSIONS.
A kind with no schema is itself an error, so a new kind in a manifest cannot go unchecked.

Run it on files: `.cache/dev-venv/bin/python tests/kuberay/schemas.py examples/kuberay/*.yaml`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRDS = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("ray.io_rayclusters.yaml", "ray.io_rayservices.yaml")
# Kubernetes releases whose built-in schemas the other objects must satisfy: an old one still in
# wide use and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")
DEFINITIONS_ID = "/api/_definitions.json"
OBJECT_META = {"$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
LABEL_SELECTOR = {
    "$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
}

# --------------------------------------------------------------------------------------------
# The ServiceMonitor subset (monitoring.coreos.com/v1, prometheus-operator's API reference).

_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_RELABEL_ACTIONS = [
    "replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase",
    "uppercase", "keepequal", "dropequal",
]  # fmt: skip
_RELABEL_CONFIG = {
    "type": "object",
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {"enum": _RELABEL_ACTIONS + [a.capitalize() for a in _RELABEL_ACTIONS]},
    },
}
SERVICE_MONITOR: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["selector"],
            "properties": {
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object"},
                "namespaceSelector": {
                    "type": "object",
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "sampleLimit": {"type": "integer", "minimum": 0},
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "params": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                            },
                            "interval": {"type": "string", "pattern": _DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "followRedirects": {"type": "boolean"},
                            "enableHttp2": {"type": "boolean"},
                            "filterRunning": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": _RELABEL_CONFIG},
                            "metricRelabelings": {"type": "array", "items": _RELABEL_CONFIG},
                        },
                    },
                },
            },
        },
    },
}


# The PrometheusRule subset (monitoring.coreos.com/v1, prometheus-operator's API reference):
# what prometheusrule.yaml uses, closed like the ServiceMonitor's. No schema source for the CRD
# is reachable here; `promtool check rules` on the same groups (tests/unit) covers the PromQL.
_RULE = {
    "type": "object",
    "required": ["expr"],  # and `record` or `alert`: promtool checks that (tests/unit)
    "properties": {
        "record": {"type": "string", "minLength": 1},
        "alert": {"type": "string", "minLength": 1},
        "expr": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]},
        "for": {"type": "string", "pattern": _DURATION},
        "keep_firing_for": {"type": "string", "pattern": _DURATION},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
PROMETHEUS_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": _DURATION},
                            "limit": {"type": "integer", "minimum": 0},
                            "rules": {"type": "array", "items": _RULE},
                        },
                    },
                },
            },
        },
    },
}


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SchemaError:
    path: str  # e.g. spec.headGroupSpec.template.spec.containers[0].readinesProbe
    message: str
    schema: str  # which schema said so

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.message} [{self.schema}]"


@dataclass
class Result:
    """One document's errors, and the CEL rules that were not (or could not be) evaluated."""

    where: str  # "file: Kind/name"
    errors: list[SchemaError] = field(default_factory=list)
    cel_not_evaluated: list[str] = field(default_factory=list)
    cel_evaluated: int = 0


# --------------------------------------------------------------------------------------------
# Schemas


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned_sums() -> dict[str, str]:
    sums = {}
    for line in (CRDS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name.lstrip("*")] = digest
    return sums


def close(schema: Any, strict_root: bool = True) -> Any:
    """A copy of an OpenAPI v3 schema as strict field validation applies it: objects without
    x-kubernetes-preserve-unknown-fields or an additionalProperties schema take no other fields;
    `nullable` becomes JSON Schema's null type."""
    if isinstance(schema, list):
        return [close(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: close(value) for key, value in schema.items()}
    is_object = out.get("type") == "object" or "properties" in out
    if (
        is_object
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the closed openAPIV3Schema of every served version of the CRDs."""
    schemas = {}
    for name in CRD_FILES:
        # libyaml's loader: the two CRDs are 2 MB of YAML (seconds instead of half a minute).
        crd = yaml.load((CRDS / name).read_text(), Loader=SAFE_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            schema = close(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = OBJECT_META  # what the server validates it with
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


@functools.cache
def _definitions(version: str) -> Any:
    return schema_contents(
        f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version
    )


def _registry(version: str) -> Registry:
    definitions = Resource.from_contents(_definitions(version))
    return Registry().with_resource(DEFINITIONS_ID, definitions)


def builtin_schema(api_version: str, kind: str, version: str) -> Any | None:
    """Kubernetes' strict JSON schema of a built-in kind, or None."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = f"kubernetes-json-schema/v{version}.0-local-strict/{kind.lower()}-{group_version}.json"
    try:
        return schema_contents(path, version)
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# Validation


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _errors(validator: Any, document: Any, schema_name: str) -> list[SchemaError]:
    found = []
    for error in validator.iter_errors(document):
        where = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - known):
                found.append(
                    SchemaError(_path([*where, extra]), f'unknown field "{extra}"', schema_name)
                )
            continue
        if error.validator == "type":
            wanted = error.validator_value
            got = type(error.instance).__name__
            message = f"must be of type {wanted}, got {got} {error.instance!r}"
        else:
            message = error.message
        found.append(SchemaError(_path(where), message, schema_name))
    return found


def _validator(schema: Any, version: str) -> Any:
    cls = jsonschema.validators.Draft202012Validator
    return cls(schema, registry=_registry(version))


def _cel_rules(
    schema: Any, instance: Any, path: list[Any]
) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(path, rule, value) of every CEL rule whose field is present in the instance."""
    if not isinstance(schema, dict):
        return
    for rule in schema.get("x-kubernetes-validations", []):
        yield _path(path), rule, instance
    if isinstance(instance, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in instance:
                yield from _cel_rules(sub, instance[key], [*path, key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in (schema.get("properties") or {}):
                    yield from _cel_rules(extra, value, [*path, key])
    elif isinstance(instance, list):
        for index, item in enumerate(instance):
            yield from _cel_rules(schema.get("items"), item, [*path, index])


_IN_LIST = re.compile(r"^self in \[((?:\s*'[^']*'\s*,?)*)\]$")


def evaluate_cel(schema: Any, document: Any, result: Result, schema_name: str) -> None:
    """The CEL rules this module can evaluate without a CEL engine; the others are listed."""
    for where, rule, value in _cel_rules(schema, document, []):
        text = rule["rule"].strip()
        if text == "self == oldSelf":
            continue  # a transition rule: it compares with the stored object, on update only
        match = _IN_LIST.match(text)
        if match:
            allowed = re.findall(r"'([^']*)'", match.group(1))
            result.cel_evaluated += 1
            if value not in allowed:
                message = rule.get("message") or f"failed rule: {text}"
                result.errors.append(SchemaError(where, message, f"{schema_name} (CEL)"))
            continue
        result.cel_not_evaluated.append(f"{where}: {text}")


def validate_document(document: Any, where: str) -> Result:
    result = Result(where)
    if not isinstance(document, dict):
        result.errors.append(SchemaError("", "not a mapping", "-"))
        return result
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        result.errors.append(SchemaError("", "apiVersion and kind are required", "-"))
        return result
    crd = crd_schemas().get((api_version, kind))
    if crd is not None:
        name = f"KubeRay v1.7.0 CRD {kind} {api_version}"
        result.errors += _errors(_validator(crd, KUBERNETES_VERSIONS[-1]), document, name)
        evaluate_cel(crd, document, result, name)
        return result
    if (api_version, kind) == ("monitoring.coreos.com/v1", "ServiceMonitor"):
        schema = close(SERVICE_MONITOR)
        schema["properties"]["metadata"] = OBJECT_META
        schema["properties"]["spec"]["properties"]["selector"] = LABEL_SELECTOR
        validator = _validator(schema, KUBERNETES_VERSIONS[-1])
        result.errors += _errors(validator, document, "ServiceMonitor subset (tests/kuberay)")
        return result
    if (api_version, kind) == ("monitoring.coreos.com/v1", "PrometheusRule"):
        schema = close(PROMETHEUS_RULE)
        schema["properties"]["metadata"] = OBJECT_META
        validator = _validator(schema, KUBERNETES_VERSIONS[-1])
        result.errors += _errors(validator, document, "PrometheusRule subset (tests/kuberay)")
        return result
    for version in KUBERNETES_VERSIONS:
        schema = builtin_schema(api_version, kind, version)
        if schema is None:
            result.errors.append(
                SchemaError("", f"no schema for {api_version} {kind} in Kubernetes {version}", "-")
            )
            continue
        name = f"Kubernetes {version} {kind} {api_version}"
        result.errors += _errors(_validator(schema, version), document, name)
    return result


def document_name(document: Any) -> str:
    if not isinstance(document, Mapping):
        return "?"
    metadata = document.get("metadata") or {}
    name = metadata.get("name", "?") if isinstance(metadata, Mapping) else "?"
    return f"{document.get('kind', '?')}/{name}"


def validate_text(text: str, source: str) -> list[Result]:
    """Every document of a YAML stream (anchors resolved, as kubectl reads it)."""
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    return [validate_document(d, f"{source}: {document_name(d)}") for d in documents]


def validate_file(path: Path) -> list[Result]:
    return validate_text(path.read_text(), path.name)


def main(paths: list[str]) -> int:
    failed = 0
    for path in paths:
        for result in validate_file(Path(path)):
            status = "FAIL" if result.errors else "OK"
            print(f"{status:4}  {result.where} (CEL rules evaluated: {result.cel_evaluated})")
            for error in result.errors:
                print(f"      {error}")
            for rule in result.cel_not_evaluated:
                print(f"      CEL rule not evaluated: {rule}")
            failed += bool(result.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
