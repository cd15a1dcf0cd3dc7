"""`admin`: the admin API's own listener (gateway.admin), its bearer token and optional mutual TLS.

Off unless `admin.listen.port` is set. It is never served on the public port. A request is let in by the bearer
`admin.token` or, with `admin.tls.client_ca_file`, by a client certificate that CA signed.
"""

from __future__ import annotations

import ssl
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import Model, plain
from gateway.config.listen import host_problem

MIN_TOKEN_LENGTH = 32


class AdminListen(Model):
    host: str = Field(default="127.0.0.1", description="Interface of the admin listener (loopback by default).")
    port: int | None = Field(default=None, ge=1, le=65535, description="Its TCP port; null (default): admin API off.")

    @field_validator("host")
    @classmethod
    def _bindable(cls, value: str) -> str:
        problem = host_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class AdminTls(Model):
    cert_file: Path = Field(description="PEM certificate (chain) the admin listener presents.")
    key_file: Path = Field(description="PEM private key of cert_file.")
    client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA(s): a client certificate they signed is accepted instead of the bearer; without "
        "admin.token, every connection must present one.",
    )

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such file")
        return path

    @model_validator(mode="after")
    def _loadable(self) -> AdminTls:
        """The files as the listener will load them (checked when the configuration is: check-config says so)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(cafile=self.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"cannot load the certificate, key or CA file ({exc.strerror or exc})") from None
        return self


class AdminSettings(Model):
    listen: AdminListen = Field(default_factory=AdminListen)
    token: SecretStr | None = Field(
        default=None,
        description=f"Bearer token every /api/ request needs (at least {MIN_TOKEN_LENGTH} characters; "
        "e.g. ${ADMIN_TOKEN}).",
    )
    tls: AdminTls | None = Field(default=None, description="HTTPS on the admin listener, optionally mutual TLS.")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"needs at least {MIN_TOKEN_LENGTH} characters")
        return value

    @property
    def enabled(self) -> bool:
        return self.listen.port is not None

    @property
    def client_ca(self) -> Path | None:
        return self.tls.client_ca_file if self.tls is not None else None


def admin_problems(data: dict[str, Any]) -> list[str]:
    """An admin listener needs a way in: a token, or client certificates (tolerant of malformed input)."""
    admin = plain(data.get("admin"))
    if not isinstance(admin, dict):
        return []
    listen, tls, public = admin.get("listen"), admin.get("tls"), plain(data.get("listen"))
    port = listen.get("port") if isinstance(listen, dict) else None
    client_ca = tls.get("client_ca_file") if isinstance(tls, dict) else None
    problems = []
    if port is not None and not admin.get("token") and not client_ca:
        problems.append("admin.token: required when admin.listen.port is set (or admin.tls.client_ca_file)")
    public = public if isinstance(public, dict) else {}
    for key in ("port", "metrics_port"):
        if port is not None and str(port) == str(public.get(key, 8080 if key == "port" else 9464)):
            problems.append(
                f"admin.listen.port: must differ from listen.{key} (the admin API has a listener of its own)"
            )
    return problems


def admin_warnings(settings: AdminSettings) -> list[str]:
    """A valid but risky admin listener: its bearer token crossing a network in clear."""
    if not settings.enabled or settings.tls is not None or _loopback(settings.listen.host):
        return []
    return [
        f"admin.listen.host {settings.listen.host} is not loopback and admin.tls is not set: the admin token "
        "crosses the network in clear (put the listener on 127.0.0.1, or configure admin.tls)"
    ]


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
