"""Command line: flags, signals, demo mode. No logic of its own beyond wiring."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from exporter import __version__

log = logging.getLogger("exporter")

# Seconds the process waits for a clean stop before it exits regardless (a hanging SPE
# call must not keep the process alive after SIGTERM).
STOP_GRACE_SECONDS = 3.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailstore-spe-exporter",
        description="Prometheus exporter for the MailStore SPE Management API. "
        "Without --config.file it runs in demo mode against the bundled SPE simulator.",
    )
    parser.add_argument("--config.file", dest="config_file", help="path of the YAML config")
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file and exit 0 (valid) or 1 (invalid)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        help="override web.listen_address of the config (host:port)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        help="exporter-toolkit style web config: TLS and basic auth for this endpoint",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="enable POST /-/reload (SIGHUP always reloads the config)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log.format", dest="log_format", choices=["logfmt", "json"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _start_demo_simulator():
    from exporter.config import demo_config
    from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

    password = "demo-password"
    sim = Simulator(
        load_scenario(DEFAULT_SCENARIO),
        host="127.0.0.1",
        port=0,
        username="admin",
        password=password,
    )
    sim.start()
    config = demo_config(sim.url, "admin", password, sim.ca_file)
    return sim, config


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from exporter.allocator import tune_allocator

    tune_allocator()  # before any thread allocates (see exporter/allocator.py)
    from exporter.config import ConfigError, check_config, load_config
    from exporter.logsetup import setup_logging

    if args.config_check:
        if not args.config_file:
            print("--config.check needs --config.file", file=sys.stderr)
            return 1
        ok, text = check_config(args.config_file)
        print(text, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1

    simulator = None
    if args.config_file:
        try:
            config = load_config(args.config_file)
        except ConfigError as exc:
            setup_logging(args.log_level or "info", args.log_format or "logfmt")
            print(str(exc), file=sys.stderr)
            return 1
    else:
        simulator, config = _start_demo_simulator()
    if args.listen_address:
        config = config.model_copy(
            update={"web": config.web.model_copy(update={"listen_address": args.listen_address})}
        )
    setup_logging(args.log_level or config.log.level, args.log_format or config.log.format)

    from exporter.app import Exporter
    from exporter.webconfig import WebConfigError, load_web_config

    web_config = None
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except WebConfigError as exc:
            print(str(exc), file=sys.stderr)
            if simulator is not None:
                simulator.stop()
            return 1

    config_file = args.config_file

    def reload_config():
        return load_config(config_file)

    exporter = Exporter(
        config,
        web_config=web_config,
        config_loader=reload_config if config_file else None,
        enable_lifecycle=args.enable_lifecycle,
    )
    try:
        exporter.start()
    except OSError as exc:
        log.error("cannot listen", extra={"address": config.web.listen_address, "error": str(exc)})
        exporter.stop()
        if simulator is not None:
            simulator.stop()
        return 1
    port = exporter.web.address[1] if exporter.web else 0
    if simulator is not None:
        print(
            "Demo mode: no --config.file given, so the bundled SPE simulator runs at "
            f"{simulator.url} and the exporter polls it.\n"
            f"Metrics: http://127.0.0.1:{port}/metrics  Status page: http://127.0.0.1:{port}/",
            flush=True,
        )
    log.info("exporter started", extra={"version": __version__, "targets": len(config.targets)})

    stop = threading.Event()
    reload_requested = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    def on_hup(_signum: int, _frame: object) -> None:
        reload_requested.set()  # handled below, outside the signal handler

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    while not stop.wait(0.2):
        if reload_requested.is_set():
            reload_requested.clear()
            exporter.reload()

    # Stop in a helper thread so a stuck call cannot hold the process beyond the grace time.
    stopper = threading.Thread(target=exporter.stop, daemon=True)
    stopper.start()
    stopper.join(STOP_GRACE_SECONDS)
    if simulator is not None:
        simulator.stop()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads blocked in an SPE call would delay interpreter exit: leave now.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
