"""Token authentication settings: the mode, the token from a file or the environment, every bad
token refused before anything starts, and the token itself printed nowhere."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ray_serve_haproxy.auth_token import (
    MIN_TOKEN_LENGTH,
    Secret,
    TokenFileError,
    bearer_headers,
    cluster_token,
    read_token_file,
    token_problem,
)
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.env_checks import Level, check_auth
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.serve_up import ServeUpError, _deploy
from ray_serve_haproxy.settings_loader import (
    EffectiveSettings,
    InvalidSettings,
    Role,
    Source,
    load_settings,
)
from ray_serve_haproxy.supervisor_config import render_supervisor_config

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]

# What conftest.py's token_file holds (test_the_file_is_handed_to_ray_by_path checks it).
GOOD_TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Good tokens of the kinds people generate: Ray's/ours (64 hex), `openssl rand -hex 16` (the
# shortest accepted), `openssl rand -base64 32` (KubeRay's docs).
GOOD_TOKENS = [
    GOOD_TOKEN,
    "3f9a0c1e7b2d4a6f8e0b1c3d5a7f9e2b",
    "Zx8P1q0VmH3rT6yW9bN2cL5kJ7dF4gS0aQe+/Uo1Ri8=",
]
BAD_TOKENS = [
    # (token, what the error says)
    ("", "empty"),
    ("3f9a0c1e7b2d4a6f8e0b1c3d5a7f9e2", "31 characters is too short"),
    ("3f9a0c1e7b2d4a6f 8e0b1c3d5a7f9e2b11", "spaces"),
    ("3f9a0c1e7b2d4a6f\t8e0b1c3d5a7f9e2b11", "spaces, control"),
    ("3f9a0c1e7b2d4a6f8e0b1c3d5a7f9e2bé", "non-ASCII"),
    ("a" * (1025), "1025 characters is too long"),
    ("changeme-changeme-changeme-changeme", "placeholder (contains 'changeme')"),
    ("CHANGE_ME_7f3a9b1c2d4e6f8a0b1c3d5e", "placeholder (contains 'changeme')"),
    ("your-token-goes-here-3f9a0c1e7b2d4a6f", "placeholder (contains 'yourtoken')"),
    ("my-super-secret-password-3f9a0c1e7b", "placeholder (contains 'password')"),
    ("<replace-me-with-a-real-token-3f9a0c>", "placeholder (contains 'replaceme')"),
    ("token-example-3f9a0c1e7b2d4a6f8e0b1c3d", "placeholder (contains 'example')"),
    ("0123456789abcdef0123456789abcdef", "placeholder (contains '12345678')"),
    ("x" * 64, "placeholder (contains 'xxxxxxxx')"),
    ("a" * 64, "only 1 distinct characters"),
    ("abababababababababababababababab", "only 2 distinct characters"),
    ("aabbccddaabbccddaabbccddaabbccddaabbccdd", "only 4 distinct characters"),
    ("k3Lm9Qp2" * 5, "one 8-character pattern repeated"),
    ("f0e1d2c3b4a5968778695a4b3c2d1e0f" * 2, "one 32-character pattern repeated"),
]


def write_token(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def errors_of(load: Load, **env: str) -> list[str]:
    with pytest.raises(InvalidSettings) as caught:
        load(**env)
    return [str(e) for e in caught.value.errors]


# --- what a token must look like --------------------------------------------------------------


@pytest.mark.parametrize("token", GOOD_TOKENS)
def test_random_tokens_pass(token: str) -> None:
    assert len(token) >= MIN_TOKEN_LENGTH
    assert token_problem(token) is None


@pytest.mark.parametrize(("token", "problem"), BAD_TOKENS, ids=[p for _, p in BAD_TOKENS])
def test_bad_tokens_are_named(token: str, problem: str) -> None:
    found = token_problem(token)
    assert found is not None and problem in found, found
    if len(token) >= 8:
        assert token not in found  # the reason never quotes the token


def test_secret_never_shows_itself() -> None:
    secret = Secret(GOOD_TOKEN)
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", str([secret])):
        assert GOOD_TOKEN not in text
        assert "64 characters" in text
    assert secret.reveal() == GOOD_TOKEN
    assert bearer_headers(secret) == {"Authorization": f"Bearer {GOOD_TOKEN}"}
    assert bearer_headers(None) == {}


# --- RAY_AUTH_MODE ----------------------------------------------------------------------------


def test_token_mode_is_the_default(load: Load) -> None:
    effective = load()
    assert effective.values.auth_mode == "token"
    assert effective.sources["RAY_AUTH_MODE"] == Source.DEFAULT
    assert effective.ray_env()["RAY_AUTH_MODE"] == "token"


@pytest.mark.parametrize("raw", ["disabled", "DISABLED", " Disabled "])
def test_disabled_only_by_name_and_then_no_token_is_needed(load: Load, raw: str) -> None:
    effective = load(RAY_AUTH_MODE=raw, RAY_AUTH_TOKEN_PATH="/nonexistent/ray_token")
    assert effective.values.auth_mode == "disabled"
    assert effective.ray_env()["RAY_AUTH_MODE"] == "disabled"


@pytest.mark.parametrize("raw", ["off", "0", "false", "none", "no", "tokens"])
def test_anything_else_is_refused(load: Load, raw: str) -> None:
    (error,) = errors_of(load, RAY_AUTH_MODE=raw)
    assert error.startswith(f"RAY_AUTH_MODE={raw!r}: ")
    assert "allowed: `token` or `disabled`" in error
    assert "every value but 'token' as disabled" in error


def test_empty_mode_means_the_default(load: Load) -> None:
    assert load(RAY_AUTH_MODE="").values.auth_mode == "token"


# --- the token file ---------------------------------------------------------------------------


def test_the_file_is_handed_to_ray_by_path(load: Load, token_file: Path) -> None:
    effective = load()
    env = effective.ray_env()
    assert env["RAY_AUTH_TOKEN_PATH"] == str(token_file)
    assert "RAY_AUTH_TOKEN" not in env
    assert read_token_file(str(token_file)).token.reveal() == GOOD_TOKEN


def test_missing_file_says_what_is_allowed(load: Load, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    (error,) = errors_of(load, RAY_AUTH_TOKEN_PATH=str(missing))
    assert error.startswith(f"RAY_AUTH_TOKEN_PATH='{missing}': no such file; allowed: ")
    assert "RAY_AUTH_TOKEN" in error and "RAY_AUTH_MODE=disabled" in error


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o400 | 0o040])
def test_file_others_may_read_is_refused(load: Load, tmp_path: Path, mode: int) -> None:
    path = write_token(tmp_path / "t", GOOD_TOKEN, mode)
    (error,) = errors_of(load, RAY_AUTH_TOKEN_PATH=str(path))
    assert f"mode {mode:04o} lets group or others at it" in error
    assert "allowed: readable by its owner only" in error
    assert GOOD_TOKEN not in error


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_pass(load: Load, tmp_path: Path, mode: int) -> None:
    path = write_token(tmp_path / "t", GOOD_TOKEN + "\n", mode)
    assert load(RAY_AUTH_TOKEN_PATH=str(path)).values.auth_token_path == str(path)


@pytest.mark.skipif(os.getuid() == 0, reason="root reads any file")
def test_unreadable_file_is_refused(load: Load, tmp_path: Path) -> None:
    path = write_token(tmp_path / "t", GOOD_TOKEN, 0o200)
    (error,) = errors_of(load, RAY_AUTH_TOKEN_PATH=str(path))
    assert f"not readable by uid {os.getuid()}" in error


def test_directory_is_refused(load: Load, tmp_path: Path) -> None:
    (error,) = errors_of(load, RAY_AUTH_TOKEN_PATH=str(tmp_path))
    assert "not a regular file" in error


def test_symlinked_secret_is_followed(load: Load, tmp_path: Path, token_file: Path) -> None:
    # Kubernetes mounts secrets as links into a ..data directory.
    link = tmp_path / "linked"
    link.symlink_to(token_file)
    assert load(RAY_AUTH_TOKEN_PATH=str(link)).values.auth_token_path == str(link)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "the token in it: empty"),
        ("  \n\n", "the token in it: empty"),
        (f"\n{GOOD_TOKEN}\n", "more than one line"),
        (f"{GOOD_TOKEN}\n{GOOD_TOKEN}\n", "more than one line"),
        ("3f9a0c1e7b2d4a6f\n", "16 characters is too short"),
        ("changeme-changeme-changeme-changeme\n", "placeholder"),
        ("a" * 64, "distinct characters"),
    ],
    ids=["empty", "blank", "blank-first-line", "two-lines", "short", "placeholder", "pattern"],
)
def test_bad_file_content_is_named_without_the_token(
    load: Load, tmp_path: Path, content: str, problem: str
) -> None:
    path = write_token(tmp_path / "t", content)
    (error,) = errors_of(load, RAY_AUTH_TOKEN_PATH=str(path))
    assert error.startswith(f"RAY_AUTH_TOKEN_PATH='{path}': ")
    assert problem in error
    assert GOOD_TOKEN not in error and "changeme-changeme" not in error


@pytest.mark.parametrize("content", [f"{GOOD_TOKEN}", f"{GOOD_TOKEN}\r\n", f"  {GOOD_TOKEN} \n\n"])
def test_whitespace_around_the_token_is_trimmed_as_ray_does(tmp_path: Path, content: str) -> None:
    path = write_token(tmp_path / "t", content)
    assert read_token_file(str(path)).token.reveal() == GOOD_TOKEN


def test_binary_and_huge_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe" * 40)
    binary.chmod(0o600)
    with pytest.raises(TokenFileError, match="not ASCII"):
        read_token_file(str(binary))
    huge = write_token(tmp_path / "huge", "a" * 100_000)
    with pytest.raises(TokenFileError, match="no token file"):
        read_token_file(str(huge))


def test_commands_that_never_talk_to_ray_skip_the_file(
    private_paths: dict[str, str], facts: HostFacts
) -> None:
    env = {**private_paths, "RAY_AUTH_TOKEN_PATH": "/nonexistent/ray_token"}
    with pytest.raises(InvalidSettings):
        load_settings(env, facts=facts)
    assert load_settings(env, facts=facts, check_token=False).values.auth_mode == "token"


# --- the token from the environment -----------------------------------------------------------


def test_environment_token_wins_and_the_file_is_not_read(load: Load) -> None:
    effective = load(RAY_AUTH_TOKEN=GOOD_TOKEN, RAY_AUTH_TOKEN_PATH="/nonexistent/ray_token")
    assert effective.values.auth_token == Secret(GOOD_TOKEN)
    assert effective.sources["RAY_AUTH_TOKEN"] == Source.ENVIRONMENT
    token = cluster_token("token", effective.values.auth_token, "/nonexistent/ray_token")
    assert token is not None and token.reveal() == GOOD_TOKEN
    # Ray reads RAY_AUTH_TOKEN from the environment it inherits: the runtime re-exports nothing.
    assert "RAY_AUTH_TOKEN" not in effective.ray_env()


@pytest.mark.parametrize(("token", "problem"), BAD_TOKENS[1:], ids=[p for _, p in BAD_TOKENS[1:]])
def test_bad_environment_token_is_refused_showing_only_its_length(
    load: Load, token: str, problem: str
) -> None:
    (error,) = errors_of(load, RAY_AUTH_TOKEN=token)
    shown = token.strip(" \t\n\r\f\v")
    assert error.startswith(f"RAY_AUTH_TOKEN='<hidden, {len(shown)} characters>': "), error
    assert problem in error
    assert "allowed: a random token" in error
    if len(token) >= 8:
        assert token not in error


def test_cluster_token_is_none_when_disabled(token_file: Path) -> None:
    assert cluster_token("disabled", None, str(token_file)) is None
    assert cluster_token("token", None, str(token_file)) == Secret(GOOD_TOKEN)


# --- the token is printed nowhere -------------------------------------------------------------


def run_cli(
    argv: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("source", ["file", "environment"])
def test_config_never_prints_the_token(
    source: str,
    private_paths: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = dict(private_paths)
    if source == "environment":
        env["RAY_AUTH_TOKEN"] = GOOD_TOKEN
    outputs = []
    for argv in (["config"], ["config", "--json"], ["config", "--env"]):
        code, out = run_cli(argv, env, monkeypatch, capsys)
        assert code == 0, out
        outputs.append(out)
    text = "\n".join(outputs)
    assert GOOD_TOKEN not in text
    assert "RAY_AUTH_MODE" in text and "RAY_AUTH_TOKEN_PATH" in text
    data = json.loads(outputs[1])
    if source == "environment":
        assert data["settings"]["RAY_AUTH_TOKEN"]["value"] == "<hidden, 64 characters>"
    else:
        assert data["settings"]["RAY_AUTH_TOKEN"]["value"] is None
    assert "RAY_AUTH_TOKEN" not in data["ray_env"]


def test_bad_environment_token_exits_2_without_printing_it(
    private_paths: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    weak = "my-super-secret-password-3f9a0c1e7b"
    env = {**private_paths, "RAY_AUTH_TOKEN": weak}
    for argv in (["head"], ["worker"], ["check"], ["config"]):
        code, out = run_cli(argv, env, monkeypatch, capsys)
        assert code == 2, (argv, out)
        assert "RAY_AUTH_TOKEN" in out and weak not in out
    assert not Path(private_paths["RSH_STATE_DIR"]).exists()  # nothing prepared


@pytest.mark.parametrize("source", ["file", "environment"])
def test_supervisord_conf_holds_the_path_never_the_token(
    source: str, load: Load, token_file: Path
) -> None:
    env = {"RAY_AUTH_TOKEN": GOOD_TOKEN} if source == "environment" else {}
    effective = load(RAY_SERVE_ENABLE_HA_PROXY="1", RSH_HEAD_ADDRESS="head:6379", **env)
    for role in Role:
        conf = render_supervisor_config(effective, role, python="/p", ray="/r")
        assert f'RAY_AUTH_TOKEN_PATH="{token_file}"' in conf
        assert 'RAY_AUTH_MODE="token"' in conf
        assert GOOD_TOKEN not in conf
    assert GOOD_TOKEN not in repr(effective.values)


def test_check_reports_the_mode_and_where_the_token_comes_from(
    load: Load, token_file: Path
) -> None:
    finding = check_auth(load())
    assert finding.level == Level.OK
    assert finding.detail == f"token, from the file {token_file} (64 characters)"
    finding = check_auth(load(RAY_AUTH_TOKEN=GOOD_TOKEN))
    assert finding.level == Level.OK and "from RAY_AUTH_TOKEN (64 characters" in finding.detail
    finding = check_auth(load(RAY_AUTH_MODE="disabled"))
    assert finding.level == Level.WARN
    assert "anyone who reaches the GCS (port 6379) or the dashboard (port 8265)" in finding.detail
    for f in (finding, check_auth(load())):
        assert GOOD_TOKEN not in str(f)


def test_check_command_prints_the_mode(
    private_paths: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = run_cli(["check", "--no-ports"], private_paths, monkeypatch, capsys)
    assert "OK    RAY_AUTH_MODE: token, from the file" in out
    assert GOOD_TOKEN not in out


# --- serve-up sends the token to the dashboard ------------------------------------------------


class FakeServeSubmissionClient:
    """Stands for ray.dashboard.modules.serve.sdk.ServeSubmissionClient (no Ray here)."""

    calls: ClassVar[list[dict[str, Any]]] = []
    answer: ClassVar[Exception | None] = None

    def __init__(self, address: str, headers: dict[str, str] | None = None) -> None:
        self.address = address
        self.headers = headers

    def deploy_applications(self, config: dict[str, Any]) -> None:
        type(self).calls.append({"address": self.address, "headers": self.headers})
        if type(self).answer is not None:
            raise type(self).answer


@pytest.fixture
def fake_sdk(monkeypatch: pytest.MonkeyPatch) -> type[FakeServeSubmissionClient]:
    module = types.ModuleType("ray.dashboard.modules.serve.sdk")
    module.ServeSubmissionClient = FakeServeSubmissionClient  # type: ignore[attr-defined]
    FakeServeSubmissionClient.calls = []
    FakeServeSubmissionClient.answer = None
    monkeypatch.setitem(sys.modules, "ray.dashboard.modules.serve.sdk", module)
    return FakeServeSubmissionClient


def test_deploy_sends_the_token_as_a_bearer_header(
    fake_sdk: type[FakeServeSubmissionClient],
) -> None:
    _deploy("http://127.0.0.1:8265", {"applications": []}, deadline=1e12, token=Secret(GOOD_TOKEN))
    assert fake_sdk.calls == [
        {"address": "http://127.0.0.1:8265", "headers": {"Authorization": f"Bearer {GOOD_TOKEN}"}}
    ]


def test_deploy_refused_token_fails_at_once_saying_so(
    fake_sdk: type[FakeServeSubmissionClient],
) -> None:
    fake_sdk.answer = RuntimeError(
        "Request failed with status code 401: Unauthorized: Missing authentication token"
    )
    with pytest.raises(ServeUpError, match="refused our token") as caught:
        _deploy("http://127.0.0.1:8265", {"applications": []}, deadline=1e12, token=None)
    assert GOOD_TOKEN not in str(caught.value)
    assert len(fake_sdk.calls) == 1  # no retry loop on an authentication error


def test_status_does_not_need_the_token_file_config_does(
    private_paths: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {**private_paths, "RAY_AUTH_TOKEN_PATH": "/nonexistent/ray_token"}
    code, out = run_cli(["status"], env, monkeypatch, capsys)
    assert "RAY_AUTH_TOKEN_PATH" not in out  # fails for want of HAProxy, not of a token
    assert "no HAProxy admin socket" in out and code == 1
    code, out = run_cli(["config"], env, monkeypatch, capsys)
    assert code == 2 and "RAY_AUTH_TOKEN_PATH='/nonexistent/ray_token': no such file" in out
