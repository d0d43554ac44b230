"""The image-layer scan of test_2_auth.py finds a secret when one is there: a token file by its
name or path, a known token's bytes anywhere, RAY_AUTH_TOKEN in the image's environment."""

from __future__ import annotations

import io
import tarfile

import pytest
from integration.layer_scan import env_holds_token, scan_saved_image

pytestmark = pytest.mark.unit

TOKEN = b"3f" * 32


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _saved(*layers: dict[str, bytes]) -> list[bytes]:
    """A `docker save` in the OCI layout: layer tars and a JSON blob, in 1000-byte chunks."""
    blobs = {f"blobs/sha256/{i:064x}": _tar(files) for i, files in enumerate(layers)}
    blobs["index.json"] = b'{"schemaVersion": 2}'
    data = _tar(blobs)
    return [data[i : i + 1000] for i in range(0, len(data), 1000)]


def test_a_clean_image() -> None:
    found = scan_saved_image(
        _saved({"usr/bin/tool": b"x" * 5000}, {"opt/venv/lib/token.py": b"import re\n"}), [TOKEN]
    )
    assert found.clean, (found.names, found.values)
    assert found.layers == 2 and found.files == 2


@pytest.mark.parametrize(
    "path",
    [
        "run/secrets/extra_ca",
        "./run/secrets/ray_token",
        "home/ray/.secrets/ray_token.node",
        "tmp/extra_ca.pem",
    ],
)
def test_secret_files_are_found_by_name(path: str) -> None:
    found = scan_saved_image(_saved({"usr/bin/tool": b"x"}, {path: b"anything"}), [TOKEN])
    assert [n.split(": ", 1)[1] for n in found.names] == [path.lstrip("./")]


def test_a_known_token_is_found_anywhere_even_across_chunks() -> None:
    # 990 bytes of padding put the token across a chunk boundary of the saved stream.
    layer = {"etc/app.conf": b"p" * 490 + b"token=" + TOKEN + b"\n"}
    found = scan_saved_image(_saved(layer), [b"other" * 13, TOKEN])
    assert found.values == [1]


def test_the_environment() -> None:
    assert env_holds_token(["PATH=/usr/bin", "RAY_AUTH_TOKEN=abc"])
    assert not env_holds_token(["RAY_AUTH_TOKEN_PATH=/run/secrets/ray_token", "RAY_AUTH_TOKEN="])
    assert not env_holds_token(None)
