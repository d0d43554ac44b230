"""Parsers for one environment value each.

Every type knows how to parse the raw string, what it allows (for error messages and the
generated docs) and how to render a parsed value back to the string Ray or HAProxy reads.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Characters that would break the places Ray writes these values: haproxy.cfg lines (unquoted,
# '#' starts a comment) and supervisord's KEY="value" environment lists.
_UNSAFE_CHARS = re.compile(r"[\s\"'#\\]")
# DNS labels, plus '_' which Docker's embedded DNS resolves (compose names like ray_head).
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_DURATION = re.compile(r"^(\d+)(us|ms|s|m|h|d)$")
_DURATION_UNIT_MS = {
    "us": 0.001,
    "ms": 1.0,
    "s": 1000.0,
    "m": 60_000.0,
    "h": 3_600_000.0,
    "d": 86_400_000.0,
}
# HAProxy keeps timers as signed 32-bit milliseconds.
HAPROXY_MAX_TIMER_MS = 2_147_483_647


class InvalidValue(ValueError):
    """A raw value that a type refuses; the message says what is wrong and what is allowed."""


class ValueType(ABC, Generic[T]):
    """One kind of setting value."""

    @property
    @abstractmethod
    def allowed(self) -> str:
        """What the type accepts, in words (docs and error messages)."""

    @abstractmethod
    def parse(self, raw: str) -> T:
        """The value of a raw string; raises InvalidValue."""

    def render(self, value: T) -> str:
        """The string form Ray and HAProxy read."""
        return str(value)

    def refuse(self, problem: str, hint: str = "") -> InvalidValue:
        message = f"{problem}; allowed: {self.allowed}"
        return InvalidValue(f"{message}. {hint}" if hint else message)


class IntRange(ValueType[int]):
    def __init__(self, low: int, high: int, unit: str = "") -> None:
        self.low = low
        self.high = high
        self.unit = unit

    @property
    def allowed(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"integer {self.low}-{self.high}{unit}"

    def parse(self, raw: str) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            hint = ""
            if _DURATION.match(text) or re.fullmatch(r"\d+(\.\d+)?\s*[a-z]+", text):
                hint = "Ray reads this setting as a whole number of seconds, without a unit."
            raise self.refuse("not an integer", hint)
        value = int(text)
        if not self.low <= value <= self.high:
            raise self.refuse("out of range")
        return value


class Port(IntRange):
    def __init__(self) -> None:
        super().__init__(1, 65535)

    @property
    def allowed(self) -> str:
        return "port 1-65535"


class Flag01(ValueType[bool]):
    @property
    def allowed(self) -> str:
        return "0 or 1"

    def parse(self, raw: str) -> bool:
        text = raw.strip()
        if text in ("0", "1"):
            return text == "1"
        hint = "Ray compares the value with the string '1', so anything else silently means off."
        raise self.refuse("not 0 or 1", hint)

    def render(self, value: bool) -> str:
        return "1" if value else "0"


class Duration(ValueType[str]):
    """An HAProxy time value such as 5s or 250ms; the unit is mandatory."""

    @property
    def allowed(self) -> str:
        return "HAProxy duration with a unit: us, ms, s, m, h or d (e.g. 5s, 250ms)"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if re.fullmatch(r"\d+", text):
            raise self.refuse(
                "no unit",
                f"HAProxy reads a bare number as milliseconds ({text} = {text}ms), "
                f"which is almost never what was meant: write {text}s or {text}ms.",
            )
        match = _DURATION.match(text)
        if not match:
            raise self.refuse("not an HAProxy duration")
        millis = int(match.group(1)) * _DURATION_UNIT_MS[match.group(2)]
        if millis <= 0:
            raise self.refuse("must be greater than zero")
        if millis > HAPROXY_MAX_TIMER_MS:
            raise self.refuse("longer than HAProxy's maximum timer (about 24.8 days)")
        return text


class AbsPath(ValueType[str]):
    """An absolute path that Ray writes unquoted into haproxy.cfg."""

    @property
    def allowed(self) -> str:
        return "absolute path without spaces, quotes, '#' or backslashes"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if not text.startswith("/"):
            raise self.refuse("not an absolute path")
        if _UNSAFE_CHARS.search(text):
            raise self.refuse("contains a space, quote, '#' or backslash")
        return os.path.normpath(text)


class FilePath(ValueType[str]):
    """A file the runtime reads itself; relative paths are taken from the working directory."""

    @property
    def allowed(self) -> str:
        return "path of a readable file"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if "\n" in text or "\0" in text:
            raise self.refuse("contains a newline or NUL")
        return os.path.abspath(text)


class PathList(ValueType[str]):
    """PYTHONPATH-style list of absolute directories."""

    @property
    def allowed(self) -> str:
        return "':'-separated absolute paths without spaces or quotes"

    def parse(self, raw: str) -> str:
        parts = [p for p in raw.strip().split(os.pathsep) if p]
        for part in parts:
            if not part.startswith("/") or _UNSAFE_CHARS.search(part):
                raise self.refuse(
                    f"entry {part!r} is not an absolute path without spaces or quotes"
                )
        return os.pathsep.join(parts)


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def split_host_port(text: str) -> tuple[str, int | None]:
    """'h:1', '[::1]:1' or 'h' -> (host, port or None). Raises ValueError on a bad port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(text)
        return host, int(rest[1:])
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, None


class Host(ValueType[str]):
    @property
    def allowed(self) -> str:
        return "IP address or host name"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if not text or not _valid_host(text):
            raise self.refuse("not an IP address or host name")
        return text


class NodeIP(ValueType[str]):
    """The address a Ray node advertises to the others (`ray start --node-ip-address`)."""

    @property
    def allowed(self) -> str:
        return "an IP address of this host (not 0.0.0.0, :: or multicast)"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        try:
            address = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            raise self.refuse(
                "not an IP address", "Ray advertises this address to the other nodes as is."
            ) from None
        if address.is_unspecified or address.is_multicast:
            raise self.refuse("not the address of one interface")
        return str(address)


class HostPort(ValueType[str]):
    @property
    def allowed(self) -> str:
        return "host:port (e.g. head:6379)"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        try:
            host, port = split_host_port(text)
        except ValueError:
            raise self.refuse("port is not a number") from None
        if port is None:
            raise self.refuse("no port")
        if not _valid_host(host):
            raise self.refuse(f"{host!r} is not an IP address or host name")
        if not 1 <= port <= 65535:
            raise self.refuse("port out of range 1-65535")
        return text


class LogTarget(ValueType[str]):
    """What HAProxy's `log` directive accepts as its address."""

    @property
    def allowed(self) -> str:
        return "HAProxy log address: host:port (UDP syslog), /path (unix socket), stdout or stderr"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if not text or _UNSAFE_CHARS.search(text):
            raise self.refuse("empty or contains a space, quote, '#' or backslash")
        if text in ("stdout", "stderr") or text.startswith("/"):
            return text
        address = text.split("@", 1)[1] if "@" in text else text
        try:
            host, port = split_host_port(address)
        except ValueError:
            raise self.refuse("port is not a number") from None
        if not _valid_host(host) or (port is not None and not 1 <= port <= 65535):
            raise self.refuse("not a host[:port], a /path, stdout or stderr")
        return text


class ShellArgs(ValueType[tuple[str, ...]]):
    """Extra `ray start` arguments, split like a shell would."""

    # The runtime owns these: it decides the role, and run-ray needs `--block`.
    RESERVED = ("--head", "--address", "--block")

    @property
    def allowed(self) -> str:
        return "shell-quoted `ray start` arguments, except --head, --address and --block"

    def parse(self, raw: str) -> tuple[str, ...]:
        try:
            args = tuple(shlex.split(raw))
        except ValueError as exc:
            raise self.refuse(f"cannot be split like a shell command ({exc})") from None
        reserved = sorted({a.split("=", 1)[0] for a in args} & set(self.RESERVED))
        if reserved:
            raise self.refuse(
                f"sets {', '.join(reserved)}",
                "The role's own command (head or worker) and RSH_HEAD_ADDRESS decide these.",
            )
        return args

    def render(self, value: tuple[str, ...]) -> str:
        return shlex.join(value)


class PortOrOff(IntRange):
    """A TCP port, or 0 for "this listener is off"."""

    def __init__(self, off_means: str) -> None:
        super().__init__(0, 65535)
        self.off_means = off_means

    @property
    def allowed(self) -> str:
        return f"port 1-65535, or 0 ({self.off_means})"


# A dotted module path and an attribute, as Ray's import_attr reads it: `pkg.mod.attr` or
# `pkg.mod:attr`.
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*[.:]{_IDENTIFIER}$")


class ImportPathList(ValueType[tuple[str, ...]]):
    """Comma-separated Python import paths of callables (e.g. gRPC servicer functions)."""

    @property
    def allowed(self) -> str:
        return "comma-separated import paths `module.attr` or `module:attr`"

    def parse(self, raw: str) -> tuple[str, ...]:
        entries = [part.strip() for part in raw.split(",")]
        paths = [entry for entry in entries if entry]
        if not paths:
            raise self.refuse("no import path")
        for path in paths:
            if not _IMPORT_PATH.match(path):
                raise self.refuse(
                    f"entry {path!r} is not an import path",
                    "Write the module and the function, e.g. "
                    "`my_pb2_grpc.add_MyServicer_to_server`.",
                )
        # The same function listed twice would register the service twice.
        return tuple(dict.fromkeys(paths))

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class Choice(ValueType[str]):
    """One of a few words, case-insensitive; rendered in lower case."""

    def __init__(self, *choices: str, hint: str = "") -> None:
        self.choices = choices
        self.hint = hint

    @property
    def allowed(self) -> str:
        return " or ".join(f"`{c}`" for c in self.choices)

    def parse(self, raw: str) -> str:
        text = raw.strip().lower()
        if text not in self.choices:
            raise self.refuse("not one of these words", self.hint)
        return text


# Ray reads RAY_REDIS_ADDRESS as `host:port`, `redis://host:port` or `rediss://host:port` (TLS),
# comma-separated for shards (ray/_private/services.py get_address).
_REDIS_SCHEMES = ("redis://", "rediss://")


class RedisAddressList(ValueType[tuple[str, ...]]):
    """Ray's external Redis address(es)."""

    @property
    def allowed(self) -> str:
        return "comma-separated `host:port`, `redis://host:port` or `rediss://host:port` (TLS)"

    def parse(self, raw: str) -> tuple[str, ...]:
        entries = [part.strip() for part in raw.split(",") if part.strip()]
        if not entries:
            raise self.refuse("no address")
        for entry in entries:
            address = entry
            for scheme in _REDIS_SCHEMES:
                address = address.removeprefix(scheme)
            if "://" in address:
                raise self.refuse(f"{entry!r} has an unknown scheme")
            try:
                host, port = split_host_port(address)
            except ValueError:
                raise self.refuse(f"{entry!r}: port is not a number") from None
            if port is None:
                raise self.refuse(f"{entry!r} has no port")
            if not _valid_host(host) or not 1 <= port <= 65535:
                raise self.refuse(f"{entry!r} is not host:port")
        return tuple(entries)

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class Password(ValueType[str]):
    """A password: any single line; never shown (`config`, logs) other than masked. (Unlike the
    cluster's token, see auth_token.Secret, Ray takes it only as a command-line argument.)"""

    MASK = "********"

    @property
    def allowed(self) -> str:
        return "one line of text (shown masked)"

    def parse(self, raw: str) -> str:
        # Not stripped: spaces may be part of a password.
        if not raw or "\n" in raw or "\r" in raw or "\0" in raw:
            raise self.refuse("empty, or contains a newline or NUL")
        return raw

    def render(self, value: str) -> str:
        # Rendering is for display (`config`, the start-up log, the docs); the runtime passes
        # the value itself only where Ray needs it.
        return self.MASK


# Ray prefixes every key of the cluster's state in the external store with this namespace;
# KubeRay uses the RayCluster's UID. Characters that are safe in keys, file names and shells.
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$")


class StorageNamespace(ValueType[str]):
    @property
    def allowed(self) -> str:
        return "1-256 characters: letters, digits, `_ . : -` (not first)"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if not _NAMESPACE.match(text):
            raise self.refuse(f"{text!r} is not a storage namespace")
        return text


@dataclass(frozen=True)
class EntryNode:
    """One `host[:port]` of the entry's node list; port None means RSH_HTTP_PORT."""

    host: str
    port: int | None = None

    @property
    def is_address(self) -> bool:
        """An IP address (used as given) rather than a name (resolved by HAProxy)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


class EntryNodeList(ValueType[tuple[EntryNode, ...]]):
    """Comma-separated `host[:port]` entries: the nodes an entry balances over."""

    @property
    def allowed(self) -> str:
        return "comma-separated `host[:port]` (host name or IP address; `[v6]:port`)"

    def parse(self, raw: str) -> tuple[EntryNode, ...]:
        entries = [part.strip() for part in raw.split(",") if part.strip()]
        if not entries:
            raise self.refuse("no node")
        nodes: list[EntryNode] = []
        for entry in entries:
            try:
                host, port = split_host_port(entry)
            except ValueError:
                raise self.refuse(f"{entry!r}: port is not a number") from None
            if host.startswith("[") or not _valid_host(host):
                raise self.refuse(f"{entry!r} is not a host name or IP address")
            if port is not None and not 1 <= port <= 65535:
                raise self.refuse(f"{entry!r}: port out of range 1-65535")
            node = EntryNode(host, port)
            if node in nodes:
                raise self.refuse(f"{entry!r} is listed twice")
            nodes.append(node)
        return tuple(nodes)

    def render(self, value: tuple[EntryNode, ...]) -> str:
        return ",".join(str(node) for node in value)


class ServerNameList(ValueType[tuple[str, ...]]):
    """Names clients use for a TLS server: DNS names (a leading `*.` allowed) or IP addresses."""

    @property
    def allowed(self) -> str:
        return "comma-separated DNS names or IP addresses, e.g. api.example.com,127.0.0.1"

    def parse(self, raw: str) -> tuple[str, ...]:
        names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        for name in names:
            if not _valid_host(name.removeprefix("*.")):
                raise self.refuse(f"{name!r} is neither a DNS name nor an IP address")
        return names

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)
