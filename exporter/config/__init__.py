"""The exporter's configuration: a strictly validated YAML file.

See ``config.example.yml`` at the repository root for every key.
"""

from exporter.config.errors import ConfigError
from exporter.config.loader import DEMO_TARGET, check_config, demo_config, load_config, parse_config
from exporter.config.schema import (
    COLLECTOR_DEFAULTS,
    CollectorSchedule,
    CollectorsConfig,
    CollectorSettings,
    Config,
    LogConfig,
    TargetConfig,
    TargetSettings,
    TimeoutsConfig,
    TLSConfig,
    WebConfig,
)

__all__ = [
    "COLLECTOR_DEFAULTS",
    "DEMO_TARGET",
    "CollectorSchedule",
    "CollectorSettings",
    "CollectorsConfig",
    "Config",
    "ConfigError",
    "LogConfig",
    "TLSConfig",
    "TargetConfig",
    "TargetSettings",
    "TimeoutsConfig",
    "WebConfig",
    "check_config",
    "demo_config",
    "load_config",
    "parse_config",
]
