"""The config schema: pydantic models with ``extra="forbid"`` on every level.

Values are normalised while validating (durations to seconds, URLs to
``scheme://host:port``, thumbprints to upper-case hex, relative paths to absolute paths
against the config file's directory, passed as validation context ``base_dir``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from exporter.collectors import ALL_COLLECTORS
from exporter.config import values
from exporter.config.cron import parse_crontab, parse_timezone
from exporter.config.errors import located_error
from exporter.spe.maintenance_functions import MAINTENANCE_FUNCTIONS

# Collector name -> default interval in seconds, in display order: declared by each
# collector class (exporter.collectors), nothing to keep in step here.
COLLECTOR_DEFAULTS: dict[str, float] = {
    name: cls.interval for name, cls in ALL_COLLECTORS.items()
}

# `max_data_age: auto` keeps data for this many collector intervals.
AUTO_MAX_DATA_AGE_INTERVALS = 3

# "warn" is Prometheus' spelling of "warning"; both are accepted.
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
LOG_FORMATS = ("logfmt", "json")


def _one_of(*choices: str) -> BeforeValidator:
    """Case-insensitive choice with a message listing the choices."""

    def check(value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError(f"must be one of: {', '.join(choices)}")

    return BeforeValidator(check)


def _int_range(low: int, high: int) -> BeforeValidator:
    def check(value: object) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return BeforeValidator(check)


def _non_empty_text(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _max_data_age(value: object) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return values.parse_duration(value)
    except ValueError:
        raise ValueError("must be 'auto' or a duration like 30s, 5m or 1h") from None


def _base_dir(info: ValidationInfo) -> Path | None:
    return (info.context or {}).get("base_dir")


Duration = Annotated[float, BeforeValidator(values.parse_duration)]
Interval = Annotated[float, BeforeValidator(values.parse_interval)]
MaxDataAge = Annotated[float | Literal["auto"], BeforeValidator(_max_data_age)]
NonEmptyText = Annotated[str, AfterValidator(_non_empty_text)]
TargetName = Annotated[str, BeforeValidator(values.check_target_name)]


class StrictModel(BaseModel):
    """Unknown keys are errors; an empty YAML section (``tls:``) means "all defaults"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section_is_empty_mapping(cls, data: Any) -> Any:
        return {} if data is None else data


class WebConfig(StrictModel):
    listen_address: str = "0.0.0.0:9474"
    max_request_bytes: Annotated[int, _int_range(1024, 1048576)] = 8192
    # /-/healthy answers without basic auth, so a container health check needs no password.
    healthy_without_auth: bool = True

    @field_validator("listen_address", mode="before")
    @classmethod
    def _normalise_listen_address(cls, value: object) -> str:
        return values.join_listen_address(*values.split_listen_address(value))

    @property
    def host(self) -> str:
        return values.split_listen_address(self.listen_address)[0]

    @property
    def port(self) -> int:
        return values.split_listen_address(self.listen_address)[1]


class LogConfig(StrictModel):
    level: Annotated[
        Literal["debug", "info", "warn", "warning", "error"], _one_of(*LOG_LEVELS)
    ] = "info"
    format: Annotated[Literal["logfmt", "json"], _one_of(*LOG_FORMATS)] = "logfmt"


class TLSConfig(StrictModel):
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    thumbprint: str | None = None

    @field_validator("ca_file", mode="before")
    @classmethod
    def _check_ca_file(cls, value: object, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return values.check_pem_file(values.resolve_path(value, _base_dir(info)))

    @field_validator("thumbprint", mode="before")
    @classmethod
    def _normalise_thumbprint(cls, value: object) -> str | None:
        return None if value is None else values.normalise_thumbprint(value)

    @model_validator(mode="after")
    def _skip_verify_excludes_pinning(self) -> TLSConfig:
        # Skipping verification while also pinning is contradictory: one of them is a mistake.
        if self.insecure_skip_verify and (self.ca_file or self.thumbprint):
            raise located_error(
                "insecure_skip_verify",
                "cannot be true together with ca_file or thumbprint",
            )
        return self


class TimeoutsConfig(StrictModel):
    connect: Duration = 5.0
    read: Duration = 30.0
    async_deadline: Duration = 600.0  # long-running SPE calls are cancelled after this


class ResultWindowsConfig(StrictModel):
    """How far polls of run results (GetWorkerResults, GetJobResults) may reach back."""

    # The overlap of result windows grows with the longest run seen (1 h at least) up to
    # this; see exporter/collectors/ledger.py and the README's "Result windows".
    max_overlap: Duration = 86400.0

    @field_validator("max_overlap")
    @classmethod
    def _at_least_an_hour(cls, value: float) -> float:
        if value < 3600:
            raise ValueError("must be at least 1h (the least overlap of result windows)")
        return value


class CollectorSettings(StrictModel):
    enabled: bool = True
    interval: Interval | None = None  # None: the collector's default (COLLECTOR_DEFAULTS)
    max_data_age: MaxDataAge | None = None  # None: the target's max_data_age


# One key per collector, so unknown collector names are rejected like unknown keys.
CollectorsConfig = create_model(
    "CollectorsConfig",
    __base__=StrictModel,
    __doc__="Settings per collector: one optional key per declared collector.",
    **{
        name: (CollectorSettings, Field(default_factory=CollectorSettings))
        for name in COLLECTOR_DEFAULTS
    },
)


@dataclass(frozen=True, slots=True)
class CollectorSchedule:
    """The effective settings of one collector of one target."""

    name: str
    enabled: bool
    interval_seconds: float
    max_data_age_seconds: float


# A maintenance run is polled until it ends or this long has passed (then cancel-async).
DEFAULT_MAINTENANCE_DEADLINE = 3600.0


class MaintenanceSchedule(StrictModel):
    """When a maintenance operation runs: a crontab expression or a fixed interval."""

    cron: str | None = None
    interval: Interval | None = None
    timezone: str = "UTC"  # of the cron expression

    @field_validator("timezone", mode="before")
    @classmethod
    def _check_timezone(cls, value: object) -> str:
        parse_timezone(value)
        return str(value).strip()

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> MaintenanceSchedule:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("set exactly one of cron or interval")
        if self.cron is not None:
            try:
                parse_crontab(self.cron, self.timezone)
            except ValueError as exc:
                raise located_error("cron", str(exc)) from None
        return self

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}' ({self.timezone})"
        assert self.interval is not None
        return f"every {values.format_duration(self.interval)}"


class MaintenanceTask(StrictModel):
    """One opt-in maintenance operation: an allow-listed SPE function on a schedule."""

    function: str
    args: dict[str, Any] = Field(default_factory=dict)
    schedule: MaintenanceSchedule
    deadline: Duration = DEFAULT_MAINTENANCE_DEADLINE
    cancel_on_shutdown: bool = False
    name: NonEmptyText | None = None

    @field_validator("function", mode="before")
    @classmethod
    def _allowed_function(cls, value: object) -> str:
        if isinstance(value, str) and value.strip() in MAINTENANCE_FUNCTIONS:
            return value.strip()
        raise ValueError(
            "not an allowed maintenance function; allowed: "
            + ", ".join(sorted(MAINTENANCE_FUNCTIONS))
        )

    @field_validator("args", mode="before")
    @classmethod
    def _check_args(cls, value: object, info: ValidationInfo) -> object:
        function = info.data.get("function")
        if function is None:
            return value  # the function's own error says enough
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of argument names to values")
        signature = MAINTENANCE_FUNCTIONS[function]
        wanted = f"{function} takes {', '.join(signature)}"
        for name in value:
            if name not in signature:
                close = difflib.get_close_matches(str(name), signature, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise located_error(str(name), f"unknown argument{hint}; {wanted}")
        missing = [name for name in signature if name not in value]
        if missing:
            noun = "argument" if len(missing) == 1 else "arguments"
            raise ValueError(f"missing {noun} {', '.join(missing)}; {wanted}")
        return {name: _maintenance_arg(name, kind, value[name]) for name, kind in signature.items()}

    def describe(self) -> str:
        """The name shown on the landing page and in logs."""
        if self.name:
            return self.name
        shown = ", ".join(f"{k}={_arg_text(v)}" for k, v in self.args.items())
        return f"{self.function}({shown})"


def _maintenance_arg(name: str, kind: str, value: object) -> str | int | bool:
    # Values may come from ${VAR} substitution as text: accept "3" and "true" there too.
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, bool):
            return value
        raise located_error(name, "must be true or false")
    if kind == "number":
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise located_error(name, "must be a whole number")
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise located_error(name, "must be non-empty text")


def _arg_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class TargetSettings(StrictModel):
    """Everything a target has except its address and credentials; also `defaults`."""

    tls: TLSConfig = Field(default_factory=TLSConfig)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    instance_filter: NonEmptyText = "*"
    concurrency: Annotated[int, _int_range(1, 256)] = 8
    max_data_age: MaxDataAge = "auto"
    result_windows: ResultWindowsConfig = Field(default_factory=ResultWindowsConfig)
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)
    # Opt-in: nothing is ever written to SPE unless listed here.
    maintenance: list[MaintenanceTask] = Field(default_factory=list)

    @field_validator("maintenance", mode="before")
    @classmethod
    def _empty_maintenance_is_none(cls, value: object) -> object:
        return [] if value is None else value

    def collector_schedule(self, name: str) -> CollectorSchedule:
        """Effective (enabled, interval, max data age) of collector `name`."""
        settings: CollectorSettings = getattr(self.collectors, name)
        interval = settings.interval or COLLECTOR_DEFAULTS[name]
        max_age = settings.max_data_age if settings.max_data_age is not None else self.max_data_age
        if max_age == "auto":
            max_age = AUTO_MAX_DATA_AGE_INTERVALS * interval
        return CollectorSchedule(name, settings.enabled, interval, float(max_age))

    def collector_schedules(self) -> dict[str, CollectorSchedule]:
        """Every known collector, enabled or not, in display order."""
        return {name: self.collector_schedule(name) for name in COLLECTOR_DEFAULTS}

    @model_validator(mode="after")
    def _max_data_age_covers_interval(self) -> TargetSettings:
        # Data older than one interval is normal between two runs; expiring it earlier
        # would make series flap in and out on every run.
        for schedule in self.collector_schedules().values():
            if not schedule.enabled or schedule.max_data_age_seconds >= schedule.interval_seconds:
                continue
            own = getattr(self.collectors, schedule.name).max_data_age is not None
            key = f"collectors.{schedule.name}.max_data_age" if own else "max_data_age"
            raise located_error(
                key,
                f"{values.format_duration(schedule.max_data_age_seconds)} is shorter than the "
                f"{values.format_duration(schedule.interval_seconds)} interval of collector "
                f"'{schedule.name}'",
            )
        return self


class TargetConfig(TargetSettings):
    url: str
    username: NonEmptyText
    password: SecretStr | None = None
    password_file: Path | None = None

    _password_from_file: SecretStr | None = PrivateAttr(default=None)

    @field_validator("url", mode="before")
    @classmethod
    def _normalise_url(cls, value: object) -> str:
        return values.normalise_spe_url(value)

    @field_validator("password", mode="before")
    @classmethod
    def _password_not_empty(cls, value: object) -> object:
        # An unset ${VAR:-} must not silently become an empty password.
        if isinstance(value, str) and not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("password_file", mode="before")
    @classmethod
    def _check_password_file(cls, value: object, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = values.resolve_path(value, _base_dir(info))
        values.read_secret_file(path)  # report a missing, unreadable or empty file now
        return path

    @model_validator(mode="after")
    def _exactly_one_password_source(self) -> TargetConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        if self.password is None and self.password_file is None:
            raise ValueError("missing password: set password or password_file")
        if self.password_file is not None:
            try:
                secret = values.read_secret_file(self.password_file)
            except ValueError as exc:  # changed between the field check and now
                raise located_error("password_file", str(exc)) from None
            self._password_from_file = SecretStr(secret)
        return self

    def password_value(self) -> str:
        """The password in clear text: pass it to the SPE client, never log it."""
        secret = self.password if self.password is not None else self._password_from_file
        assert secret is not None  # guaranteed by _exactly_one_password_source
        return secret.get_secret_value()


class Config(StrictModel):
    web: WebConfig = Field(default_factory=WebConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    # Validated on its own for error messages; the loader merges it into every target.
    defaults: TargetSettings | None = None
    targets: dict[TargetName, TargetConfig] = Field(default_factory=dict, validate_default=True)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets_present(cls, value: object) -> object:
        if value is None or value == {}:
            raise ValueError("at least one target is required")
        return value
