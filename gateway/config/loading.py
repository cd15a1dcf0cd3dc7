"""`load_settings`: a YAML file, `${VAR}` interpolated, under the environment and explicit overrides.

Sources, highest first: overrides (init kwargs) > environment (`MCP_GATEWAY_STORE__URL`) > YAML file > defaults.
The YAML mapping is passed to validation explicitly, merged as pydantic-settings merges its own sources (nested
mappings key by key, anything else replaced), so a load never depends on state outside its call.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import EnvSettingsSource

from gateway.config.base import ConfigError, join
from gateway.config.hints import Segment, compose, given_in, line_of, problem_path, syntax_problem, with_suggestion
from gateway.config.settings import Settings

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_settings(path: str | Path | None, **overrides: Any) -> Settings:
    """Read YAML at `path` (or nothing), interpolate `${VAR}`, apply env and `overrides`, validate.

    Raises:
        ConfigError: with every problem found, each prefixed by its key path; an unknown key says which key was
            probably meant, and `places` gives the file and line of each key found in the file.
    """
    data, root = _read(path) if path is not None else ({}, None)
    environment = EnvSettingsSource(Settings)()
    try:
        return Settings.model_validate(_merged(data, environment, overrides))
    except ConfigError as exc:
        problems = [with_suggestion(problem, Settings) for problem in exc.problems]
        places = [_place(path, root, problem_path(p), environment, overrides) for p in exc.problems]
        raise ConfigError(problems, places) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The file's top-level mapping with every `${VAR}` replaced from the environment.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 or YAML, is not a mapping, or names unset variables.
    """
    return _read(path)[0]


def _read(path: str | Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """`read_yaml`, and the file's YAML node tree (the line of each key)."""
    try:
        loaded, root = compose(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([syntax_problem(path, exc)]) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    missing: list[str] = []
    data: dict[str, Any] = _interpolate(loaded or {}, "", missing)
    if missing:
        raise ConfigError(missing, [_place(path, root, problem_path(p)) for p in missing])
    return data, root


def _place(
    path: str | Path | None, root: yaml.Node | None, where: list[Segment], *layers: dict[str, Any]
) -> str | None:
    """`gateway.yaml:12` for a key found in the file and not replaced by the environment or an override."""
    if path is None or not where or any(given_in(layer, where) for layer in layers):
        return None
    line = line_of(root, where)
    return f"{path}:{line}" if line is not None else None


def _interpolate(value: Any, where: str, missing: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, join(where, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.append(f"{where}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _VAR.sub(replace, value)
    return value


def _merged(lowest: dict[str, Any], *higher: dict[str, Any]) -> dict[str, Any]:
    """`lowest` updated by each of `higher` in turn: mappings merge key by key, other values are replaced."""
    merged = dict(lowest)
    for layer in higher:
        for key, value in layer.items():
            below = merged.get(key)
            merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged
