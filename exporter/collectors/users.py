"""Users collector: GetUsers -> number of users per instance, without $archiveadmin.

``$archiveadmin`` is the service provider's system account and exists in every
instance, so it is not a user anyone licenses. Users are also counted by ``mfaStatus``
as SPE spells it (``Disabled`` was captured; ``Enabled`` is assumed; both always
present, other values as reported; a missing status counts as "").
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetUsers"
ARCHIVE_ADMIN = "$archiveadmin"
MFA_STATUSES = ("Disabled", "Enabled")


def parse_users(target: str, instance_id: str, result: Any) -> list[Sample]:
    users = [
        user for user in records_of(result, FUNCTION)
        if user.text("userName").lower() != ARCHIVE_ADMIN
    ]
    mfa = Counter(user.text_or_none("mfaStatus") or "" for user in users)
    out = SampleBuilder(target)
    out.add("mailstore_spe_instance_users", len(users), instance_id=instance_id)
    for status in (*MFA_STATUSES, *sorted(set(mfa) - set(MFA_STATUSES))):
        out.add("mailstore_spe_instance_users_by_mfa_status", mfa[status],
                instance_id=instance_id, mfa_status=status)
    return out.samples


class UsersCollector(PerInstanceCollector):
    name = "users"
    interval = 3600.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_users(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
