"""Service provider access: per instance, whether SPE lets the provider call its functions.

A tenant may switch *service provider access* off for its instance (spe-api-notes §3);
SPE then refuses every function taking the instance's ID except the store and
search-index ones. That is a state the tenant chose, not a failure of the exporter:

* ``AccessCollector`` reads the flag with GetArchiveAdminEnabled and exports
  ``mailstore_spe_instance_service_provider_access_enabled``;
* whether that flag is exactly what blocks the calls is unconfirmed, so every refusal a
  per-instance collector meets is also recorded (``AccessLedger.refused``) and turns the
  gauge to 0 until that collector's call for the instance succeeds again;
* a refused instance gets no ``instance_collect_success`` series for that collector (its
  collector run still succeeds), and the status page counts it as skipped.

``AccessLedger`` (exporter.collectors.access_ledger; one per target, shared by its
collectors) logs one line per change of an instance's state, not one per refused call.
"""

from __future__ import annotations

from exporter.collectors.access_ledger import AccessLedger
from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import ParseError
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder
from exporter.spe.errors import SPEAccessRefusedError

FUNCTION = "GetArchiveAdminEnabled"
GAUGE = "mailstore_spe_instance_service_provider_access_enabled"


def parse_access_flag(result: object) -> bool:
    """GetArchiveAdminEnabled's result: a plain bool (assumed, spe-api-notes §7)."""
    if not isinstance(result, bool):
        raise ParseError(FUNCTION, "result", f"expected true or false, got {result!r:.40}")
    return result


def access_samples(target: str, instance_id: str, enabled: bool) -> list[Sample]:
    out = SampleBuilder(target)
    out.add(GAUGE, enabled, instance_id=instance_id)
    return out.samples


class AccessCollector(PerInstanceCollector):
    name = "access"
    interval = 300.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        ledger = ctx.access or AccessLedger(ctx.target)
        try:
            flag = parse_access_flag(ctx.client.call(FUNCTION, instanceID=instance_id))
        except SPEAccessRefusedError:
            # SPE might refuse the flag itself while access is off (unconfirmed).
            flag = False
        ledger.flag_read(instance_id, flag)
        return access_samples(ctx.target, instance_id, ledger.enabled(instance_id))
