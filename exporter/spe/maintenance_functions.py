"""The SPE maintenance functions an operator may schedule, and the arguments each takes.

Only functions that check or refresh state without changing archived data are listed:
verifying stores, refreshing their statistics, retrying stores that failed to open.
CompactStore, RecoverStore, Rebuild*, Upgrade* and the like rewrite store files and stay
out of reach on purpose; the exporter's SPE client refuses every function not listed here
or needed by a collector (see ``exporter.app``).

Argument names and types follow the SPE Management API (spe-api-notes §2.1, §2.3); all
are required, as on SPE 25.x.
"""

from __future__ import annotations

from typing import Literal

ArgType = Literal["string", "number", "bool"]

MAINTENANCE_FUNCTIONS: dict[str, dict[str, ArgType]] = {
    "RefreshAllStoreStatistics": {"instanceID": "string"},
    "RetryOpenStores": {"instanceID": "string"},
    "VerifyStore": {"instanceID": "string", "id": "number", "includeIndexes": "bool"},
    "VerifyStores": {"instanceID": "string", "includeIndexes": "bool"},
}
