"""Reading, checking and summarising config files.

Steps: read YAML strictly (duplicate keys are errors) -> ``${VAR}`` substitution ->
merge ``defaults`` into each target -> pydantic validation -> plain error messages.
Security warnings (loose file modes, plain http, disabled TLS verification) are logged,
not raised: they do not stop the exporter.
"""

from __future__ import annotations

import copy
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.config.envsubst import substitute_env
from exporter.config.errors import ConfigError, describe_validation_error
from exporter.config.files import FileProblem, bounded_loader, read_text_file
from exporter.config.schema import Config, TargetSettings

log = logging.getLogger("exporter.config")

DEMO_TARGET = "simulator"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a config file; raises `ConfigError`, logs security warnings."""
    config, warnings = _load_with_warnings(Path(path))
    for warning in warnings:
        log.warning("%s", warning)
    return config


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    base_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate already parsed YAML; relative paths resolve against `base_dir`."""
    config = _parse(data, source, Path(base_dir) if base_dir else None, environ)
    for warning in _target_warnings(config):
        log.warning("%s", warning)
    return config


def check_config(path: str | os.PathLike[str]) -> tuple[bool, str]:
    """For ``--config.check``: (valid, printable outcome incl. warnings). Never raises."""
    try:
        config, warnings = _load_with_warnings(Path(path))
    except ConfigError as exc:
        return False, str(exc)
    names = list(config.targets)
    noun = "target" if len(names) == 1 else "targets"
    lines = [f"config OK: {len(names)} {noun} ({', '.join(names)})"]
    lines += [f"warning: {warning}" for warning in warnings]
    return True, "\n".join(lines)


def demo_config(
    url: str, username: str, password: str, ca_file: str | os.PathLike[str] | None
) -> Config:
    """A one-target config named "simulator" for demo mode (values taken literally)."""
    target: dict[str, Any] = {"url": url, "username": username, "password": password}
    if ca_file is not None:
        target["tls"] = {"ca_file": str(ca_file)}
    return _validate({"targets": {DEMO_TARGET: target}}, "<demo>", None)


def _load_with_warnings(path: Path) -> tuple[Config, list[str]]:
    source = str(path)
    data = _read_yaml(path)
    config = _parse(data, source, path.resolve().parent, None)
    warnings = _file_mode_warnings(path, 0o044, "config file") + _target_warnings(config)
    return config, warnings


def _read_yaml(path: Path) -> object:
    source = str(path)
    try:
        text = read_text_file(path)
        data = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: no arbitrary objects
    except FileProblem as exc:
        raise ConfigError([str(exc)], source) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_describe_yaml_error(exc)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"YAML error: {exc}"], source) from None
    if data is None:
        raise ConfigError(["file is empty (or contains only comments)"], source)
    return data


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"YAML syntax error{where}: {exc.problem or exc.context}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys; PyYAML silently keeps the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BoundedLoader = bounded_loader(_StrictLoader)


def _parse(
    data: object, source: str, base_dir: Path | None, environ: Mapping[str, str] | None
) -> Config:
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        raise ConfigError(
            [f"top level must be a mapping with keys web, log, defaults and targets, not {kind}"],
            source,
        )
    errors: list[str] = []
    data = substitute_env(data, os.environ if environ is None else environ, errors)
    if errors:
        raise ConfigError(errors, source)
    assert isinstance(data, dict)
    return _validate(_merge_defaults(data, base_dir), source, base_dir)


def _validate(data: dict[str, Any], source: str, base_dir: Path | None) -> Config:
    try:
        return Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, Config), source) from None


def _merge_defaults(data: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Each target gets the `defaults` keys it does not set itself (nested per key).

    Invalid defaults are not merged, so their errors appear once, under `defaults.`.
    """
    defaults, targets = data.get("defaults"), data.get("targets")
    if not isinstance(defaults, dict) or not isinstance(targets, dict):
        return data
    try:
        TargetSettings.model_validate(defaults, context={"base_dir": base_dir})
    except ValidationError:
        return data
    merged = dict(data)
    merged["targets"] = {
        name: _deep_merge(defaults, target) if isinstance(target, dict | None) else target
        for name, target in targets.items()
    }
    return merged


def _deep_merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        elif value is None and isinstance(result.get(key), dict):
            continue  # an empty section ("tls:") keeps the defaults
        else:
            result[key] = value
    return result


def _target_warnings(config: Config) -> list[str]:
    warnings: list[str] = []
    for name, target in config.targets.items():
        if target.url.startswith("http://"):
            warnings.append(
                f"targets.{name}.url: plain http sends the SPE password unencrypted; use https"
            )
        if target.tls.insecure_skip_verify:
            warnings.append(
                f"targets.{name}.tls.insecure_skip_verify: TLS certificate verification is "
                "disabled; prefer ca_file or thumbprint"
            )
        if target.password_file is not None:
            for warning in _file_mode_warnings(target.password_file, 0o004, "password file"):
                if warning not in warnings:
                    warnings.append(warning)
    return warnings


def _file_mode_warnings(path: Path, loose_bits: int, what: str) -> list[str]:
    """A warning if `path` is readable by the users `loose_bits` selects (POSIX only)."""
    if os.name != "posix":
        return []
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return []
    if not mode & loose_bits:
        return []
    who = "group/others" if loose_bits & 0o040 else "others"
    return [
        f"{what} {path} is readable by {who} (mode {mode:04o}) and may contain secrets; "
        f"run chmod 600 {path}"
    ]
