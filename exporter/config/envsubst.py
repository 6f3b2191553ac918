"""``${VAR}`` and ``${VAR:-default}`` substitution in every string value of the raw config.

Runs before validation so that substituted values are validated like literal ones
(``concurrency: ${SPE_CONCURRENCY:-8}`` works). ``$${`` stands for a literal ``${``.
Only values are substituted, never keys. Messages name the variable and the key path,
never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from exporter.config.errors import format_path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Alternatives, in order: escaped "$${", a complete "${...}", an unclosed "${".
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


def substitute_env(
    data: object, environ: Mapping[str, str], errors: list[str], path: tuple[object, ...] = ()
) -> object:
    """A copy of `data` with references replaced; problems are appended to `errors`."""
    if isinstance(data, dict):
        return {
            key: substitute_env(value, environ, errors, (*path, key)) for key, value in data.items()
        }
    if isinstance(data, list):
        return [
            substitute_env(value, environ, errors, (*path, f"[{index}]"))
            for index, value in enumerate(data)
        ]
    if isinstance(data, str) and "${" in data:
        return _substitute_string(data, environ, errors, format_path(path) or "top level")
    return data


def _substitute_string(text: str, environ: Mapping[str, str], errors: list[str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            errors.append(f"{where}: unclosed '${{' (write $${{ for a literal '${{')")
            return token
        name, has_default, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            errors.append(
                f"{where}: invalid variable reference; use ${{NAME}} or ${{NAME:-default}}"
            )
            return token
        value = environ.get(name)
        # As in POSIX shells, ":-" also replaces a variable that is set but empty.
        if value is None or (has_default and value == ""):
            if has_default:
                return default
            errors.append(f"{where}: environment variable {name} is not set")
            return token
        return value

    return _TOKEN.sub(replace, text)
