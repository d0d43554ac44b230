"""Whether a Serve config's replicas can be placed on the nodes present (pure logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_serve_haproxy.placement import Node, asks_of, nodes_of, problems, report

pytestmark = pytest.mark.unit

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
DEMO_CONFIG = yaml.safe_load((DEMO / "serve_config.yaml").read_text())
ONE_NODE_CONFIG = yaml.safe_load((DEMO / "serve_config.one-node.yaml").read_text())

HEAD0 = Node.of("head", {"CPU": 0, "memory": 2e9})  # compose's head: num-cpus 0
WORKER = Node.of("worker", {"CPU": 2, "memory": 1e9})


def app(name: str, **deployment: Any) -> dict[str, Any]:
    return {"name": name, "deployments": [{"name": name.title(), **deployment}]}


def config(*apps: dict[str, Any]) -> dict[str, Any]:
    return {"applications": list(apps)}


def test_demo_fits_the_compose_cluster() -> None:
    assert problems(asks_of(DEMO_CONFIG), [HEAD0, WORKER, WORKER]) == []


def test_demo_on_one_worker_needs_a_second_node() -> None:
    found = problems(asks_of(DEMO_CONFIG), [HEAD0, WORKER])
    texts = [str(p) for p in found]
    assert all(p.certain for p in found)
    # Every app has max_replicas_per_node 1 and 2 replicas: each names the missing node; and
    # 2.5 CPU are asked in all.
    assert len(texts) == 4, texts
    assert texts[3] == "all replicas together ask for 2.7 CPU; the nodes present offer 2 CPU"
    assert texts[0] == (
        "hello/Hello: 2 replica(s) of 0.5 CPU, at most 1 per node; the nodes present hold 1 "
        "(needs 2 nodes with room for one; 1 present)"
    )


def test_nothing_fits_a_head_with_num_cpus_0_alone() -> None:
    text = report(asks_of(DEMO_CONFIG), [HEAD0])
    assert text.startswith(
        "the config cannot be placed on the nodes present (1 node(s): head (0 CPU, 1907 MiB"
    )
    assert "no node has room for one replica" in text
    assert "all replicas together ask for 2.7 CPU; the nodes present offer 0 CPU" in text


def test_the_demo_does_not_fit_one_node_and_the_one_node_demo_does() -> None:
    one_node = Node.of("head", {"CPU": 2})
    assert problems(asks_of(DEMO_CONFIG), [one_node])
    assert problems(asks_of(ONE_NODE_CONFIG), [one_node]) == []
    # Sized for a container limited to one CPU.
    assert problems(asks_of(ONE_NODE_CONFIG), [Node.of("head", {"CPU": 1})]) == []
    assert problems(asks_of(ONE_NODE_CONFIG), [Node.of("head", {"CPU": 0.9})])


def test_cpu_fractions_are_exact() -> None:
    # 10 x 0.1 CPU is exactly 1 CPU, as in Ray's fixed-point accounting.
    asks = asks_of(config(app("a", num_replicas=10, ray_actor_options={"num_cpus": 0.1})))
    assert problems(asks, [Node.of("n", {"CPU": 1})]) == []


def test_serve_defaults_are_assumed_and_said() -> None:
    asks = asks_of(config(app("a")))
    (deployment,) = asks.deployments
    assert deployment.replicas == 1 and deployment.ask == {"CPU": 10_000}
    assert deployment.assumed == ("num_replicas 1", "num_cpus 1")
    text = report(asks, [HEAD0])
    assert "assumed Serve's default num_replicas 1, num_cpus 1" in text


def test_autoscaling_starts_at_initial_or_min_replicas() -> None:
    base = {"ray_actor_options": {"num_cpus": 1}}
    cases = [
        ({"autoscaling_config": {"min_replicas": 2, "max_replicas": 9}}, 2),
        ({"autoscaling_config": {"min_replicas": 1, "initial_replicas": 3}}, 3),
        ({"num_replicas": "auto"}, 1),
    ]
    for options, replicas in cases:
        (deployment,) = asks_of(config(app("a", **base, **options))).deployments
        assert deployment.replicas == replicas, options


def test_gpus_memory_and_custom_resources() -> None:
    options = {"num_cpus": 0, "num_gpus": 1, "memory": 2**30, "resources": {"ssd": 1}}
    asks = asks_of(config(app("a", ray_actor_options=options)))
    assert problems(asks, [Node.of("n", {"CPU": 4, "GPU": 1, "memory": 2**31, "ssd": 1})]) == []
    text = report(asks, [Node.of("n", {"CPU": 4, "memory": 2**29})])
    assert "no node has room for one replica" in text
    assert "ask for 1 GPU; the nodes present offer 0 GPU" in text
    assert "ask for 1024 MiB memory; the nodes present offer 512 MiB memory" in text
    assert "ask for 1 ssd" in text


def test_together_too_big_although_each_fits() -> None:
    asks = asks_of(
        config(
            app("a", num_replicas=1, ray_actor_options={"num_cpus": 1.5}),
            app("b", num_replicas=1, ray_actor_options={"num_cpus": 1.5}),
        )
    )
    (problem,) = problems(asks, [Node.of("n", {"CPU": 2})])
    assert problem.certain and "together ask for 3 CPU" in str(problem)


def test_packing_that_only_greedy_sees_fail_is_a_maybe() -> None:
    # Two nodes of 1 CPU; three replicas of 0.6 CPU fit nowhere together (each node holds one).
    asks = asks_of(
        config(
            app("a", num_replicas=1, ray_actor_options={"num_cpus": 0.6}),
            app("b", num_replicas=1, ray_actor_options={"num_cpus": 0.6}),
            app("c", num_replicas=1, ray_actor_options={"num_cpus": 0.6}),
        )
    )
    (problem,) = problems(asks, [Node.of("x", {"CPU": 1}), Node.of("y", {"CPU": 1})])
    assert not problem.certain and "may not fit" in str(problem)
    assert report(asks, [Node.of("x", {"CPU": 1}), Node.of("y", {"CPU": 1})]).startswith(
        "the config may not fit"
    )


def test_what_cannot_be_judged_is_said_not_guessed() -> None:
    asks = asks_of(
        config(
            {"name": "bare", "import_path": "m:app"},
            app("pg", placement_group_bundles=[{"CPU": 1}]),
            app("odd", num_replicas="many"),
        )
    )
    assert asks.deployments == []
    assert problems(asks, [HEAD0]) == []
    text = report(asks, [HEAD0])
    assert "bare: no deployments listed" in text
    assert "pg/Pg: placement group bundles are not checked" in text
    assert "odd/Odd: cannot read its options" in text


def test_nodes_of_ray_nodes() -> None:
    ray_nodes = [
        {
            "Alive": True,
            "NodeManagerAddress": "172.18.0.2",
            "Resources": {
                "CPU": 0.0,
                "memory": 1e9,
                "object_store_memory": 2e8,
                "node:172.18.0.2": 1.0,
                "node:__internal_head__": 1.0,
            },
        },
        {"Alive": True, "NodeManagerAddress": "172.18.0.3", "Resources": {"CPU": 2.0}},
        {"Alive": False, "NodeManagerAddress": "172.18.0.4", "Resources": {"CPU": 2.0}},
    ]
    nodes = nodes_of(ray_nodes)
    assert [n.name for n in nodes] == ["head 172.18.0.2", "172.18.0.3"]
    assert nodes[0].resources == {"CPU": 0, "memory": 10**9 * 10_000}
    assert str(nodes[1]) == "172.18.0.3 (2 CPU)"


# --- the one-node demo stays the demo ----------------------------------------------------


def test_one_node_demo_differs_from_the_demo_only_in_sizing() -> None:
    """Same apps, routes, code and options; only replicas, CPUs and max_replicas_per_node
    differ (the sizing its header explains)."""
    sizing = ("num_replicas", "max_replicas_per_node", "ray_actor_options")

    def shape(cfg: dict[str, Any]) -> Any:
        apps = []
        for application in cfg["applications"]:
            deployments = [
                {k: v for k, v in d.items() if k not in sizing} for d in application["deployments"]
            ]
            apps.append({**application, "deployments": deployments})
        return {**cfg, "applications": apps}

    assert shape(ONE_NODE_CONFIG) == shape(DEMO_CONFIG)
    for application in ONE_NODE_CONFIG["applications"]:
        for deployment in application["deployments"]:
            assert "max_replicas_per_node" not in deployment, application["name"]


# --- `check`: this node alone ------------------------------------------------------------


def test_check_warns_that_a_num_cpus_0_head_alone_places_nothing(load: Any, facts: Any) -> None:
    from ray_serve_haproxy.env_checks import Level, check_placement
    from ray_serve_haproxy.settings_loader import Role

    effective = load(RSH_NUM_CPUS="0", RSH_SERVE_CONFIG=str(DEMO / "serve_config.yaml"))
    (finding,) = check_placement(effective, Role.HEAD, facts)
    assert finding.level == Level.WARN
    assert finding.subject == f"placement of {DEMO / 'serve_config.yaml'}"
    assert finding.detail.startswith(
        "the config cannot be placed on this node alone (1 node(s): this head (0 CPU))"
    )
    assert "(this head has RSH_NUM_CPUS=0)" in finding.detail
    assert "examples/demo/serve_config.one-node.yaml" in finding.detail


def test_check_passes_the_one_node_demo_on_a_two_cpu_node(load: Any, facts: Any) -> None:
    from ray_serve_haproxy.env_checks import Level, check_placement
    from ray_serve_haproxy.settings_loader import Role

    effective = load(RSH_SERVE_CONFIG=str(DEMO / "serve_config.one-node.yaml"))
    (finding,) = check_placement(effective, Role.HEAD, facts)  # facts: 2 CPUs
    assert finding.level == Level.OK, finding
    assert finding.detail.startswith("the config's replicas fit on this node alone")
    # Workers deploy nothing: no placement finding there.
    worker = load(role=Role.WORKER, RSH_HEAD_ADDRESS="head:6379")
    assert check_placement(worker, Role.WORKER, facts) == []


def test_check_counts_gpus_and_resources_of_ray_start_args(
    load: Any, facts: Any, tmp_path: Path
) -> None:
    from ray_serve_haproxy.env_checks import Level, check_placement
    from ray_serve_haproxy.settings_loader import Role

    path = tmp_path / "gpu.yaml"
    options = {"num_cpus": 1, "num_gpus": 1, "resources": {"ssd": 1}}
    path.write_text(yaml.safe_dump(config(app("a", num_replicas=1, ray_actor_options=options))))
    without = load(RSH_SERVE_CONFIG=str(path))
    assert check_placement(without, Role.HEAD, facts)[0].level == Level.WARN
    with_gpu = load(
        RSH_SERVE_CONFIG=str(path), RSH_RAY_START_ARGS="--num-gpus=1 --resources='{\"ssd\": 2}'"
    )
    assert check_placement(with_gpu, Role.HEAD, facts)[0].level == Level.OK
