"""What makes a configuration problem quick to fix: where its key is in the YAML file (`gateway.yaml:12`), and for
an unknown key the key that was probably meant (`routes[0].upstrem: unknown key; did you mean 'upstream'?`)."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

Segment = str | int
_SEGMENT = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
UNKNOWN_KEY = "unknown key"


def key_path(where: str) -> list[Segment]:
    """`routes[0].upstream` as ["routes", 0, "upstream"]."""
    return [int(index) if index else name for index, name in _SEGMENT.findall(where)]


def problem_path(problem: str) -> list[Segment]:
    """The key path a `key.path: message` problem names ([] when it names none, like a file-level problem)."""
    where, sep, _ = problem.partition(": ")
    return key_path(where) if sep and not where.startswith("(") else []  # (`(top level): …`)


def with_suggestion(problem: str, model: type[BaseModel]) -> str:
    """`…: unknown key` with `; did you mean 'x'?` added when a field of the model at that place is close."""
    where, _, message = problem.partition(": ")
    path = key_path(where)
    if message != UNKNOWN_KEY or not path or not isinstance(path[-1], str):
        return problem
    names = field_names(model, path[:-1])
    close = difflib.get_close_matches(path[-1], sorted(names), n=1, cutoff=0.7)
    return f"{problem}; did you mean {close[0]!r}?" if close else problem


def field_names(model: type[BaseModel], path: Sequence[Segment]) -> set[str]:
    """The keys (field names and aliases) the models at `path` accept; a union's tag in the path (pydantic's
    `upstream_auth.static`) selects its member. Empty when the path leads to no model."""
    models, keyed = [model], False
    for segment in path:
        if isinstance(segment, int):
            continue  # (list elements: already unwrapped)
        if keyed:  # a key of a dict of models
            keyed = False
            continue
        found: list[type[BaseModel]] = []
        for candidate in models:
            info = _field(candidate, segment)
            if info is not None:
                inner, keyed = _models_in(info.annotation)
                found += inner
        tagged = [m for m in models if _tag(m) == segment]
        if not found and not tagged:
            return set()
        models = found or tagged
    names: set[str] = set()
    for candidate in models:
        for name, info in candidate.model_fields.items():
            names.add(name)
            if isinstance(info.alias, str):
                names.add(info.alias)
    return names


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _tag(model: type[BaseModel]) -> str | None:
    """The value of a discriminated union member's `type` literal (`static` for StaticUpstreamAuth)."""
    info = model.model_fields.get("type")
    values = get_args(info.annotation) if info is not None and get_origin(info.annotation) is not None else ()
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


def _models_in(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """The models a field holds (through Optional, unions, lists and Annotated), and whether they are dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (dict, Mapping):
        return _models_in(get_args(annotation)[1])[0], True
    if origin in (Union, types.UnionType, list, tuple, set, frozenset):
        models: list[type[BaseModel]] = []
        for arg in get_args(annotation):
            models += _models_in(arg)[0]
        return models, False
    return [], False


# -- places in the file ------------------------------------------------------------------------------------------


def compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML document and its node tree (for the line of each key), parsed once.

    Raises:
        yaml.YAMLError: not YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def syntax_problem(path: str | Path, exc: yaml.YAMLError) -> str:
    """`gateway.yaml:12:5: not valid YAML: <problem> (<context> at 11:3)`, from the error's marks where it has them."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{path}: not valid YAML ({exc})".replace("\n", " ")
    mark = exc.problem_mark
    text = f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        text += f" ({exc.context} at {exc.context_mark.line + 1}:{exc.context_mark.column + 1})"
    return text


def line_of(root: yaml.Node | None, path: Sequence[Segment]) -> int | None:
    """The 1-based line of the key at `path`. A path that ends one step beyond the file (a required key that is
    missing) gives the line of the mapping that lacks it; one that reaches into a scalar (pydantic's inner steps
    of a type) gives the scalar's line; anything else None."""
    node, line = root, None
    for depth, segment in enumerate(path):
        if isinstance(node, yaml.MappingNode) and segment == _scalar(node, "type") and _step(node, segment) is None:
            continue  # pydantic names a tagged union's member: `upstream_auth.static.value`
        step = _step(node, segment)
        if step is None:
            missing = len(path) - depth
            if isinstance(node, yaml.ScalarNode) or (isinstance(node, yaml.MappingNode) and missing == 1):
                return line if line is not None else _line(node)
            return None
        node, line = step
    return line


def _step(node: yaml.Node | None, segment: Segment) -> tuple[yaml.Node, int] | None:
    """The child at `segment` and the line that names it (the key's line; a list item's own line)."""
    if isinstance(node, yaml.MappingNode) and isinstance(segment, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == segment:
                return value, _line(key)
    if isinstance(node, yaml.SequenceNode) and isinstance(segment, int) and segment < len(node.value):
        item = node.value[segment]
        return item, _line(item)
    return None


def _scalar(node: yaml.MappingNode, key: str) -> str | None:
    step = _step(node, key)
    return str(step[0].value) if step is not None and isinstance(step[0], yaml.ScalarNode) else None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def given_in(layer: Mapping[str, Any], path: Sequence[Segment]) -> bool:
    """Whether `layer` (the environment, or explicit overrides) sets the value at `path` or one above it, which
    then replaced the file's (mappings merge key by key; anything else replaces)."""
    value: Any = layer
    for segment in path:
        if not isinstance(value, Mapping) or segment not in value:
            return False
        value = value[segment]
        if not isinstance(value, Mapping):
            return True
    return bool(path)
