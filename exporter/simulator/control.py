"""The HTTP control API (``POST /_sim/control``) for tests that cannot reach ``sim.state``.

Body: a JSON object ``{"action": "<name>", ...arguments}``; the actions mirror the SimState
methods. Answers ``{"ok": true, ...}`` or HTTP 400 with ``{"ok": false, "error": "..."}``.
This is not part of the SPE API, so no BOM and no envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .faults import FaultError
from .state import SimState, UnknownObjectError


class ControlError(ValueError):
    """The control request is invalid (HTTP 400)."""


def _arg(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...):
    if name not in payload:
        if default is ...:
            raise ControlError(f"missing argument {name!r}")
        return default
    value = payload[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise ControlError(f"argument {name!r} has the wrong type: {value!r}")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_NUM = (int, float)
_OPT_STR = (str, type(None))
_OPT_BOOL = (bool, type(None))


def _set_fault(s: SimState, p: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in p.items() if k not in ("action", "function", "kind")}
    s.set_fault(_arg(p, "function", str), _arg(p, "kind", str), **params)
    return {}


def _store_flags(s: SimState, p: dict[str, Any]) -> dict[str, Any]:
    extra = {"error": _arg(p, "error", _OPT_STR)} if "error" in p else {}
    s.set_store_flags(
        _arg(p, "instance_id", str),
        _arg(p, "store_id", int),
        needs_upgrade=_arg(p, "needs_upgrade", _OPT_BOOL, None),
        search_indexes_need_rebuild=_arg(p, "search_indexes_need_rebuild", _OPT_BOOL, None),
        requested_state=_arg(p, "requested_state", _OPT_STR, None),
        **extra,
    )
    return {}


ACTIONS: dict[str, Callable[[SimState, dict[str, Any]], dict[str, Any]]] = {
    "set_fault": _set_fault,
    "clear_faults": lambda s, p: s.clear_faults(_arg(p, "function", _OPT_STR, None)) or {},
    "advance": lambda s, p: {"now": s.advance(_arg(p, "seconds", _NUM))},
    "get_time": lambda s, p: {"now": s.now()},
    "set_credentials": lambda s, p: (
        s.set_credentials(_arg(p, "username", str), _arg(p, "password", str)) or {}
    ),
    "stop_instance": lambda s, p: (
        s.stop_instance(_arg(p, "instance_id", str), _arg(p, "error", _OPT_STR, None)) or {}
    ),
    "start_instance": lambda s, p: s.start_instance(_arg(p, "instance_id", str)) or {},
    "set_instance_status": lambda s, p: (
        s.set_instance_status(_arg(p, "instance_id", str), _arg(p, "status", str)) or {}
    ),
    "set_service_provider_access": lambda s, p: (
        s.set_service_provider_access(_arg(p, "instance_id", str), _arg(p, "enabled", bool)) or {}
    ),
    "set_growth_rate": lambda s, p: (
        s.set_growth_rate(_arg(p, "instance_id", str), _arg(p, "messages_per_hour", _NUM)) or {}
    ),
    "remove_instance": lambda s, p: s.remove_instance(_arg(p, "instance_id", str)) or {},
    "add_instance": lambda s, p: s.add_instance(_arg(p, "instance", dict)) or {},
    "set_store_flags": _store_flags,
    "set_instance_host_active": lambda s, p: (
        s.set_instance_host_active(_arg(p, "server_name", str), _arg(p, "active", bool)) or {}
    ),
    "add_message": lambda s, p: s.add_message(_arg(p, "type", str), _arg(p, "text", str)) or {},
    "clear_messages": lambda s, p: s.clear_messages() or {},
}


def apply(state: SimState, payload: Any) -> dict[str, Any]:
    """Run one control action; raises ControlError for anything the caller got wrong."""
    if not isinstance(payload, dict):
        raise ControlError("the body must be a JSON object")
    action = payload.get("action")
    handler = ACTIONS.get(action) if isinstance(action, str) else None
    if handler is None:
        raise ControlError(f"unknown action {action!r}; one of {', '.join(sorted(ACTIONS))}")
    try:
        return {"ok": True, **handler(state, payload)}
    except (FaultError, UnknownObjectError, ValueError, TypeError) as exc:
        raise ControlError(str(exc)) from None
