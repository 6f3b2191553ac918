"""`ConfigError` and the translation of pydantic errors into plain, one-line messages.

Every message has the form ``<key path>: <reason>``. Pydantic's own wording ("Extra inputs
are not permitted", "Input should be ...") never reaches the user, and no message ever
echoes the offending input value: the value could be a password.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

# Error type of `located_error`: a reason that belongs to a key below the failing model.
_LOCATED = "config_located"

# Key names under `defaults` that only make sense per target; see `TARGET_ONLY_KEYS`.
_TARGET_ONLY = ("url", "username", "password", "password_file")

_PLAIN_REASONS = {
    "string_type": "must be text (put it in quotes)",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "path_type": "must be a file path",
    "list_type": "must be a list",
}


class ConfigError(Exception):
    """The configuration is invalid; `errors` holds one line per problem."""

    def __init__(self, errors: Sequence[str], source: str = "<config>") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(f"{self.source}: {line}" for line in self.errors)


def located_error(key: str, reason: str) -> PydanticCustomError:
    """An error raised by a model validator that belongs to one of the model's keys.

    Model validators only know the model's location; this lets them point at the key.
    """
    return PydanticCustomError(_LOCATED, "{reason}", {"reason": reason, "key": key})


def format_path(parts: Iterable[object]) -> str:
    """``("targets", "spe1", "tls")`` -> ``targets.spe1.tls``; ``"[0]"`` parts attach directly.

    Integer parts are list indexes (pydantic's locations): ``0`` becomes ``[0]``.
    """
    text = ""
    for raw in parts:
        part = f"[{raw}]" if isinstance(raw, int) and not isinstance(raw, bool) else str(raw)
        text += part if not text or part.startswith("[") else f".{part}"
    return text


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """Plain one-line messages for every error of `exc`, in order, without duplicates."""
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        line = _describe_one(error, root)
        if line not in lines:
            lines.append(line)
    return lines


def _describe_one(error: typing.Any, root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        # A dict key failed its validator (target names): report it at the key itself.
        loc = loc[:-1]
    if kind == _LOCATED:
        return f"{format_path((*loc, ctx['key']))}: {ctx['reason']}"
    if kind == "value_error":
        return f"{_path_or_top(loc)}: {ctx['error']}"
    if kind == "extra_forbidden":
        return f"{_path_or_top(loc[:-1])}: {_unknown_key_reason(root, loc)}"
    if kind == "missing":
        return f"{_path_or_top(loc[:-1])}: missing required key '{loc[-1]}'"
    reason = _PLAIN_REASONS.get(kind, "invalid value")
    return f"{_path_or_top(loc)}: {reason}"


def _path_or_top(loc: Sequence[object]) -> str:
    return format_path(loc) if loc else "top level"


def _unknown_key_reason(root: type[BaseModel], loc: Sequence[object]) -> str:
    key = str(loc[-1])
    parent = loc[:-1]
    if parent and parent[0] == "defaults" and len(parent) == 1 and key in _TARGET_ONLY:
        return f"'{key}' cannot be set in defaults, only per target"
    known = known_keys_at(root, parent)
    is_collectors = bool(parent) and parent[-1] == "collectors"
    noun = "collector" if is_collectors else "key"
    reason = f"unknown {noun} '{key}'"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        reason += f" (did you mean '{close[0]}'?)"
    if is_collectors or not close:
        reason += f"; known {noun}s: {', '.join(known)}"
    return reason


def known_keys_at(root: type[BaseModel], loc: Sequence[object]) -> list[str]:
    """The keys the model found at `loc` accepts (walks fields, dict and list values and
    Optionals)."""
    model: type[BaseModel] | None = root
    pending = list(loc)
    while pending and model is not None:
        field = model.model_fields.get(str(pending.pop(0)))
        if field is None:
            return []
        model, is_container = _model_in_annotation(field.annotation)
        if is_container and pending:
            pending.pop(0)  # skip the dict key (e.g. the target name) or the list index
    return list(model.model_fields) if model is not None else []


def _model_in_annotation(annotation: object) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return _model_in_annotation(args[1])[0], True
    if origin is list and len(args) == 1:
        return _model_in_annotation(args[0])[0], True
    if origin is typing.Annotated:
        return _model_in_annotation(args[0])
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            found = _model_in_annotation(arg)
            if found[0] is not None:
                return found
    return None, False
