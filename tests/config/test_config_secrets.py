"""The password never shows up in repr, str, dumps or error messages."""

from __future__ import annotations

import json

import pytest

from exporter.config import ConfigError, load_config, parse_config

SECRET = "hunter2-S3cret"


def _target(**extra: object) -> dict[str, object]:
    return {"url": "https://a", "username": "u", **extra}


def _assert_hidden(text: str) -> None:
    assert SECRET not in text
    assert "hunter2" not in text


def test_inline_password_is_hidden_in_repr_str_and_dumps() -> None:
    config = parse_config({"targets": {"spe1": _target(password=SECRET)}})
    target = config.targets["spe1"]

    for text in (repr(config), str(config), repr(target), str(target)):
        _assert_hidden(text)
    _assert_hidden(repr(config.model_dump()))
    _assert_hidden(config.model_dump_json())
    _assert_hidden(json.dumps(config.model_dump(mode="json")))
    assert target.password_value() == SECRET


def test_password_from_file_is_hidden(write) -> None:
    write("pw.txt", SECRET + "\n")
    config = load_config(
        write(
            "config.yml",
            "targets:\n  spe1: {url: 'https://a', username: u, password_file: pw.txt}\n",
        )
    )
    _assert_hidden(repr(config))
    _assert_hidden(config.model_dump_json())
    assert config.targets["spe1"].password_value() == SECRET


def test_password_from_environment_is_hidden_in_errors_of_other_keys(monkeypatch) -> None:
    monkeypatch.setenv("SPE_PASSWORD", SECRET)
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": {"spe1": _target(password="${SPE_PASSWORD}", concurrency=0)}})
    _assert_hidden(str(caught.value))
    _assert_hidden(repr(caught.value))
    assert caught.value.errors == ["targets.spe1.concurrency: must be between 1 and 256"]


@pytest.mark.parametrize(
    "bad_password",
    [[SECRET], {"value": SECRET}, SECRET + "${", SECRET + "${bad name}", SECRET + "${UNSET_VAR}"],
)
def test_invalid_password_values_are_not_echoed(bad_password: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": {"spe1": _target(password=bad_password)}})
    _assert_hidden(str(caught.value))
    assert all(line.startswith("targets.spe1.password: ") for line in caught.value.errors)


def test_credentials_in_url_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": {"spe1": _target(url=f"https://u:{SECRET}@a", password="p")}})
    _assert_hidden(str(caught.value))


def test_empty_password_from_environment_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("SPE_PASSWORD", "")
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": {"spe1": _target(password="${SPE_PASSWORD}")}})
    assert caught.value.errors == ["targets.spe1.password: must not be empty"]
