"""Manifests a KubeRay user can apply as they are: the images they name are tags the bake file
builds, their Ray is the rayVersion, and the Serve config a RayService deploys fits its workers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_serve_haproxy.placement import Node, asks_of, problems

from .test_manifests import (
    APP_DOCKERFILE,
    CLUSTER_DOCS,
    PODS,
    Pod,
    cluster_spec,
    cpu_cores,
    dockerfile_instructions,
    pods_of,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BAKE = REPO / "docker-bake.hcl"
LOCK = REPO / "requirements" / "image.lock"
IMAGE_IN = REPO / "requirements" / "image.in"


def bake_variables(text: str) -> dict[str, str]:
    """`variable "X" { default = "v" }` -> {X: v}."""
    found = re.findall(r'variable\s+"(\w+)"\s*\{\s*default\s*=\s*"([^"]*)"\s*\}', text)
    return dict(found)


def bake_tags(text: str, target: str) -> list[str]:
    """The tags of a bake target with the variables' defaults filled in."""
    match = re.search(rf'^target\s+"{target}"\s*\{{', text, re.M)
    assert match, f'no target "{target}" in docker-bake.hcl'
    start = match.start()
    depth, end = 0, start
    for end in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    block = text[start : end + 1]
    match = re.search(r"tags\s*=\s*\[(.*?)\]", block, re.S)
    assert match, f'target "{target}" has no tags'
    variables = bake_variables(text)
    tags = re.findall(r'"([^"]*)"', match.group(1))
    return [re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], tag) for tag in tags]


BAKE_TEXT = BAKE.read_text()
DEFAULT_TAGS = bake_tags(BAKE_TEXT, "default")


def locked_ray() -> str:
    match = re.search(r"^ray==(\S+)", LOCK.read_text(), re.M)
    assert match, "requirements/image.lock pins no ray"
    return match.group(1)


def test_bake_file_parses_to_the_tags_it_prints() -> None:
    # What `docker buildx bake --print default` lists with no variables set (tests/build).
    variables = bake_variables(BAKE_TEXT)
    assert [
        f"{variables['IMAGE']}:{variables['TAG']}",
        f"{variables['IMAGE']}:ray{variables['RAY_VERSION']}-haproxy{variables['HAPROXY_VERSION']}",
    ] == DEFAULT_TAGS


def test_one_ray_version_everywhere() -> None:
    ray = locked_ray()
    assert f"ray[serve]=={ray}" in IMAGE_IN.read_text().splitlines()
    assert bake_variables(BAKE_TEXT)["RAY_VERSION"] == ray
    for name, doc in CLUSTER_DOCS:
        assert cluster_spec(doc)["rayVersion"] == ray, f"{name}: rayVersion"


def versioned_tag() -> str:
    """The bake default target's tag that names Ray's and HAProxy's versions."""
    (tag,) = [t for t in DEFAULT_TAGS if re.search(r":ray[\d.]+-haproxy[\d.]+$", t)]
    return tag


def ray_of_tag(tag: str) -> str:
    match = re.search(r":ray([\d.]+)-haproxy", tag)
    assert match, f"{tag} names no Ray version"
    return match.group(1)


@pytest.mark.parametrize("pod", [p for p in PODS if not p.is_rayservice], ids=str)
def test_raycluster_runs_the_versioned_bake_tag(pod: Pod) -> None:
    """Not `latest`: with imagePullPolicy IfNotPresent a node keeps whatever `latest` it has, and
    nothing ties `latest` to the rayVersion."""
    image = pod.ray["image"]
    assert image == versioned_tag(), f"{pod}: {image}; the bake file builds {DEFAULT_TAGS}"
    assert ray_of_tag(image) == locked_ray()


def test_application_image_builds_from_the_versioned_bake_tag() -> None:
    bases = [
        args.split("=", 1)[1]
        for keyword, args in dockerfile_instructions(APP_DOCKERFILE)
        if keyword == "ARG" and args.startswith("BASE=")
    ]
    assert bases == [versioned_tag()], f"app-image/Dockerfile BASE {bases}"


def kuberay_num_cpus(pod: Pod) -> float:
    """What KubeRay passes as --num-cpus: rayStartParams, else the container's CPU limit."""
    if "num-cpus" in pod.ray_start_params:
        return float(pod.ray_start_params["num-cpus"])
    resources: dict[str, Any] = pod.ray["resources"]
    return cpu_cores(resources.get("limits", resources.get("requests", {}))["cpu"])


@pytest.mark.parametrize(
    "name,doc", [d for d in CLUSTER_DOCS if d[1]["kind"] == "RayService"], ids=lambda x: str(x)
)
def test_rayservice_serve_config_fits_its_workers(name: str, doc: dict[str, Any]) -> None:
    """The placement check of the runtime on the RayService's own nodes: the head plus every
    worker group at `replicas`, and at `minReplicas` (what it may be scaled down to)."""
    asks = asks_of(yaml.safe_load(doc["spec"]["serveConfigV2"]))
    assert asks.deployments and not asks.unchecked, asks
    pods = pods_of(name, doc)
    groups = {g["groupName"]: g for g in cluster_spec(doc)["workerGroupSpecs"]}
    for count in ("replicas", "minReplicas"):
        nodes = [Node.of("head", {"CPU": kuberay_num_cpus(pods[0])})]
        for pod in pods[1:]:
            for index in range(int(groups[pod.group][count])):
                nodes.append(Node.of(f"{pod.group}-{index}", {"CPU": kuberay_num_cpus(pod)}))
        found = problems(asks, nodes)
        assert not found, f"{name} at {count}: " + "; ".join(map(str, found))
