"""Credentials collector: GetCredentials -> certificate expiry per credential.

Unlike the rest of the API, GetCredentials answers with PascalCase keys. Only
credentials whose settings carry a ``CertificateExpirationDate`` (e.g. Microsoft 365
app certificates) get a series.
"""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetCredentials"


def parse_credentials(target: str, instance_id: str, result: Any) -> list[Sample]:
    out = SampleBuilder(target)
    for credential in records_of(result, FUNCTION):
        settings = credential.record_or_none("Settings")
        if settings is None or not settings.has("CertificateExpirationDate"):
            continue
        out.add(
            "mailstore_spe_credential_certificate_expiry_timestamp_seconds",
            settings.timestamp("CertificateExpirationDate"),
            instance_id=instance_id,
            credential_id=credential.identifier("ID"),
            credential_type=credential.text_or_none("Type"),
        )
    return out.samples


class CredentialsCollector(PerInstanceCollector):
    name = "credentials"
    interval = 3600.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_credentials(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
