"""Which applications rely on something HAProxy mode drops: found by reading their code
(never importing it), named by `check` and in the head's start-up log."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.app_scan import (
    ingress_class,
    read_serve_config,
    scan_config,
    split_import_path,
    startup_warnings,
)
from ray_serve_haproxy.env_checks import Level, check_applications
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
REPO = Path(__file__).resolve().parents[2]
DIFF_APPS = REPO / "tests" / "differential" / "apps"

MODELS = textwrap.dedent(
    """\
    from ray import serve
    from ray.serve import multiplexed

    @serve.deployment
    class Ingress:
        @serve.multiplexed(max_num_models_per_replica=2)
        async def load(self, model_id):
            return model_id

    @serve.deployment
    class Bare:
        @multiplexed
        def load(self, model_id):
            return model_id

    @serve.deployment
    class Models:
        @serve.multiplexed
        async def load(self, model_id):
            return model_id

    @serve.deployment
    class Front:
        def __init__(self, models):
            self.models = models

    ingress_app = Ingress.options(num_replicas=2).bind()
    bare_app = Bare.bind()
    front_app = Front.bind(Models.bind())
    plain: object = Front.bind(None)
    """
)


def app(name: str, import_path: str, **extra: object) -> dict[str, object]:
    return {"name": name, "route_prefix": f"/{name}", "import_path": import_path, **extra}


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(MODELS)
    return tmp_path


def test_import_paths() -> None:
    assert split_import_path("a.b:c") == ("a.b", "c")
    assert split_import_path("a.b.c") == ("a.b", "c")


def test_multiplexing_on_the_ingress_is_named(code_dir: Path) -> None:
    config = {
        "applications": [
            app("ingress", "pkg.models:ingress_app"),
            app("bare", "pkg.models.bare_app"),
            app("front", "pkg.models:front_app"),
            app("plain", "pkg.models:plain"),
        ]
    }
    result = scan_config(config, [str(code_dir)])
    named = {(r.app, r.deployment, r.location) for r in result.reliances}
    assert named == {("ingress", "Ingress", "models.py:6"), ("bare", "Bare", "models.py:12")}
    assert result.not_inspected == []
    text = str(result.reliances[0])
    assert "'ingress'" in text and "serve_multiplexed_model_id" in text
    assert "ray-project/ray#65976" in text and "handle.options" in text


def test_what_cannot_be_read_is_said(code_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    config = {
        "applications": [
            app("missing", "nowhere.mod:app"),
            app("broken", "broken:app"),
            app("unbound", "pkg.models:Ingress"),
            app("odd", "no_attribute"),
        ]
    }
    result = scan_config(config, [str(code_dir), str(tmp_path)])
    assert result.reliances == []
    reasons = "\n".join(result.not_inspected)
    assert "missing: module nowhere.mod not found in" in reasons
    assert "broken:" in reasons and "cannot be parsed" in reasons
    assert "unbound: no `Ingress = <Deployment>.bind(...)`" in reasons
    assert "odd: import_path 'no_attribute' not understood" in reasons


def test_a_local_working_dir_is_searched(code_dir: Path) -> None:
    config = {
        "applications": [
            app("wd", "pkg.models:ingress_app", runtime_env={"working_dir": str(code_dir)})
        ]
    }
    assert [r.app for r in scan_config(config, []).reliances] == ["wd"]


def test_the_differential_corpus_itself() -> None:
    """The corpus deploys a multiplexed ingress (`mux`) and a multiplexed deployment behind
    a handle (`muxhandle`): only the first is HAProxy mode's problem."""
    config = read_serve_config(str(DIFF_APPS / "serve_config.yaml"))
    result = scan_config(config, [str(DIFF_APPS)])
    assert [(r.app, r.deployment) for r in result.reliances] == [("mux", "Multiplexed")]
    assert result.not_inspected == []


def test_the_demo_relies_on_nothing() -> None:
    demo = REPO / "examples" / "demo"
    result = scan_config(read_serve_config(str(demo / "serve_config.yaml")), [str(demo)])
    assert result.reliances == [] and result.not_inspected == []


def test_startup_warnings_name_the_app(code_dir: Path) -> None:
    config = {"applications": [app("ingress", "pkg.models:ingress_app"), app("x", "gone:app")]}
    lines = startup_warnings(config, str(code_dir))
    assert lines[0].startswith("WARNING: application 'ingress' relies on model multiplexing")
    assert lines[1].startswith("not inspected for HAProxy mode: x: module gone not found")


def test_ingress_class_needs_a_bind() -> None:
    import ast

    tree = ast.parse("a = X.bind()\nb = make()\nc = X.options(name='y').options().bind(1)\n")
    assert ingress_class(tree, "a") == "X"
    assert ingress_class(tree, "b") is None
    assert ingress_class(tree, "c") == "X"
    assert ingress_class(tree, "zzz") is None


def test_check_names_reliances_in_haproxy_mode_only(load: Load, code_dir: Path) -> None:
    config = code_dir / "serve_config.yaml"
    config.write_text(
        "applications:\n"
        "  - {name: ingress, route_prefix: /i, import_path: 'pkg.models:ingress_app'}\n"
        "  - {name: front, route_prefix: /f, import_path: 'pkg.models:front_app'}\n"
    )
    env = {"RSH_SERVE_CONFIG": str(config), "RSH_PYTHONPATH": str(code_dir)}
    findings = check_applications(load(RAY_SERVE_ENABLE_HA_PROXY="1", **env), Role.HEAD)
    assert [(f.level, f.subject) for f in findings] == [
        (Level.WARN, "RSH_SERVE_CONFIG application 'ingress'")
    ]
    assert "models.py:6" in findings[0].detail
    # The Python proxy routes by model id: nothing to warn about; workers deploy nothing.
    assert check_applications(load(RAY_SERVE_ENABLE_HA_PROXY="0", **env), Role.HEAD) == []
    assert check_applications(load(RAY_SERVE_ENABLE_HA_PROXY="1", **env), Role.WORKER) == []


def test_check_says_when_nothing_relies(load: Load) -> None:
    demo = REPO / "examples" / "demo"
    env = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RSH_SERVE_CONFIG": str(demo / "serve_config.yaml"),
        "RSH_PYTHONPATH": str(demo),
    }
    findings = check_applications(load(**env), Role.HEAD)
    assert [(f.level, f.detail) for f in findings] == [
        (Level.OK, "4 application(s) inspected: none relies on a feature HAProxy mode drops")
    ]
