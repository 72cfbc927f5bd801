"""A setting that cannot take its value is named, without the value (README): the value
may be a password, a token or a URL with credentials. Before, ``VIR_METRICS_ALLOW`` and
``VIR_TRUSTED_PROXIES`` quoted it (``vir: VIR_METRICS_ALLOW: 'hunter2' is not an IP
address or network``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from support.service import free_port, run_vir, service_env

from vir import cli
from vir.api.identity import proxy_trust
from vir.api.metrics import parse_allow
from vir.domain.errors import ConfigurationError
from vir.keyholder.settings import KeyholderSettings
from vir.portal.settings import PortalSettings
from vir.settings import Settings

# Secret-looking and invalid for most settings: not a number, a boolean, an address, a
# choice, a URL of the expected kind.
SECRETS = ("hunter2-S3cr3t", "postgresql://vir:hunter2-S3cr3t@db.example/vir", "-7hunter2")


def _variables(model: type[BaseSettings]) -> list[str]:
    prefix = model.model_config.get("env_prefix", "")
    names = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.append(str(choices[0]) if choices else (prefix + name).upper())
    return names


MODELS = (Settings, KeyholderSettings, PortalSettings)
CASES = [(model, variable) for model in MODELS for variable in _variables(model)]


@pytest.mark.parametrize(("model", "variable"), CASES, ids=[variable for _, variable in CASES])
def test_no_setting_echoes_its_value(
    model: type[BaseSettings], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for secret in SECRETS:
        monkeypatch.setenv(variable, secret)
        try:
            settings = model()
        except ValidationError as error:
            lines = cli.setting_errors(error)
            assert lines and all(variable in line for line in lines), lines
            assert not any(secret in line for line in lines), lines
            continue
        # Accepted as text: what start-up makes of it must not quote it either.
        _refusal_hides(secret, parse_allow, getattr(settings, "metrics_allow", ""))
        _refusal_hides(
            secret,
            lambda text: proxy_trust("proxy", text),
            getattr(settings, "trusted_proxies", ""),
        )


def _refusal_hides(secret: str, check: Callable[[str], object], value: str) -> None:
    try:
        check(value)
    except ConfigurationError as refused:
        assert secret not in refused.detail


@pytest.mark.parametrize("secret", SECRETS)
def test_address_lists_name_the_setting_not_the_value(secret: str) -> None:
    with pytest.raises(ConfigurationError) as allow:
        parse_allow(f"127.0.0.1, {secret}", "VIR_KEYHOLDER_METRICS_ALLOW")
    assert allow.value.detail.startswith("VIR_KEYHOLDER_METRICS_ALLOW: entry 2 ")
    with pytest.raises(ConfigurationError) as proxies:
        proxy_trust("proxy", secret, "VIR_KEYHOLDER_")
    assert proxies.value.detail.startswith("VIR_KEYHOLDER_TRUSTED_PROXIES: entry 1 ")
    for refused in (allow.value, proxies.value):
        assert secret not in refused.detail and "hunter2" not in refused.detail


@pytest.mark.parametrize(
    ("variable", "extra"),
    [
        ("VIR_METRICS_ALLOW", {}),
        ("VIR_TRUSTED_PROXIES", {"VIR_TLS_MODE": "proxy"}),
    ],
)
def test_vir_serve_refuses_without_the_value(
    tmp_path: Path, variable: str, extra: dict[str, str]
) -> None:
    tmp_path.chmod(0o700)
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    result = run_vir(tmp_path, env | extra | {variable: "hunter2"}, "serve", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vir: {variable}: entry 1 is not an IP address")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "url", ["hunter2-S3cr3t", "postgresql+psycopg://vir:hunter2-S3cr3t@db:notaport/vir"]
)
@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (("db", "upgrade"), "VIR_DATABASE_URL"),
        (("keyholder", "db", "upgrade"), "VIR_KEYHOLDER_DATABASE_URL"),
    ],
)
def test_a_database_url_that_is_none_is_refused_without_it(
    tmp_path: Path, url: str, command: tuple[str, ...], variable: str
) -> None:
    """Before: sqlalchemy's ArgumentError or the port parser's ValueError as a traceback,
    the latter quoting part of the URL."""
    env = service_env(tmp_path, free_port()) | {variable: url}
    result = run_vir(tmp_path, env, *command, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("vir: the database URL setting (VIR_DATABASE_URL")
    assert len(result.stderr.splitlines()) == 1
    for part in ("hunter2", "notaport", "Traceback"):
        assert part not in result.stderr + result.stdout
