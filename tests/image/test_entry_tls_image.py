"""TLS at the entry, in the image: every bad certificate input makes the real `entry` command
refuse to start (exit 2, the setting and the file named, nothing started), as the image's user
(uid 1000); a good certificate gives configs the image's HAProxy loads, for each plain-HTTP
choice and with mutual TLS. Files are made in the test (tls_cases.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import ImageRunner
from .tls_cases import MOUNT, build, good_files

pytestmark = pytest.mark.image

STATE = "/tmp/rsh-entry-state"


def _open_up(root: Path) -> None:
    """The image's user (uid 1000) must read what the test made as another user."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.stat().st_mode & 0o777:  # the unreadable case keeps its mode 000
            path.chmod(0o644)


def test_each_bad_certificate_input_refuses_to_start(
    image_runner: ImageRunner, tmp_path: Path
) -> None:
    cases = build(tmp_path)
    _open_up(tmp_path)
    # One container, one real `entry` per case (a fresh state directory each): cheap.
    script = ""
    for case in cases:
        assignments = " ".join(f"{k}={v}" for k, v in case.env(MOUNT).items())
        script += (
            f"echo '== {case.name}'; rm -rf {STATE}; env RSH_STATE_DIR={STATE} "
            f"RSH_ENTRY_NODES=head,worker {assignments} ray-serve-haproxy entry 2>&1; "
            f"echo \"== {case.name} rc=$?\"; ls {STATE}/tls/certs 2>/dev/null | sed 's/^/left: /'\n"
        )
    result = image_runner.sh(
        script, token=False, timeout_s=300, volumes={str(tmp_path): {"bind": MOUNT, "mode": "ro"}}
    )
    failures = []
    for case in cases:
        block = re.search(
            rf"== {case.name}\n(.*?)== {case.name} rc=(\d+)\n(.*?)(?===|\Z)", result.output, re.S
        )
        if block is None:
            failures.append(f"{case.name}: no output")
            continue
        text, rc, after = block.group(1), int(block.group(2)), block.group(3)
        line = next((ln for ln in text.splitlines() if f"{case.setting}=" in ln), "")
        if rc != 2 or f"{MOUNT}/{case.file}" not in line or case.says not in line:
            failures.append(
                f"{case.name}: rc={rc}, want 2, {case.setting}, "
                f"{MOUNT}/{case.file} and {case.says!r}; got:\n{text}"
            )
        if "nothing was started" not in text or "left:" in after:
            failures.append(f"{case.name}: something was started or written:\n{text}{after}")
    assert not failures, "\n".join(failures) + f"\n(all {len(cases)} cases)"


@pytest.mark.parametrize(
    "extra",
    [
        {"RSH_ENTRY_PLAIN_HTTP": "serve"},
        {"RSH_ENTRY_PLAIN_HTTP": "off", "RSH_ENTRY_TLS_CLIENT_CA": "ca.crt"},
        {"RSH_ENTRY_PLAIN_HTTP": "redirect", "RSH_ENTRY_HSTS_MAX_AGE_S": "600"},
    ],
    ids=["serve", "off-mtls", "redirect-hsts"],
)
def test_tls_configs_are_accepted_by_the_images_haproxy(
    image_runner: ImageRunner, tmp_path: Path, extra: dict[str, str]
) -> None:
    settings = good_files(tmp_path)() | extra
    _open_up(tmp_path)
    env = " ".join(
        f"{k}={MOUNT}/{v}" if k.endswith(("_CERT", "_CA")) else f"{k}={v}"
        for k, v in settings.items()
    )
    result = image_runner.sh(
        f"export RSH_STATE_DIR={STATE} RSH_ENTRY_NODES=head,worker {env}; "
        f"ray-serve-haproxy entry --render-only && haproxy -c -f {STATE}/entry-haproxy.cfg "
        f"&& ls -l {STATE}/tls/certs; ray-serve-haproxy check --role entry --no-ports",
        token=False,
        timeout_s=120,
        volumes={str(tmp_path): {"bind": MOUNT, "mode": "ro"}},
    )
    assert result.exit_code == 0, result.output
    # `haproxy -c` exits 0 when it loads the config (with warnings it says "Warnings were found").
    assert "[ALERT]" not in result.output, result.output
    assert re.search(r"-rw------- .* server\.pem", result.output), result.output
    assert "OK    RSH_ENTRY_TLS_CERT: 1 certificate(s)" in result.output, result.output
    assert os.path.exists(tmp_path / "server.pem")
