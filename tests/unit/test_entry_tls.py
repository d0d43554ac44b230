"""TLS at the entry: the settings' checks, every bad certificate file named before start, the
rendered HAProxy config for each plain-HTTP choice, the composed certificate files, expiry
warnings. (The real HAProxy loads these configs in tests/image/test_entry_tls_image.py.)"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from image.tls_cases import build, good_files
from ray_serve_haproxy.entry import render_haproxy_config
from ray_serve_haproxy.entry_tls import certs_dir, write_certs
from ray_serve_haproxy.env_checks import Level, check_entry_tls
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings, Role
from ray_serve_haproxy.supervisor_config import render_entry_supervisor_config
from ray_serve_haproxy.tls_files import check_files, covers
from ray_serve_haproxy.tls_local_ca import ensure_local_ca, issue, make_ca

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
NODES = {"RSH_ENTRY_NODES": "head,worker"}


def entry(load: Load, **env: str) -> EffectiveSettings:
    return load(role=Role.ENTRY, **NODES, **env)


def refusal(load: Load, **env: str) -> str:
    with pytest.raises(InvalidSettings) as caught:
        entry(load, **env)
    return caught.value.report()


def good(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = good_files(tmp_path)()
    return {k: str(tmp_path / v) for k, v in env.items()} | extra


def test_tls_is_off_by_default_and_the_config_is_unchanged(load: Load) -> None:
    config = render_haproxy_config(entry(load).values)
    assert "ssl" not in config and "8443" not in config
    assert "    bind :8000\n" in config and "    bind :9000 proto h2\n" in config


CASES_ROOT: list[Path] = []


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("tls-cases")
    CASES_ROOT.append(root)
    return {case.name: case for case in build(root)}


CASE_NAMES = [
    "key_mismatch",
    "key_mismatch_separate",
    "expired",
    "not_yet_valid",
    "chain_incomplete",
    "chain_out_of_order",
    "no_san",
    "name_not_covered",
    "no_key",
    "encrypted_key",
    "not_pem",
    "missing",
    "unreadable",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_bad_file_is_refused_naming_the_setting_and_the_file(
    load: Load, cases: dict[str, object], name: str
) -> None:
    case = cases[name]
    root = CASES_ROOT[0]
    if name == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file; the image test runs this case as uid 1000")
    report = refusal(load, **case.env(root))  # type: ignore[attr-defined]
    line = next((ln for ln in report.splitlines() if case.setting + "=" in ln), "")  # type: ignore[attr-defined]
    assert line, f"no line names {case.setting}:\n{report}"  # type: ignore[attr-defined]
    assert f"{root}/{case.file}" in line, f"the file is not named:\n{report}"  # type: ignore[attr-defined]
    assert case.says in line, f"expected {case.says!r}:\n{report}"  # type: ignore[attr-defined]


def test_a_key_file_that_is_a_directory_is_unreadable(tmp_path: Path, load: Load) -> None:
    env = good(tmp_path)
    (tmp_path / "keydir").mkdir()
    report = refusal(
        load, **env, RSH_ENTRY_PLAIN_HTTP="off", RSH_ENTRY_TLS_KEY=str(tmp_path / "keydir")
    )
    assert f"{tmp_path}/keydir: cannot read it: Is a directory" in report, report


def test_plain_http_choice_is_required_with_tls(tmp_path: Path, load: Load) -> None:
    report = refusal(load, **good(tmp_path))
    assert "RSH_ENTRY_PLAIN_HTTP='': required with RSH_ENTRY_TLS_CERT" in report, report


def test_tls_settings_without_a_certificate_are_refused(load: Load) -> None:
    report = refusal(load, RSH_ENTRY_PLAIN_HTTP="redirect", RSH_ENTRY_HSTS_MAX_AGE_S="60")
    assert "RSH_ENTRY_PLAIN_HTTP='redirect': only with RSH_ENTRY_TLS_CERT" in report, report
    assert "RSH_ENTRY_HSTS_MAX_AGE_S='60': only with RSH_ENTRY_TLS_CERT" in report, report


def test_https_port_clashing_with_another_port_is_refused(tmp_path: Path, load: Load) -> None:
    report = refusal(
        load, **good(tmp_path), RSH_ENTRY_PLAIN_HTTP="serve", RSH_ENTRY_HTTPS_PORT="8000"
    )
    assert "RSH_ENTRY_HTTPS_PORT='8000': the same port as RSH_HTTP_PORT" in report, report


def test_chain_with_its_intermediate_and_no_issuer_setting_uses_the_given_bundle(
    tmp_path: Path,
) -> None:
    root = make_ca("r")
    inter = make_ca("i", issuer=root)
    leaf = issue(inter, ("a.example",))
    (tmp_path / "full.pem").write_bytes(leaf.cert_pem() + inter.cert_pem() + leaf.key_pem())
    (tmp_path / "root.pem").write_bytes(root.cert_pem())
    (tmp_path / "empty.pem").write_bytes(make_ca("unrelated").cert_pem())
    ok = check_files(
        str(tmp_path / "full.pem"), None, None, None, system_bundle=str(tmp_path / "root.pem")
    )
    assert not ok.problems and len(ok.loaded[0].chain) == 2
    bad = check_files(
        str(tmp_path / "full.pem"), None, None, None, system_bundle=str(tmp_path / "empty.pem")
    )
    assert [p.message.split(":")[0] for p in bad.problems] == ["chain incomplete"], bad.problems
    # The root appended to the file completes the chain by itself.
    (tmp_path / "root-included.pem").write_bytes(
        leaf.cert_pem() + inter.cert_pem() + root.cert_pem() + leaf.key_pem()
    )
    alone = check_files(
        str(tmp_path / "root-included.pem"),
        None,
        None,
        None,
        system_bundle=str(tmp_path / "empty.pem"),
    )
    assert not alone.problems, alone.problems


def test_a_directory_of_certificates_pairs_keys_and_skips_secret_bookkeeping(
    tmp_path: Path,
) -> None:
    root = make_ca("r")
    (tmp_path / "ca.crt").write_bytes(root.cert_pem())
    certs = tmp_path / "certs"
    (certs / "..data").mkdir(parents=True)
    a, b = issue(root, ("a.example",)), issue(root, ("*.b.example",))
    (certs / "a.pem").write_bytes(a.cert_pem() + a.key_pem())
    (certs / "b.crt").write_bytes(b.cert_pem())
    (certs / "b.key").write_bytes(b.key_pem())
    result = check_files(
        str(certs), None, str(tmp_path / "ca.crt"), None, ("a.example", "api.b.example")
    )
    assert not result.problems, result.problems
    assert [item.source.name for item in result.loaded] == ["a", "b"]
    missed = check_files(str(certs), None, str(tmp_path / "ca.crt"), None, ("x.b.c.example",))
    assert "no certificate has 'x.b.c.example'" in str(missed.problems[0])


def test_san_matching() -> None:
    assert covers(["*.example.com"], "api.example.com")
    assert not covers(["*.example.com"], "a.b.example.com")
    assert not covers(["*.example.com"], "example.com")
    assert covers(["127.0.0.1"], "127.0.0.1") and covers(["::1"], "0:0::1")
    assert not covers(["localhost"], "127.0.0.1")


def config_of(load: Load, tmp_path: Path, **env: str) -> str:
    return render_haproxy_config(entry(load, **good(tmp_path), **env).values)


def binds(config: str) -> list[str]:
    return [ln.strip() for ln in config.splitlines() if ln.strip().startswith("bind ")]


def test_plain_http_serve_keeps_both_cleartext_ports_beside_tls(load: Load, tmp_path: Path) -> None:
    config = config_of(load, tmp_path, RSH_ENTRY_PLAIN_HTTP="serve")
    certs = certs_dir(str(tmp_path / "state"))
    assert binds(config) == [
        "bind :8000",
        f"bind :8443 ssl crt {certs} alpn h2,http/1.1",
        "bind :9000 proto h2",
        f"bind :9443 ssl crt {certs} alpn h2",
        "bind 127.0.0.1:9101",
    ]
    assert "ssl-min-ver TLSv1.2" in config and "redirect" not in config
    assert "Strict-Transport-Security" not in config


def test_plain_http_off_keeps_loopback_only_and_no_cleartext_grpc(
    load: Load, tmp_path: Path
) -> None:
    config = config_of(
        load, tmp_path, RSH_ENTRY_PLAIN_HTTP="off", RSH_ENTRY_HSTS_MAX_AGE_S="31536000"
    )
    assert [b.split(" ssl")[0] for b in binds(config)] == [
        "bind 127.0.0.1:8000",
        "bind :8443",
        "bind :9443",
        "bind 127.0.0.1:9101",
    ]
    assert 'set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }' in config


def test_plain_http_redirect_points_at_the_published_https_port(load: Load, tmp_path: Path) -> None:
    config = config_of(load, tmp_path, RSH_ENTRY_PLAIN_HTTP="redirect")
    assert (
        "redirect location https://%[var(txn.tls_host)]:8443%[capture.req.uri] code 308" in config
    )
    assert "bind :9000 proto h2" not in config
    config = config_of(
        load, tmp_path, RSH_ENTRY_PLAIN_HTTP="redirect", RSH_ENTRY_TLS_REDIRECT_PORT="443"
    )
    assert "https://%[var(txn.tls_host)]%[capture.req.uri]" in config


def test_mutual_tls_requires_a_client_certificate_on_every_tls_bind(
    load: Load, tmp_path: Path
) -> None:
    config = config_of(
        load, tmp_path, RSH_ENTRY_PLAIN_HTTP="off", RSH_ENTRY_TLS_CLIENT_CA=str(tmp_path / "ca.crt")
    )
    tls = [b for b in binds(config) if " ssl " in b]
    assert len(tls) == 2 and all(f"verify required ca-file {tmp_path}/ca.crt" in b for b in tls)


def test_grpc_tls_port_zero_and_grpc_off(load: Load, tmp_path: Path) -> None:
    config = config_of(load, tmp_path, RSH_ENTRY_PLAIN_HTTP="off", RSH_ENTRY_GRPC_TLS_PORT="0")
    assert "frontend grpc" not in config
    config = config_of(load, tmp_path, RSH_ENTRY_PLAIN_HTTP="serve", RSH_GRPC_PORT="0")
    assert "frontend grpc" not in config and ":9443" not in config


def test_composed_certificates_are_private_and_the_watcher_runs(load: Load, tmp_path: Path) -> None:
    effective = entry(load, **good(tmp_path), RSH_ENTRY_PLAIN_HTTP="serve")
    lines = write_certs(effective.values)
    composed = certs_dir(effective.values.state_dir) / "server.pem"
    assert oct(composed.stat().st_mode & 0o777) == "0o600"
    assert oct(composed.parent.stat().st_mode & 0o777) == "0o700"
    text = composed.read_text()
    assert text.count("BEGIN CERTIFICATE") == 1 and "BEGIN PRIVATE KEY" in text
    assert lines and "valid until" in lines[0] and not any("WARNING" in ln for ln in lines)
    supervisor = render_entry_supervisor_config(effective)
    assert "[program:tls-watch]" in supervisor and "ray_serve_haproxy.tls_watch" in supervisor
    assert "tls-watch" not in render_entry_supervisor_config(entry(load))


def test_soon_expiring_certificate_is_a_warning_in_check_and_in_the_log(
    load: Load, tmp_path: Path
) -> None:
    root = make_ca("r")
    soon = issue(root, ("localhost",), days=5)
    (tmp_path / "ca.crt").write_bytes(root.cert_pem())
    (tmp_path / "soon.pem").write_bytes(soon.cert_pem() + soon.key_pem())
    effective = entry(
        load,
        RSH_ENTRY_TLS_CERT=str(tmp_path / "soon.pem"),
        RSH_ENTRY_TLS_ISSUER_CA=str(tmp_path / "ca.crt"),
        RSH_ENTRY_PLAIN_HTTP="serve",
    )
    findings = check_entry_tls(effective)
    assert [f.level for f in findings] == [Level.WARN], findings
    assert "in 5.0 days" in findings[0].detail and str(tmp_path / "soon.pem") in findings[0].detail
    assert any(ln.startswith("WARNING") for ln in write_certs(effective.values))
    relaxed = entry(
        load,
        RSH_ENTRY_TLS_CERT=str(tmp_path / "soon.pem"),
        RSH_ENTRY_TLS_ISSUER_CA=str(tmp_path / "ca.crt"),
        RSH_ENTRY_PLAIN_HTTP="serve",
        RSH_ENTRY_TLS_WARN_DAYS="3",
    )
    assert [f.level for f in check_entry_tls(relaxed)] == [Level.OK]


def test_local_ca_makes_a_verifiable_server_and_client_certificate(tmp_path: Path) -> None:
    done = ensure_local_ca(tmp_path / "tls")
    assert len(done) == 3
    assert ensure_local_ca(tmp_path / "tls") == []  # kept on a second run
    result = check_files(
        str(tmp_path / "tls/server.pem"),
        None,
        str(tmp_path / "tls/ca.crt"),
        str(tmp_path / "tls/ca.crt"),
        ("localhost", "127.0.0.1", "::1"),
    )
    assert not result.problems, result.problems
    client = x509.load_pem_x509_certificates((tmp_path / "tls/client.pem").read_bytes())[0]
    client.verify_directly_issued_by(
        x509.load_pem_x509_certificate((tmp_path / "tls/ca.crt").read_bytes())
    )
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    assert dt.datetime.now(dt.UTC) < result.loaded[0].leaf.not_valid_after_utc


def test_the_image_gets_the_cryptography_the_tests_use() -> None:
    """The runtime checks certificates with `cryptography`, which the image has through Ray
    (requirements/image.lock); the dev venv pins the same version."""
    repo = Path(__file__).resolve().parents[2]
    lock = (repo / "requirements" / "image.lock").read_text()
    dev = (repo / "requirements" / "dev.txt").read_text()
    pinned = [ln for ln in dev.splitlines() if ln.startswith("cryptography==")]
    assert pinned and f"\n{pinned[0]} \\" in lock, (pinned, "not in requirements/image.lock")


def test_a_client_ca_path_haproxy_cannot_read_unquoted_is_refused(
    tmp_path: Path, load: Load
) -> None:
    env = good(tmp_path)
    spaced = tmp_path / "my ca.crt"
    spaced.write_bytes((tmp_path / "ca.crt").read_bytes())
    report = refusal(load, **env, RSH_ENTRY_PLAIN_HTTP="off", RSH_ENTRY_TLS_CLIENT_CA=str(spaced))
    assert "RSH_ENTRY_TLS_CLIENT_CA" in report and "contains a space" in report, report
    assert "no PEM certificate" not in report, report
