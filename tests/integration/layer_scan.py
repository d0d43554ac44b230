"""What an image's layers hold that must never be in one: `docker save`'s stream read once, each
layer's file names and every byte.

A secret reaches a layer when a build step copies it in or writes it down: a `COPY` of a
directory holding a token file, a `RUN` that writes a build secret (`/run/secrets/<id>`) where
it stays, an `ENV RAY_AUTH_TOKEN=...`. So this looks for:
- file names: anything under `run/secrets/` (where build secrets and the cluster's token are
  mounted, never stored), and token or CA-secret files by name (`ray_token*`, `extra_ca*`);
- contents: given secret values (the session's token, a developer's `.secrets/ray_token` made
  before the image was built), anywhere in the stream (layers are stored uncompressed);
- the image's environment: no `RAY_AUTH_TOKEN` with a value.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

SECRET_NAME = re.compile(r"(^|/)(run/secrets/.+|ray_token[^/]*|extra_ca[^/]*)$")


@dataclass
class Findings:
    names: list[str] = field(default_factory=list)  # "layer-blob: path"
    values: list[int] = field(default_factory=list)  # indexes of the secret values found
    layers: int = 0
    files: int = 0
    bytes_read: int = 0

    @property
    def clean(self) -> bool:
        return not self.names and not self.values


class _Scanning:
    """A read()-able view of byte chunks that searches every byte for the secret values."""

    def __init__(self, chunks: Iterable[bytes], values: Sequence[bytes], found: Findings) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._values = [v for v in values if v]
        self._keep = max((len(v) for v in self._values), default=1) - 1
        self._tail = b""
        self._buffer = b""
        self._found = found

    def _pull(self) -> bool:
        chunk = next(self._chunks, b"")
        if not chunk:
            return False
        window = self._tail + chunk
        for index, value in enumerate(self._values):
            if index not in self._found.values and value in window:
                self._found.values.append(index)
        self._tail = window[-self._keep :] if self._keep else b""
        self._found.bytes_read += len(chunk)
        self._buffer += chunk
        return True

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buffer) < size) and self._pull():
            pass
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _scan_layer(name: str, blob: IO[bytes], found: Findings) -> None:
    try:
        with tarfile.open(fileobj=blob, mode="r|") as layer:
            found.layers += 1
            for member in layer:
                found.files += 1
                path = member.name.lstrip("./")
                if SECRET_NAME.search(path):
                    found.names.append(f"{name}: {path}")
    except tarfile.ReadError:
        pass  # a JSON blob (config, manifest), not a layer


def scan_saved_image(chunks: Iterable[bytes], values: Sequence[bytes]) -> Findings:
    """`docker save` output (any layout: OCI blobs or <id>/layer.tar) as byte chunks."""
    found = Findings()
    stream = _Scanning(chunks, values, found)
    with tarfile.open(fileobj=stream, mode="r|") as outer:  # type: ignore[call-overload]
        for member in outer:
            if member.isfile() and member.size >= tarfile.BLOCKSIZE:
                blob = outer.extractfile(member)
                if blob is not None:
                    _scan_layer(member.name, blob, found)
    # Whatever follows the last member (padding) is searched too.
    while stream.read(1 << 20):
        pass
    return found


def env_holds_token(env: Sequence[str] | None) -> bool:
    """The image's configured environment sets RAY_AUTH_TOKEN to a value."""
    return any(e.startswith("RAY_AUTH_TOKEN=") and e != "RAY_AUTH_TOKEN=" for e in env or ())
