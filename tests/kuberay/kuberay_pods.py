"""What KubeRay 1.7.0 makes of the examples' pod templates: the Ray container's command, args,
env, probes and preStop hook, as the kubelet would then run them.

Each step names the function of ray-project/kuberay v1.7.0 it follows, all in
ray-operator/controllers/ray/common/pod.go unless said otherwise (constants from
ray-operator/controllers/ray/utils/constant.go). Only what the examples use is implemented; a
template that needs more (group `resources`/`labels`, accelerators, Redis GCS storage, TLS,
autoscaling) is refused rather than half-modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .test_manifests import Pod, cpu_cores, memory_bytes

NAMESPACE = "default"
CLUSTER_DOMAIN = "cluster.local"  # utils.GetClusterDomainName's default
DEFAULT_GCS_PORT = "6379"  # utils.DefaultGcsServerPort; GetHeadPort
DEFAULT_METRICS_PORT = "8080"  # utils.DefaultMetricsPort
DEFAULT_AGENT_LISTEN_PORT = "52365"  # utils.DefaultDashboardAgentListenPort
OVERWRITE_ANNOTATION = "ray.io/overwrite-container-cmd"  # RayOverwriteContainerCmdAnnotationKey
GCS_STORAGE_MOUNT_PATH = "/data/gcs"  # utils.GCSStorageMountPath
WORKER_GCS_RECONNECT_TIMEOUT_S = "600"  # utils.DefaultWorkerRayGcsReconnectTimeoutS
HEAD_GROUP_LABEL = "headgroup"  # utils.RayNodeHeadGroupLabelValue
KUBERAY_VERSION = "v1.7.0"  # utils.KUBERAY_VERSION
# Flags convertParamMap passes as `--flag=false` instead of dropping (specialParameterOptions).
EXPLICIT_BOOLEAN_FLAGS = ("log-color", "include-dashboard", "include-log-monitor")


@dataclass
class PodRun:
    """One pod as it would run: the Ray container only (the examples have no other)."""

    pod: Pod
    name: str  # the pod's name (KubeRay: generateName); the container's hostname here
    cluster: str  # RayCluster name (a RayService's: <service>-<suffix>)
    head_service: str  # <cluster>-head-svc, what workers resolve
    generated_command: str  # KUBERAY_GEN_RAY_START_CMD
    command: list[str] | None  # None: the image's entrypoint
    args: list[str] | None  # None: the image's CMD
    env: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)  # mount path -> what KubeRay mounts
    probes: dict[str, list[str]] = field(default_factory=dict)  # kind -> exec command
    pre_stop: list[str] = field(default_factory=list)
    grace_period_s: int = 30

    @property
    def role(self) -> str:
        return "head" if self.pod.is_head else "worker"


def head_service_fqdn(cluster: str) -> str:
    # utils.GenerateHeadServiceName (RayCluster/RayService: "<name>-head-svc") and
    # utils.GenerateFQDNServiceName ("<svc>.<namespace>.svc.<cluster domain>").
    return f"{cluster}-head-svc.{NAMESPACE}.svc.{CLUSTER_DOMAIN}"


def quantity_value(quantity: str | int) -> int:
    """resource.Quantity.Value(): the quantity rounded up to an integer (500m CPU -> 1)."""
    return math.ceil(cpu_cores(quantity))


def ray_start_params(pod: Pod, fqdn: str, head_port: str) -> dict[str, str]:
    """setMissingRayStartParams, then generateRayStartCommand's resource defaults."""
    group = pod.template  # group-level `resources` / `labels` would come first:
    assert "resources" not in group and "labels" not in group.get("spec", {}), (
        f"{pod}: updateRayStartParamsResources/Labels are not modelled"
    )
    params = {key: str(value) for key, value in pod.ray_start_params.items()}
    if pod.is_head:
        params.setdefault("dashboard-host", "0.0.0.0")
    else:
        params.setdefault("address", f"{fqdn}:{head_port}")
    params.setdefault("metrics-export-port", DEFAULT_METRICS_PORT)
    params["block"] = "true"
    params.setdefault("dashboard-agent-listen-port", DEFAULT_AGENT_LISTEN_PORT)
    # generateRayStartCommand: num-cpus from the CPU limit, else the request; memory from the
    # memory limit (bytes). addWellKnownAcceleratorResources: the examples ask for no GPU.
    resources = pod.ray.get("resources", {})
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    assert not [k for k in limits if k not in ("cpu", "memory")], f"{pod}: accelerators"
    if "num-cpus" not in params:
        cpu = limits.get("cpu") or requests.get("cpu")
        if cpu:
            params["num-cpus"] = str(quantity_value(cpu))
    if "memory" not in params and limits.get("memory"):
        params["memory"] = str(memory_bytes(limits["memory"]))
    return params


def convert_param_map(params: dict[str, str]) -> str:
    """convertParamMap: sorted keys; "true" -> ` --key `, "false" dropped (but for a few
    flags), anything else ` --key=value `."""
    flags = ""
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in EXPLICIT_BOOLEAN_FLAGS:
            if value.lower() == "true":
                flags += f" --{key} "
        else:
            flags += f" --{key}={value} "
    return flags


def generate_ray_start_command(pod: Pod, params: dict[str, str]) -> str:
    # generateRayStartCommand
    if pod.is_head:
        return f"ray start --head {convert_param_map(params)}"
    return f"ray start {convert_param_map(params)}"


def container_env(pod: Pod, secrets: dict[str, str]) -> dict[str, str]:
    """The template's env as the kubelet resolves it (value, resourceFieldRef, secretKeyRef)."""
    container = pod.ray
    env: dict[str, str] = {}
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = str(var["value"])
            continue
        source = var.get("valueFrom", {})
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, _ = ref["resource"].split(".")
            cores = cpu_cores(container["resources"][kind]["cpu"])
            env[name] = str(math.ceil(cores / cpu_cores(ref.get("divisor", "1"))))
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[name] = secrets[f"{ref['name']}/{ref['key']}"]
        else:
            raise AssertionError(f"{pod}: env {name}: {source} is not modelled")
    return env


def build(
    pod: Pod,
    *,
    cluster_spec: dict[str, Any],
    secrets: dict[str, str],
    cluster: str,
    pod_name: str,
) -> PodRun:
    """BuildPod over DefaultHeadPodTemplate / DefaultWorkerPodTemplate for one pod."""
    fqdn = head_service_fqdn(cluster)
    head_params = cluster_spec["headGroupSpec"].get("rayStartParams", {})
    head_port = str(head_params.get("port", DEFAULT_GCS_PORT))  # GetHeadPort
    assert not cluster_spec.get("enableInTreeAutoscaling"), f"{pod}: autoscaler not modelled"
    assert "tlsOptions" not in cluster_spec, f"{pod}: TLS not modelled"
    params = ray_start_params(pod, fqdn, head_port)
    generated = generate_ray_start_command(pod, params)
    ray = pod.ray
    spec = pod.template.get("spec", {})

    # BuildPod: the container keeps its command and args with the annotation (which
    # initTemplateAnnotations copies from the custom resource onto the template); else
    # `/bin/bash -c -- "ulimit ...; <generated>"` (utils.GetContainerCommand).
    template_notes = pod.template.get("metadata", {}).get("annotations", {})
    overwrite = (pod.annotations.get(OVERWRITE_ANNOTATION) or "").lower() == "true" or (
        template_notes.get(OVERWRITE_ANNOTATION) or ""
    ).lower() == "true"
    command: list[str] | None = list(ray["command"]) if "command" in ray else None
    args: list[str] | None = list(ray["args"]) if "args" in ray else None
    own = " ".join([*(command or []), *(args or [])])
    if not overwrite and "ray start" not in own:
        ulimit = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
        line = f"{ulimit}; {generated}"
        command, args = ["/bin/bash", "-c", "--"], [f"{own} && {line}" if own else line]

    env = container_env(pod, secrets)

    def add(name: str, value: str, *, if_missing: bool = True) -> None:
        # utils.EnvVarExists guards most injections; the kubelet lets a later duplicate win.
        if not (if_missing and name in env):
            env[name] = value

    volumes: dict[str, str] = {}
    # configureGCSFaultTolerance (embedded RocksDB: configureEmbeddedFT on the head).
    ft = cluster_spec.get("gcsFaultToleranceOptions")
    if ft:
        assert ft.get("backend") == "rocksdb", f"{pod}: only embedded GCS storage is modelled"
        if pod.is_head:
            add("RAY_gcs_storage", "rocksdb")
            add("RAY_gcs_storage_path", GCS_STORAGE_MOUNT_PATH)
            volumes[GCS_STORAGE_MOUNT_PATH] = "PersistentVolumeClaim <cluster>-gcs-storage"
        else:
            add("RAY_gcs_rpc_server_reconnect_timeout_s", WORKER_GCS_RECONNECT_TIMEOUT_S)
    # configureTokenAuth / SetContainerTokenAuthEnvVars (authOptions.mode token, a Secret).
    auth = cluster_spec.get("authOptions") or {}
    if auth.get("mode") == "token":
        add("RAY_AUTH_MODE", "token")
        secret = auth.get("secretName") or cluster
        add("RAY_AUTH_TOKEN", secrets[f"{secret}/auth_token"])
    # BuildPod / addEmptyDir: /dev/shm as a memory-backed emptyDir (no plasma-directory set).
    volumes["/dev/shm"] = "emptyDir medium Memory"
    # setContainerEnvVars
    ip = "127.0.0.1" if pod.is_head else fqdn  # utils.LOCAL_HOST for the head
    if not pod.is_head:
        add("FQ_RAY_IP", fqdn, if_missing=False)
        add("RAY_IP", fqdn.split(".")[0], if_missing=False)  # ExtractRayIPFromFQDN
    add("RAY_CLUSTER_NAME", cluster, if_missing=False)  # fieldRef labels['ray.io/cluster']
    add("RAY_CLUSTER_NAMESPACE", NAMESPACE, if_missing=False)  # fieldRef metadata.namespace
    add("RAY_CLOUD_INSTANCE_ID", pod_name, if_missing=False)  # fieldRef metadata.name
    group = HEAD_GROUP_LABEL if pod.is_head else pod.group  # labels['ray.io/group']
    add("RAY_NODE_TYPE_NAME", group, if_missing=False)
    add("KUBERAY_GEN_RAY_START_CMD", generated, if_missing=False)
    add("RAY_PORT", head_port)
    if pod.is_rayservice:
        add("RAY_TIMEOUT_MS_TASK_WAIT_FOR_DEATH_INFO", "0")
        add("RAY_GCS_SERVER_REQUEST_TIMEOUT_SECONDS", "5")
        add("RAY_SERVE_KV_TIMEOUT_S", "5")
    add("RAY_ADDRESS", f"{ip}:{head_port}")
    add("RAY_USAGE_STATS_KUBERAY_IN_USE", "1")
    if pod.is_head:
        crd = "RayService" if pod.is_rayservice else "RayCluster"
        add(
            "RAY_USAGE_STATS_EXTRA_TAGS",
            f"kuberay_version={KUBERAY_VERSION};kuberay_crd={crd}",
            if_missing=False,
        )
    add("RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1")

    # initLivenessAndReadinessProbe injects probes only where the template has none: the
    # examples set all three, so what runs is theirs (checked by the caller).
    probes = {
        kind: list(ray[kind]["exec"]["command"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if kind in ray
    }
    pre_stop = list(ray.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []))
    return PodRun(
        pod=pod,
        name=pod_name,
        cluster=cluster,
        head_service=fqdn.split(".")[0],
        generated_command=generated,
        command=command,
        args=args,
        env=env,
        volumes=volumes,
        probes=probes,
        pre_stop=pre_stop,
        grace_period_s=int(spec.get("terminationGracePeriodSeconds", 30)),
    )
