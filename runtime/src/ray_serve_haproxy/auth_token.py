"""The cluster's token for Ray's token authentication: what a good one looks like, reading it
from a secret file the way Ray does, and keeping it out of every string we print.

Ray 2.60 (`RAY_AUTH_MODE=token`) makes every GCS, raylet and dashboard request carry the token;
a node or client without it is refused. Ray takes it from `RAY_AUTH_TOKEN`, else from the file
`RAY_AUTH_TOKEN_PATH` (first line, whitespace trimmed). The runtime hands Ray the *path*, so the
token itself sits in no environment and no file the runtime writes.

Minimum length 32: 32 hex digits are 128 bits, the usual floor for a secret that can be guessed
at network speed - Ray neither rate-limits nor locks out failed tokens. Ray's own generator
(`ray get-auth-token --generate`) and `openssl rand -hex 32` give 64 characters.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .value_types import ValueType

MIN_TOKEN_LENGTH = 32
# gRPC metadata and HTTP headers carry it; both have limits of a few KiB.
MAX_TOKEN_LENGTH = 1024
# A token file is one line; anything much bigger is not a token file.
MAX_TOKEN_FILE_BYTES = 64 * 1024
# Fewer distinct characters than this is a pattern, not randomness (32 random hex digits use
# about 14 of 16; fewer than 8 happens with a probability below 1e-7).
MIN_DISTINCT_CHARACTERS = 8
# Ray trims these around the token (AuthenticationTokenLoader::TrimWhitespace).
RAY_TRIMMED = " \t\n\r\f\v"
# Lower-cased, with everything but letters and digits removed, a token must not contain these.
PLACEHOLDERS = (
    "changeme",
    "replaceme",
    "placeholder",
    "example",
    "yourtoken",
    "yoursecret",
    "tokenhere",
    "secrethere",
    "redacted",
    "password",
    "xxxxxxxx",
    "12345678",
    "abcdefgh",
    "qwerty",
)
TOKEN_ALLOWED = (
    f"a random token of {MIN_TOKEN_LENGTH}-{MAX_TOKEN_LENGTH} printable ASCII characters without "
    "spaces, no placeholder or repeated pattern"
)
# How to make one, for error messages.
GENERATE_HINT = "Generate one with `openssl rand -hex 32` (or run scripts/ray-token.sh)."


class Secret:
    """A token that never shows itself in str(), repr() or f-strings; reveal() hands it out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __str__(self) -> str:
        return hidden(self._value)

    __repr__ = __str__


def hidden(token: str) -> str:
    """What we print instead of a token: only its length."""
    return f"<hidden, {len(token)} characters>"


def token_problem(token: str) -> str | None:
    """Why `token` is not acceptable as the cluster's token (None when it is). Never quotes it."""
    if not token:
        return "empty"
    if any(not ("!" <= c <= "~") for c in token):
        return "contains spaces, control or non-ASCII characters"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"{len(token)} characters is too short"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"{len(token)} characters is too long"
    folded = re.sub(r"[^a-z0-9]", "", token.lower())
    for word in PLACEHOLDERS:
        if word in folded:
            return f"looks like a placeholder (contains {word!r})"
    distinct = len(set(token))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return f"made of only {distinct} distinct characters"
    for size in range(1, len(token) // 2 + 1):
        if len(token) % size == 0 and token[:size] * (len(token) // size) == token:
            return f"one {size}-character pattern repeated"
    return None


class TokenValue(ValueType[Secret]):
    """RAY_AUTH_TOKEN: the token itself. Rendered (config, logs) only as its length."""

    @property
    def allowed(self) -> str:
        return TOKEN_ALLOWED

    def parse(self, raw: str) -> Secret:
        token = raw.strip(RAY_TRIMMED)
        problem = token_problem(token)
        if problem:
            raise self.refuse(problem, GENERATE_HINT)
        return Secret(token)

    def render(self, value: Secret) -> str:
        return str(value)


@dataclass(frozen=True)
class TokenFile:
    """A token file that passed every check."""

    path: str
    token: Secret


class TokenFileError(Exception):
    """Why a token file cannot be used; the message never contains the token."""


def read_token_file(path: str) -> TokenFile:
    """Reads and checks the token file as Ray will read it; raises TokenFileError."""
    try:
        info = os.stat(path)  # follows symlinks: Kubernetes secrets are links into ..data/
    except FileNotFoundError:
        raise TokenFileError("no such file") from None
    except OSError as exc:
        raise TokenFileError(f"cannot stat it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise TokenFileError("not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise TokenFileError(
            f"mode {mode:04o} lets group or others at it (owner uid {info.st_uid}); allowed: "
            "readable by its owner only (chmod 600 or 400)"
        )
    if info.st_size > MAX_TOKEN_FILE_BYTES:
        raise TokenFileError(f"{info.st_size} bytes is no token file")
    try:
        data = Path(path).read_bytes()
    except PermissionError:
        raise TokenFileError(
            f"not readable by uid {os.getuid()} (owner uid {info.st_uid}, mode {mode:04o}); "
            "a Docker bind-mounted secret keeps the host file's owner: make it owned by the "
            "container's uid (scripts/ray-token.sh does)"
        ) from None
    except OSError as exc:
        raise TokenFileError(f"cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise TokenFileError("not ASCII text") from None
    first, _, rest = text.partition("\n")
    if rest.strip(RAY_TRIMMED):
        raise TokenFileError("more than one line (Ray reads only the first); allowed: one line")
    token = first.strip(RAY_TRIMMED)
    problem = token_problem(token)
    if problem:
        raise TokenFileError(
            f"the token in it: {problem}; allowed: {TOKEN_ALLOWED}. {GENERATE_HINT}"
        )
    return TokenFile(path, Secret(token))


def bearer_headers(token: Secret | None) -> dict[str, str]:
    """The dashboard's Authorization header for `token` ({} when there is none)."""
    return {"Authorization": f"Bearer {token.reveal()}"} if token is not None else {}


def cluster_token(mode: str, token: Secret | None, path: str) -> Secret | None:
    """The token this node's clients must send: None when authentication is disabled, else
    RAY_AUTH_TOKEN when set (Ray's order), else the file's. Raises TokenFileError."""
    if mode != "token":
        return None
    if token is not None:
        return token
    return read_token_file(path).token
