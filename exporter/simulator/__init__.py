"""A standalone simulator of the MailStore SPE Management API (quirks included).

Imports nothing from the rest of the ``exporter`` package. See README.md for the scenario
format, fault kinds, the control API and which behaviours are confirmed vs assumed.
"""

from .faults import FAULT_KINDS, FaultError
from .scenario import (
    DEFAULT_SCENARIO,
    VARIANTS,
    Scenario,
    ScenarioError,
    apply_variant,
    generate_scenario,
    load_scenario,
)
from .simulator import Simulator
from .state import SimState

__all__ = [
    "DEFAULT_SCENARIO",
    "FAULT_KINDS",
    "VARIANTS",
    "FaultError",
    "Scenario",
    "ScenarioError",
    "SimState",
    "Simulator",
    "apply_variant",
    "generate_scenario",
    "load_scenario",
]
