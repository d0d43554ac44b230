"""Token authentication in the image: on by default, the token file checked as the container's
user (uid 1000) sees it, its value printed nowhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import ImageRunner

if TYPE_CHECKING:
    from conftest import ClusterToken

pytestmark = pytest.mark.image

SECRET_PATH = "/run/secrets/ray_token"
CHECK = ["check", "--no-ports"]


def mounted(path: Path) -> dict[str, dict[str, str]]:
    return {str(path): {"bind": SECRET_PATH, "mode": "ro"}}


def test_the_image_turns_token_authentication_on(image_runner: ImageRunner) -> None:
    result = image_runner.sh('echo "$RAY_AUTH_MODE $RAY_AUTH_TOKEN_PATH"', token=False)
    assert result.output.split() == ["token", SECRET_PATH], result.output


def test_check_reports_the_token_file_by_length_only(
    image_runner: ImageRunner, cluster_token: ClusterToken
) -> None:
    result = image_runner.run(CHECK, timeout_s=60)
    assert result.exit_code == 0, result.output
    assert f"OK    RAY_AUTH_MODE: token, from the file {SECRET_PATH} (64 characters)" in (
        result.output
    )
    assert cluster_token.value() not in result.output


def test_no_token_file_stops_every_node_command_before_anything_starts(
    image_runner: ImageRunner,
) -> None:
    for command in (["head"], ["worker"], CHECK):
        env = {"RSH_HEAD_ADDRESS": "head:6379"}
        result = image_runner.run(command, environment=env, token=False, timeout_s=60)
        assert result.exit_code == 2, (command, result.output)
        assert f"RAY_AUTH_TOKEN_PATH='{SECRET_PATH}': no such file" in result.output
        assert "RAY_AUTH_MODE=disabled" in result.output  # says what else is allowed
        assert "supervisord started" not in result.output
        assert "starting: " not in result.output, "Ray was started without a token"


@pytest.mark.skipif(os.getuid() == 1000, reason="a file of uid 1000 is the container user's own")
def test_secret_file_the_container_user_cannot_read_is_named(
    image_runner: ImageRunner, cluster_token: ClusterToken
) -> None:
    # What a compose file secret looks like when the host file was not given to uid 1000:
    # the bind mount keeps the host owner and mode.
    result = image_runner.run(CHECK, token=False, volumes=mounted(cluster_token.user))
    assert result.exit_code == 2, result.output
    assert f"not readable by uid 1000 (owner uid {os.getuid()}, mode 0600)" in result.output
    assert cluster_token.value() not in result.output


def test_token_file_others_may_read_is_refused(image_runner: ImageRunner, tmp_path: Path) -> None:
    token = tmp_path / "ray_token"
    token.write_text("6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\n")
    token.chmod(0o644)
    result = image_runner.run(CHECK, token=False, volumes=mounted(token))
    assert result.exit_code == 2, result.output
    assert "mode 0644 lets group or others at it" in result.output
    assert "6b86b273ff34fce1" not in result.output


def test_token_from_the_environment_is_never_printed(image_runner: ImageRunner) -> None:
    token = "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"
    env = {"RAY_AUTH_TOKEN": token}
    for command in (CHECK, ["config"], ["config", "--json"], ["config", "--env"]):
        result = image_runner.run(command, environment=env, token=False, timeout_s=60)
        assert result.exit_code == 0, (command, result.output)
        assert token not in result.output, command
        if command == ["config"]:
            assert "<hidden, 64 characters>" in result.output, result.output
    weak = {"RAY_AUTH_TOKEN": "changeme-changeme-changeme-changeme"}
    result = image_runner.run(CHECK, environment=weak, token=False, timeout_s=60)
    assert result.exit_code == 2, result.output
    assert "RAY_AUTH_TOKEN='<hidden, 35 characters>': looks like a placeholder" in result.output
    assert "changeme-changeme" not in result.output


def test_disabled_only_by_name_and_then_check_warns(image_runner: ImageRunner) -> None:
    result = image_runner.run(CHECK, environment={"RAY_AUTH_MODE": "disabled"}, token=False)
    assert result.exit_code == 0, result.output
    assert "WARN  RAY_AUTH_MODE: disabled: anyone who reaches the GCS" in result.output
    result = image_runner.run(CHECK, environment={"RAY_AUTH_MODE": "off"}, token=False)
    assert result.exit_code == 2, result.output
    assert "RAY_AUTH_MODE='off': not one of these words" in result.output


def test_commands_that_never_reach_ray_need_no_token(image_runner: ImageRunner) -> None:
    # preStop's drain (a local `ray stop`) must work even when the token file is gone; the
    # KubeRay syslog sidecar gets no token at all.
    result = image_runner.run(["drain"], token=False, timeout_s=120)
    assert result.exit_code == 0, result.output
    assert "drained" in result.output and "RAY_AUTH_TOKEN_PATH" not in result.output
    result = image_runner.run(["status"], token=False, timeout_s=60)
    assert "no HAProxy admin socket" in result.output, result.output
    assert "RAY_AUTH_TOKEN_PATH" not in result.output
