"""What every configuration section shares: frozen models that refuse unknown keys, the error that carries every
problem, and the helpers the cross-field checks use on raw mappings (YAML, environment strings or models)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """Raised with every configuration problem, each as `key.path: message`; `places` says, per problem, where in
    the YAML file its key is (`gateway.yaml:12`), or None (from the environment, a default, or not found)."""

    def __init__(self, problems: list[str], places: list[str | None] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.places = places if places is not None and len(places) == len(problems) else [None] * len(problems)

    def located(self) -> list[str]:
        """Each problem, prefixed by its place in the file where known: `gateway.yaml:12: routes[0].upstream: …`."""
        pairs = zip(self.problems, self.places, strict=True)
        return [f"{place}: {problem}" if place else problem for problem, place in pairs]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)  # (inputs may be secrets)


_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})


def truthy(value: Any) -> bool:
    """A boolean as pydantic reads it (environment overrides arrive as strings)."""
    return value is True or (isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE)


def plain(value: Any) -> Any:
    """Models passed in directly (Settings(routes=[Route(...)])) as the mappings YAML would give."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def url_problems(url: str, *, origin_only: bool, allow_query: bool = False) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:  # (`http://[::1`: an unclosed IPv6 bracket)
        return [f"{url!r} is not an absolute http(s) URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{url!r} is not an absolute http(s) URL"]
    if parts.username or parts.password or parts.fragment or (parts.query and not allow_query):
        return [f"{url!r} must not carry user info, query or fragment"]
    if origin_only and url.endswith("/"):
        return [f"{url!r} must not end with a slash (it is the issuer, compared byte for byte)"]
    if origin_only and parts.path:
        return [f"{url!r} must be an origin without a path"]
    if origin_only and (parts.scheme != parts.scheme.lower() or parts.netloc != parts.netloc.lower()):
        return [f"{url!r} must use a lowercase scheme and host"]
    return []


def join(where: str, key: str) -> str:
    """`where.key`, or `key` at the top level."""
    return f"{where}.{key}" if where else key
