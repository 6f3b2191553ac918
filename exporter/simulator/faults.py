"""Fault injection: which faults exist, their parameters, and the thread-safe fault book.

A fault is attached to one function name ("GetStores", "get-status", ...) or to "*" (all).
Several kinds may be active on the same function at once (e.g. latency + http_status); setting
a kind again replaces its parameters. ``times=N`` makes a fault fire N times and then vanish.
"""

from __future__ import annotations

import threading
from typing import Any

ALL_FUNCTIONS = "*"

# kind -> {param: (type(s), default)}; a default of ... means "required".
FAULT_KINDS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "http_status": {"status": ((int,), 500), "body": ((str,), "")},
    "invalid_json": {"body": ((str,), "<html><body><h1>Service Unavailable</h1></body></html>")},
    # content_length: "honest" = header matches the cut body (client gets a complete HTTP
    # response whose JSON is broken); "full" = header claims the whole body and the connection
    # is closed early (client sees an incomplete read).
    "truncated": {"content_length": ((str,), "honest"), "keep_bytes": ((int,), 40)},
    "drop_connection": {},
    "hang": {"seconds": ((int, float), 3600.0)},
    "latency": {"seconds": ((int, float), ...)},
    "api_error": {"message": ((str,), "Simulated failure."), "details": ((str,), "")},
    "long_running": {
        "steps": ((int,), 3),
        "step_seconds": ((int, float), 0.5),
        "outcome": ((str,), "succeeded"),
        "error_message": ((str,), "The operation failed."),
        "never_finish": ((bool,), False),
    },
}
_COMMON_PARAMS = {"times": ((int, type(None)), None)}


class FaultError(ValueError):
    """A fault specification is invalid."""


def validate_fault(kind: str, params: dict[str, Any], where: str = "fault") -> dict[str, Any]:
    """Check a fault's kind and parameters; return the parameters with defaults filled in."""
    if kind not in FAULT_KINDS:
        raise FaultError(f"{where}: unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
    spec = {**FAULT_KINDS[kind], **_COMMON_PARAMS}
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise FaultError(f"{where}: unknown parameter(s) for {kind!r}: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, (types, default) in spec.items():
        if name not in params:
            if default is ...:
                raise FaultError(f"{where}.{name}: required for fault kind {kind!r}")
            out[name] = default
            continue
        value = params[name]
        # bool is an int subclass; only accept it where bool is the declared type.
        if isinstance(value, bool) and bool not in types:
            raise FaultError(f"{where}.{name}: expected {_names(types)}, got a bool")
        if not isinstance(value, types):
            raise FaultError(f"{where}.{name}: expected {_names(types)}, got {value!r}")
        out[name] = value
    _check_ranges(kind, out, where)
    return out


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _check_ranges(kind: str, p: dict[str, Any], where: str) -> None:
    if p["times"] is not None and p["times"] < 1:
        raise FaultError(f"{where}.times: must be >= 1")
    if kind == "http_status" and not 100 <= p["status"] <= 599:
        raise FaultError(f"{where}.status: must be an HTTP status 100..599")
    if kind in ("hang", "latency") and p["seconds"] < 0:
        raise FaultError(f"{where}.seconds: must be >= 0")
    if kind == "truncated":
        if p["content_length"] not in ("honest", "full"):
            raise FaultError(f"{where}.content_length: must be 'honest' or 'full'")
        if p["keep_bytes"] < 0:
            raise FaultError(f"{where}.keep_bytes: must be >= 0")
    if kind == "long_running":
        if p["steps"] < 1:
            raise FaultError(f"{where}.steps: must be >= 1")
        if p["step_seconds"] < 0:
            raise FaultError(f"{where}.step_seconds: must be >= 0")
        if p["outcome"] not in ("succeeded", "failed"):
            raise FaultError(f"{where}.outcome: must be 'succeeded' or 'failed'")


class FaultBook:
    """Active faults per function; safe to use from many request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, dict[str, dict[str, Any]]] = {}

    def set(self, function: str, kind: str, **params: Any) -> None:
        if not isinstance(function, str) or not function:
            raise FaultError("fault function: must be a non-empty string")
        checked = validate_fault(kind, params, f"fault {function}/{kind}")
        with self._lock:
            self._faults.setdefault(function, {})[kind] = checked

    def clear(self, function: str | None = None) -> None:
        with self._lock:
            if function is None:
                self._faults.clear()
            else:
                self._faults.pop(function, None)

    def take(self, function: str) -> dict[str, dict[str, Any]]:
        """Faults that apply to one call of ``function`` (specific ones override "*").

        Counts down ``times`` and drops exhausted faults, so a call "consumes" its faults.
        """
        with self._lock:
            merged: dict[str, dict[str, Any]] = {}
            for key in (ALL_FUNCTIONS, function):
                for kind, params in list(self._faults.get(key, {}).items()):
                    merged[kind] = params
                    if params["times"] is not None:
                        params["times"] -= 1
                        if params["times"] <= 0:
                            del self._faults[key][kind]
            return {kind: dict(params) for kind, params in merged.items()}

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        with self._lock:
            return {
                fn: {kind: dict(p) for kind, p in kinds.items()}
                for fn, kinds in self._faults.items()
            }
