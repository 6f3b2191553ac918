"""Scenario loading: strict validation with key paths, the default scenario, generation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from exporter.simulator import DEFAULT_SCENARIO, ScenarioError, generate_scenario, load_scenario

MINIMAL = {"instance_hosts": [{"name": "ih01"}], "instances": [{"id": "a", "host": "ih01"}]}


def _with(path: list, value: object) -> dict:
    data = copy.deepcopy(MINIMAL)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(["instances", 0, "status"], "sleeping"), r"instances\[0\]\.status: must be one of"),
        (
            _with(["instances", 0, "stores"], [{"id": 1, "name": "x", "requested_state": "on"}]),
            r"instances\[0\]\.stores\[0\]\.requested_state",
        ),
        (_with(["instances", 0, "host"], "ih09"), r"instances\[0\]\.host: no instance host"),
        (_with(["instances", 0, "colour"], "red"), r"instances\[0\]: unknown key\(s\): colour"),
        (_with(["instances", 0, "messages_per_hour"], -1), r"messages_per_hour: must be >= 0"),
        (_with(["instances", 0, "service_provider_access"], "yes"), r"expected true or false"),
        (
            _with(["instances", 0, "profiles"], [{"id": 1, "name": "p", "results": ["meh"]}]),
            r"instances\[0\]\.profiles\[0\]\.results\[0\]: must be one of",
        ),
        (
            _with(["instances", 0, "jobs"], [{"id": 1, "name": "j", "time": "3:30"}]),
            r"jobs\[0\]\.time: expected hh:mm:ss",
        ),
        (
            _with(["instances", 0, "stores"], [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]),
            r"instances\[0\]\.stores: duplicate store id 1",
        ),
        (_with(["instances"], []), r"instances: need 1 to 5000"),
        (_with(["messages"], [{"type": "fatal", "text": "x"}]), r"messages\[0\]\.type"),
        (
            _with(["faults"], [{"function": "Ping", "kind": "hang", "seconds": "x"}]),
            r"faults\[0\]\.seconds",
        ),
        (_with(["server"], {"time_zone": "Atlantis"}), r"server\.time_zone"),
        (_with(["cancel_status_code"], "aborted"), r"cancel_status_code"),
        ({"instances": []}, r"instance_hosts: required key is missing"),
        ([1, 2], r"<root>: expected a mapping"),
    ],
)
def test_validation_errors_name_the_key_path(data: object, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(data)  # type: ignore[arg-type]


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("instance_hosts: [\n")
    with pytest.raises(ScenarioError, match=r"bad\.yml: invalid YAML"):
        load_scenario(bad)
    bad.write_text(yaml.safe_dump(_with(["instances", 0, "status"], "x")))
    with pytest.raises(ScenarioError, match=r"bad.yml: instances\[0\]\.status"):
        load_scenario(str(bad))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yml")


def test_default_scenario_has_the_promised_cases() -> None:
    s = load_scenario(DEFAULT_SCENARIO)
    assert len(s.instances) == 5 and len(s.instance_hosts) == 2
    by_id = {i.id: i for i in s.instances}
    assert by_id["umbrella"].status == "stopped" and by_id["umbrella"].start_stop_error
    assert not by_id["initech"].service_provider_access
    stores = [st for i in s.instances for st in i.stores]
    assert any(st.search_indexes_need_rebuild for st in stores)
    assert any(st.needs_upgrade for st in stores)
    assert by_id["globex"].messages_per_hour == 0 and by_id["acme"].messages_per_hour > 0
    assert by_id["globex"].profiles[0].results == ["failed"]
    expiries = [c.certificate_expires_in_days for i in s.instances for c in i.credentials]
    assert any(d < 0 for d in expiries) and any(0 < d <= 30 for d in expiries)
    assert {m.type for m in s.messages} == {"information", "warning", "error"}


def test_generate_scenario_is_deterministic_and_loads() -> None:
    small = generate_scenario(instances=50, seed=3)
    assert small == generate_scenario(instances=50, seed=3)
    assert small != generate_scenario(instances=50, seed=4)
    loaded = load_scenario(small)
    assert len(loaded.instances) == 50 and len({i.id for i in loaded.instances}) == 50
    with pytest.raises(ScenarioError):
        generate_scenario(instances=5001)


def test_generated_instances_key_expands() -> None:
    data = {
        "instance_hosts": [{"name": "h1"}, {"name": "h2"}],
        "generated_instances": {"count": 20, "seed": 9, "id_prefix": "t"},
    }
    ids = [i.id for i in load_scenario(data).instances]
    assert len(ids) == 20 and ids[0] == "t0001"


def test_state_changes_do_not_leak_into_the_loaded_scenario() -> None:
    from exporter.simulator import SimState

    scenario = load_scenario(MINIMAL)
    state = SimState(scenario)
    state.stop_instance("a")
    assert scenario.instances[0].status == "running"
