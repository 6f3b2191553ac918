"""Base class of collectors that query every running instance separately."""

from __future__ import annotations

from exporter.collectors.base import (
    CollectContext,
    Collector,
    CollectResult,
    Sample,
    describe_error,
    map_instances,
)
from exporter.collectors.instances import fetch_instance_rows
from exporter.collectors.samples import SampleBuilder
from exporter.exposition import render_blocks

RUNNING = "running"


def running_instance_ids(ctx: CollectContext) -> list[str]:
    """Ids of running instances: a stopped instance cannot answer, so it is not asked.

    Uses the instances collector's latest list; without one, asks GetInstances.
    """
    refs = ctx.known_instances
    if refs is None:
        refs = [row.ref() for row in fetch_instance_rows(ctx)]
    return list(dict.fromkeys(ref.instance_id for ref in refs if ref.status == RUNNING))


class PerInstanceCollector(Collector):
    """Runs ``collect_instance`` for every running instance, isolating failures.

    A failed instance gets outcome False and contributes no samples (nothing stale is
    kept); the run succeeds only if every instance succeeded.
    """

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        raise NotImplementedError

    def run(self, ctx: CollectContext) -> CollectResult:
        instance_ids = running_instance_ids(ctx)

        def work(instance_id: str) -> list[Sample] | dict[str, bytes]:
            samples = self.collect_instance(ctx, instance_id)
            if not ctx.prerender:
                return samples
            unique = SampleBuilder(ctx.target)
            unique.extend(samples)
            return render_blocks(unique.samples)

        results = map_instances(ctx, instance_ids, work)
        out = SampleBuilder(ctx.target)
        rendered: dict[str, dict[str, bytes]] = {}
        outcomes: dict[str, bool] = {}
        errors: list[str] = []
        for instance_id, result in results.items():
            if isinstance(result, Exception):
                outcomes[instance_id] = False
                errors.append(f"instance {instance_id}: {describe_error(result)}")
            elif isinstance(result, dict):
                outcomes[instance_id] = True
                rendered[instance_id] = result
            else:
                outcomes[instance_id] = True
                out.extend(result)
        return CollectResult(
            samples=out.samples,
            success=all(outcomes.values()),
            instance_outcomes=outcomes,
            errors=errors,
            rendered=rendered if ctx.prerender else None,
        )
