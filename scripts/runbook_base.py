#!/usr/bin/env python3
"""Prefix the runbook links of the shipped alert rules with where you publish the runbooks.

The rules in alerts/ link to their runbooks by their path in this repository
(runbook_url: "docs/runbooks/README.md#<alert>"), because this repository cannot know
where you host it. Install them with a base URL in front:

    python3 scripts/runbook_base.py https://git.example.org/ops/mailstore-spe-exporter/blob/main/ \
        < alerts/mailstore-spe.rules.yml > /etc/prometheus/rules/mailstore-spe.rules.yml

The same works on deploy/kubernetes/prometheusrule.yaml. Only the runbook_url lines
change (standard library only, comments and layout are kept).
"""

from __future__ import annotations

import re
import sys

# Quoted (alerts/) or plain (deploy/kubernetes/prometheusrule.yaml) YAML scalars.
RUNBOOK_LINE = re.compile(r'^(\s*runbook_url:\s*"?)(docs/runbooks/)', re.MULTILINE)


def with_base(rules_text: str, base: str) -> str:
    if not re.match(r"^https?://[^/\s]+", base):
        raise ValueError(f"base URL must start with http:// or https://, got {base!r}")
    base = base if base.endswith("/") else base + "/"
    return RUNBOOK_LINE.sub(lambda m: m.group(1) + base + m.group(2), rules_text)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} BASE_URL < rules.yml > rules-with-links.yml", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(with_base(sys.stdin.read(), argv[1]))
    except ValueError as exc:
        print(f"runbook_base.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
