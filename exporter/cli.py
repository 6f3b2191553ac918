"""Command line: flags, the choice of mode (config file or demo), start-up and signals.

No logic of its own beyond wiring. Three steps, one function each:

* :func:`choose_config` - an explicit ``--config.file``, else ``--demo`` (bundled SPE
  simulator), else the documented default path, else exit 2 with one line saying what to do.
  The demo never starts by omission: a service that loses its flag must not quietly
  monitor a simulator.
* :func:`start_exporter` - web config, the exporter itself, the start-up banner.
* :class:`SignalLoop` - SIGTERM/SIGINT stop, SIGHUP reloads where the platform has it
  (Windows has no SIGHUP: there ``POST /-/reload`` is the way).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter import __version__

log = logging.getLogger("exporter")

# Seconds the process waits for a clean stop before it exits regardless (a hanging SPE
# call must not keep the process alive after SIGTERM).
STOP_GRACE_SECONDS = 3.0


def default_config_file() -> Path:
    """The one place looked at when neither --config.file nor --demo is given."""
    if sys.platform == "win32":
        base = os.environ.get("ProgramData") or r"C:\ProgramData"
        return Path(base) / "mailstore-spe-exporter" / "config.yml"
    return Path("/etc/mailstore-spe-exporter/config.yml")


DEMO_SIMULATOR_ADDRESS = "127.0.0.1:0"
SIMULATOR_EXTRA_HINT = (
    "{what} needs the optional extra 'simulator' (package cryptography): "
    "pip install 'mailstore-spe-exporter[simulator]'"
)
# Prometheus' own spelling "warn" is accepted next to Python's "warning".
LOG_LEVEL_CHOICES = ["debug", "info", "warn", "warning", "error"]


class CliError(Exception):
    """Ends the process with one line on stderr and the given exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _HelpWithDefaults(argparse.HelpFormatter):
    """Appends "(default: X)" to every option that has a real default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailstore-spe-exporter",
        description="Prometheus exporter for the MailStore SPE Management API. Give "
        f"--config.file (or put the config at {default_config_file()}), or run --demo "
        "against the bundled SPE simulator.",
        formatter_class=_HelpWithDefaults,
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help=f"path of the YAML config (default: {default_config_file()} if it exists)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file and exit 0 (valid) or 1 (invalid)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: start the bundled SPE simulator and poll it "
        "(needs the 'simulator' extra); its alerts fire, never use it in production",
    )
    parser.add_argument(
        "--demo.simulator-address",
        dest="simulator_address",
        metavar="HOST:PORT",
        default=DEMO_SIMULATOR_ADDRESS,
        help="host:port of the demo simulator (port 0: any free port)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        help="override web.listen_address of the config (host:port; config default 0.0.0.0:9474)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="exporter-toolkit style web config: TLS and basic auth for this endpoint",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="enable POST /-/reload (SIGHUP always reloads the config where the platform has "
        "SIGHUP; on Windows this is the only way to reload)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=LOG_LEVEL_CHOICES,
        help="override log.level of the config (config default: info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=["logfmt", "json"],
        help="override log.format of the config (config default: logfmt)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# --- step 1: which config ---------------------------------------------------------------------


@dataclass
class Chosen:
    config: Any  # exporter.config.Config (imported lazily: --help stays fast)
    config_file: str | None  # None in demo mode: nothing to reload
    simulator: Any = None  # the running demo simulator, if any


def choose_config(args: argparse.Namespace) -> Chosen:
    """The config to run with, from the flags; raises CliError with what to do otherwise."""
    from exporter.config import ConfigError, load_config

    if args.demo:
        return start_demo(args.simulator_address)
    config_file = args.config_file or _default_config_file_or_fail()
    try:
        return Chosen(load_config(config_file), config_file)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _default_config_file_or_fail() -> str:
    path = default_config_file()
    if not path.is_file():
        raise CliError(
            f"no config: give --config.file=PATH, put one at {path}, "
            "or run the demo against the bundled simulator with --demo",
            code=2,
        )
    return str(path)


def _import_simulator(what: str) -> Any:
    """The simulator package, or CliError naming the extra when it is not installed."""
    try:
        import exporter.simulator
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] == "cryptography":
            raise CliError(SIMULATOR_EXTRA_HINT.format(what=what)) from None
        raise
    return exporter.simulator


def start_demo(address: str) -> Chosen:
    """Start the bundled SPE simulator and a one-target config pointing at it."""
    from exporter.config import demo_config
    from exporter.config.values import split_listen_address

    try:
        host, port = split_listen_address(address)
    except ValueError as exc:
        raise CliError(f"--demo.simulator-address={address}: {exc}", code=2) from None
    simulator = _import_simulator("demo mode")
    password = "demo-password"
    sim = simulator.Simulator(
        simulator.load_scenario(simulator.DEFAULT_SCENARIO),
        host=host, port=port, username="admin", password=password,
    )
    try:
        sim.start()
    except OSError as exc:
        reason = exc.strerror or exc
        raise CliError(f"demo simulator cannot listen on {address}: {reason}") from None
    return Chosen(demo_config(sim.url, "admin", password, sim.ca_file), None, sim)


# --- step 2: start-up -------------------------------------------------------------------------


def start_exporter(args: argparse.Namespace, chosen: Chosen):
    """Build and start the exporter; raises CliError when it cannot serve."""
    from exporter.app import Exporter
    from exporter.config import load_config
    from exporter.webconfig import WebConfigError, load_web_config

    web_config = None
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except WebConfigError as exc:
            raise CliError(str(exc)) from None

    config_file = chosen.config_file
    exporter = Exporter(
        chosen.config,
        web_config=web_config,
        config_loader=(lambda: load_config(config_file)) if config_file else None,
        enable_lifecycle=args.enable_lifecycle,
    )
    try:
        exporter.start()
    except OSError as exc:
        exporter.stop()
        address = chosen.config.web.listen_address
        log.error("cannot listen", extra={"address": address, "error": str(exc)})
        raise CliError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    if chosen.simulator is not None:
        port = exporter.web.address[1] if exporter.web else 0
        print(
            "Demo mode (--demo): the bundled SPE simulator runs at "
            f"{chosen.simulator.url} and the exporter polls it.\n"
            f"Metrics: http://127.0.0.1:{port}/metrics  Status page: http://127.0.0.1:{port}/",
            flush=True,
        )
    log.info(
        "exporter started", extra={"version": __version__, "targets": len(chosen.config.targets)}
    )
    return exporter


# --- step 3: signals --------------------------------------------------------------------------


class SignalLoop:
    """Waits for a stop signal; turns SIGHUP into a reload outside the signal handler."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.stop = threading.Event()
        self.reload_requested = threading.Event()

    def install(self) -> list[str]:
        """Install the handlers (main thread only); returns the signal names handled."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        handled = ["SIGTERM", "SIGINT"]
        sigbreak = getattr(signal, "SIGBREAK", None)  # Windows only: Ctrl+Break
        if sigbreak is not None:
            signal.signal(sigbreak, self._on_stop)
            handled.append("SIGBREAK")
        sighup = getattr(signal, "SIGHUP", None)  # absent on Windows
        if sighup is not None:
            signal.signal(sighup, self._on_hup)
            handled.append("SIGHUP")
        else:
            log.info("no SIGHUP on this platform: reload with POST /-/reload "
                     "(needs --web.enable-lifecycle)")
        return handled

    def _on_stop(self, signum: int, _frame: object) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        log.info("stopping", extra={"signal": name})
        self.stop.set()

    def _on_hup(self, _signum: int, _frame: object) -> None:
        self.reload_requested.set()  # handled in run(), outside the signal handler

    def run(self, tick: float = 0.2) -> None:
        while not self.stop.wait(tick):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.exporter.reload()


def stop_within_grace(exporter: Any, simulator: Any) -> None:
    # Stop in a helper thread so a stuck call cannot hold the process beyond the grace time.
    stopper = threading.Thread(target=exporter.stop, daemon=True)
    stopper.start()
    stopper.join(STOP_GRACE_SECONDS)
    if simulator is not None:
        simulator.stop()


# --- main -------------------------------------------------------------------------------------


def _check_listen_address(address: str | None) -> None:
    if address is None:
        return
    from exporter.config.values import split_listen_address

    try:
        split_listen_address(address)
    except ValueError as exc:
        raise CliError(f"--web.listen-address={address}: {exc}", code=2) from None


def _check_config(args: argparse.Namespace) -> int:
    from exporter.config import check_config

    try:
        path = args.config_file or _default_config_file_or_fail()
    except CliError as exc:
        print(f"--config.check: {exc}", file=sys.stderr)
        return 1
    ok, text = check_config(path)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo and (args.config_file or args.config_check):
        parser.error("--demo runs the bundled simulator: it takes no --config.file/--config.check")
    from exporter.allocator import tune_allocator

    allocator_settings = tune_allocator()  # before any thread allocates (exporter/allocator.py)
    from exporter.logsetup import setup_logging

    if args.config_check:
        return _check_config(args)

    chosen = None
    try:
        _check_listen_address(args.listen_address)
        chosen = choose_config(args)
        if args.listen_address:
            web = chosen.config.web.model_copy(update={"listen_address": args.listen_address})
            chosen.config = chosen.config.model_copy(update={"web": web})
        config_log = chosen.config.log
        setup_logging(args.log_level or config_log.level, args.log_format or config_log.format)
        log.debug("allocator settings", extra={
            "applied": allocator_settings or "none (not glibc, or set by environment)"})
        exporter = start_exporter(args, chosen)
    except CliError as exc:
        print(exc, file=sys.stderr)
        if chosen is not None and chosen.simulator is not None:
            chosen.simulator.stop()
        return exc.code

    loop = SignalLoop(exporter)
    loop.install()
    loop.run()
    stop_within_grace(exporter, chosen.simulator)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads blocked in an SPE call would delay interpreter exit: leave now.
    os._exit(0)


def simulator_main() -> int:
    """Entry point of ``mailstore-spe-simulator``: the simulator's own command line, or one
    line naming the extra when the simulator's dependency is missing."""
    try:
        _import_simulator("mailstore-spe-simulator")
    except CliError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    from exporter.simulator.cli import main as simulator_cli

    return simulator_cli()


if __name__ == "__main__":
    sys.exit(main())
