"""``mailstore-spe-simulator``: serve a scenario until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .scenario import DEFAULT_SCENARIO, VARIANTS, ScenarioError, apply_variant, load_scenario
from .simulator import Simulator

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "simulator-demo-password"  # documented demo credential, not a secret


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailstore-spe-simulator",
        description="Simulated MailStore SPE Management API (HTTPS) for tests and demos.",
    )
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario YAML file")
    parser.add_argument(
        "--variant",
        choices=list(VARIANTS),
        default="default",
        help="reading of unverified SPE behaviour to apply on top of the scenario",
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 8474),
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8474)",
    )
    parser.add_argument("--username", default=DEMO_USERNAME)
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--certfile", help="PEM certificate (default: a fresh self-signed one)")
    parser.add_argument("--keyfile", help="PEM private key for --certfile")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        scenario = apply_variant(load_scenario(args.scenario), args.variant)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host, port = args.listen
    sim = Simulator(
        scenario,
        host=host,
        port=port,
        username=args.username,
        password=args.password,
        certfile=args.certfile,
        keyfile=args.keyfile,
    )
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"MailStore SPE simulator listening on {sim.url}", flush=True)
    print(
        f"  credentials: {args.username} / (the --password value; demo default {DEMO_PASSWORD!r})",
        flush=True,
    )
    print(f"  certificate: {sim.ca_file}", flush=True)
    print(f"  thumbprint (SHA-1): {sim.thumbprint_sha1}", flush=True)
    print(f"  scenario: {args.scenario} ({len(scenario.instances)} instances)", flush=True)
    while not stop.wait(0.5):
        pass
    sim.stop()
    print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
