"""Can a Serve config's replicas be placed on the nodes present? Pure logic, no Ray.

Serve leaves a replica that fits nowhere PENDING and its application DEPLOYING forever, without
saying why (a one-node `docker run` of a config with `max_replicas_per_node: 1` and two
replicas; a head with num-cpus 0 and no worker). This module names such a config: `check`
runs it against the node it would start, `serve-up` against the nodes of the running cluster.

What it knows: each deployment listed in the config (num_replicas, or the autoscaling start
count; max_replicas_per_node; ray_actor_options num_cpus, num_gpus, memory, resources) and
each node's total resources (Ray's `Resources` of `ray.nodes()`). What it does not: options
set only in the application's code (Serve's defaults are assumed: 1 replica, 1 CPU, and the
report says so), placement groups, and resources already taken by other actors.

A problem is reported only when it is certain on the nodes present: one deployment alone does
not fit, or all together ask for more of a resource than all nodes offer. A greedy packing that
fails while those hold is reported as "may not fit" (the scheduler may still find a packing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Ray schedules in fixed-point units of 1/10000 of a resource.
UNITS = 10_000
# Serve's defaults for what a config does not say (ray/serve/_private/config.py).
DEFAULT_NUM_REPLICAS = 1
DEFAULT_NUM_CPUS = 1.0
DEFAULT_AUTOSCALING_MIN_REPLICAS = 1
# Resources that describe a node rather than offer capacity to replicas.
IGNORED_RESOURCES = ("object_store_memory",)


def _units(amount: float) -> int:
    return round(amount * UNITS)


def _amount(units: int) -> str:
    value = units / UNITS
    return f"{value:g}"


def _resource_text(name: str, units: int) -> str:
    if name == "memory":
        return f"{units / UNITS / 2**20:.0f} MiB memory"
    return f"{_amount(units)} {name}"


def _resources_text(resources: Mapping[str, int]) -> str:
    # CPU always, even 0 (a head started with num-cpus 0 says so); the rest when offered.
    shown = [_resource_text(n, u) for n, u in sorted(resources.items()) if u > 0 or n == "CPU"]
    return ", ".join(shown) or "nothing"


@dataclass(frozen=True)
class Node:
    """What one node offers to replicas, in fixed-point units."""

    name: str
    resources: Mapping[str, int]

    @classmethod
    def of(cls, name: str, resources: Mapping[str, float]) -> Node:
        offered = {
            key: _units(float(value))
            for key, value in resources.items()
            if key not in IGNORED_RESOURCES and not key.startswith("node:")
        }
        return cls(name, offered)

    def __str__(self) -> str:
        return f"{self.name} ({_resources_text(self.resources)})"


@dataclass(frozen=True)
class Deployment:
    """The replicas one deployment asks for."""

    app: str
    name: str
    replicas: int
    ask: Mapping[str, int]  # per replica, fixed-point units
    max_per_node: int | None = None
    # What the config did not say and Serve's default was assumed for.
    assumed: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.app}/{self.name}"

    def describe(self) -> str:
        text = f"{self.replicas} replica(s) of {_resources_text(self.ask)}"
        if self.max_per_node is not None:
            text += f", at most {self.max_per_node} per node"
        if self.assumed:
            text += f" (assumed Serve's default {', '.join(self.assumed)})"
        return text

    def fits_on(self, node: Node) -> int:
        """How many replicas of this deployment one empty node holds."""
        counts = [
            node.resources.get(resource, 0) // units
            for resource, units in self.ask.items()
            if units > 0
        ]
        fit = min(counts) if counts else 10**9
        return fit if self.max_per_node is None else min(fit, self.max_per_node)


@dataclass(frozen=True)
class Problem:
    certain: bool
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class ConfigAsks:
    deployments: list[Deployment] = field(default_factory=list)
    # Parts of the config this module cannot judge (said in the report, never a problem).
    unchecked: list[str] = field(default_factory=list)


def _start_replicas(options: Mapping[str, Any], assumed: list[str]) -> int:
    autoscaling = options.get("autoscaling_config")
    num_replicas = options.get("num_replicas")
    if num_replicas == "auto" or isinstance(autoscaling, Mapping):
        config = autoscaling if isinstance(autoscaling, Mapping) else {}
        start = config.get("initial_replicas", config.get("min_replicas"))
        if start is None:
            assumed.append(f"min_replicas {DEFAULT_AUTOSCALING_MIN_REPLICAS}")
            return DEFAULT_AUTOSCALING_MIN_REPLICAS
        return int(start)
    if num_replicas is None:
        assumed.append(f"num_replicas {DEFAULT_NUM_REPLICAS}")
        return DEFAULT_NUM_REPLICAS
    return int(num_replicas)


def _ask(actor_options: Mapping[str, Any], assumed: list[str]) -> dict[str, int]:
    num_cpus = actor_options.get("num_cpus")
    if num_cpus is None:
        assumed.append(f"num_cpus {DEFAULT_NUM_CPUS:g}")
        num_cpus = DEFAULT_NUM_CPUS
    ask = {"CPU": _units(float(num_cpus))}
    if actor_options.get("num_gpus"):
        ask["GPU"] = _units(float(actor_options["num_gpus"]))
    if actor_options.get("memory"):
        ask["memory"] = _units(float(actor_options["memory"]))
    for name, amount in (actor_options.get("resources") or {}).items():
        ask[str(name)] = _units(float(amount))
    return ask


def asks_of(config: Mapping[str, Any]) -> ConfigAsks:
    """The replicas a Serve config (the YAML `serve deploy` takes) asks for."""
    found = ConfigAsks()
    for app in config.get("applications") or []:
        app_name = str(app.get("name", "default"))
        deployments = app.get("deployments") or []
        if not deployments:
            found.unchecked.append(f"{app_name}: no deployments listed (their code decides)")
        for options in deployments:
            label = f"{app_name}/{options.get('name', '?')}"
            if options.get("placement_group_bundles"):
                found.unchecked.append(f"{label}: placement group bundles are not checked")
                continue
            assumed: list[str] = []
            try:
                replicas = _start_replicas(options, assumed)
                ask = _ask(options.get("ray_actor_options") or {}, assumed)
                max_per_node = options.get("max_replicas_per_node")
                max_per_node = None if max_per_node is None else int(max_per_node)
            except (TypeError, ValueError, AttributeError) as exc:
                found.unchecked.append(f"{label}: cannot read its options ({exc})")
                continue
            found.deployments.append(
                Deployment(
                    app_name, str(options.get("name")), replicas, ask, max_per_node, tuple(assumed)
                )
            )
    return found


def nodes_of(ray_nodes: Iterable[Mapping[str, Any]]) -> list[Node]:
    """Alive nodes from `ray.nodes()`, named by address (the head marked)."""
    nodes = []
    for info in ray_nodes:
        if not info.get("Alive", False):
            continue
        resources = info.get("Resources") or {}
        name = str(info.get("NodeManagerAddress") or info.get("NodeID", "?")[:8])
        if "node:__internal_head__" in resources:
            name = f"head {name}"
        nodes.append(Node.of(name, resources))
    return nodes


def _nodes_text(nodes: Sequence[Node]) -> str:
    if not nodes:
        return "no node"
    return f"{len(nodes)} node(s): " + "; ".join(str(n) for n in nodes)


def _alone(deployment: Deployment, nodes: Sequence[Node]) -> Problem | None:
    capacity = sum(deployment.fits_on(node) for node in nodes)
    if capacity >= deployment.replicas:
        return None
    roomy = [node for node in nodes if deployment.fits_on(node) > 0]
    why = f"{deployment.label}: {deployment.describe()}; the nodes present hold {capacity}"
    if not roomy:
        why += " (no node has room for one replica)"
    elif deployment.max_per_node is not None and len(roomy) * deployment.max_per_node < (
        deployment.replicas
    ):
        needed = -(-deployment.replicas // deployment.max_per_node)
        why += f" (needs {needed} nodes with room for one; {len(roomy)} present)"
    return Problem(True, why)


def _totals(deployments: Sequence[Deployment], nodes: Sequence[Node]) -> list[Problem]:
    asked: dict[str, int] = {}
    for deployment in deployments:
        for resource, units in deployment.ask.items():
            asked[resource] = asked.get(resource, 0) + units * deployment.replicas
    problems = []
    for resource, units in sorted(asked.items()):
        offered = sum(node.resources.get(resource, 0) for node in nodes)
        if units > offered:
            problems.append(
                Problem(
                    True,
                    f"all replicas together ask for {_resource_text(resource, units)}; the nodes "
                    f"present offer {_resource_text(resource, offered)}",
                )
            )
    return problems


def _greedy_fails(deployments: Sequence[Deployment], nodes: Sequence[Node]) -> bool:
    """First-fit decreasing over every replica; True when some replica found no node."""
    free = [dict(node.resources) for node in nodes]
    placed = [dict.fromkeys(range(len(deployments)), 0) for _ in nodes]
    order = sorted(
        (i for i, d in enumerate(deployments) for _ in range(d.replicas)),
        key=lambda i: sorted(deployments[i].ask.values(), reverse=True),
        reverse=True,
    )
    for index in order:
        deployment = deployments[index]
        for n, room in enumerate(free):
            if deployment.max_per_node is not None and placed[n][index] >= deployment.max_per_node:
                continue
            if all(room.get(r, 0) >= u for r, u in deployment.ask.items()):
                for r, u in deployment.ask.items():
                    room[r] = room.get(r, 0) - u
                placed[n][index] += 1
                break
        else:
            return True
    return False


def problems(asks: ConfigAsks, nodes: Sequence[Node]) -> list[Problem]:
    """What keeps the config's replicas from being placed on `nodes` (empty: they fit)."""
    found = [p for d in asks.deployments if (p := _alone(d, nodes)) is not None]
    found += _totals(asks.deployments, nodes)
    if not found and _greedy_fails(asks.deployments, nodes):
        found.append(
            Problem(
                False,
                "every deployment fits alone and the totals do, but packing all replicas "
                "together failed: the config may not fit",
            )
        )
    return found


def report(asks: ConfigAsks, nodes: Sequence[Node], where: str = "on the nodes present") -> str:
    """One paragraph for logs: what cannot be placed, on which nodes, what was not checked."""
    found = problems(asks, nodes)
    if not found:
        text = f"the config's replicas fit {where} ({_nodes_text(nodes)})"
    else:
        certain = any(p.certain for p in found)
        verdict = "cannot be placed" if certain else "may not fit"
        text = f"the config {verdict} {where} ({_nodes_text(nodes)}): " + "; ".join(
            str(p) for p in found
        )
    if asks.unchecked:
        text += ". Not checked: " + "; ".join(asks.unchecked)
    return text
