"""Users collector: GetUsers -> number of users per instance, without $archiveadmin.

``$archiveadmin`` is the service provider's system account and exists in every
instance, so it is not a user anyone licenses.
"""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext, Sample
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.collectors.samples import SampleBuilder

FUNCTION = "GetUsers"
ARCHIVE_ADMIN = "$archiveadmin"


def parse_users(target: str, instance_id: str, result: Any) -> list[Sample]:
    names = [user.text("userName") for user in records_of(result, FUNCTION)]
    users = sum(1 for name in names if name.lower() != ARCHIVE_ADMIN)
    out = SampleBuilder(target)
    out.add("mailstore_spe_instance_users", users, instance_id=instance_id)
    return out.samples


class UsersCollector(PerInstanceCollector):
    name = "users"
    interval = 3600.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_users(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
