#!/usr/bin/env python3
"""Generate the Grafana dashboards of mailstore-spe-exporter.

    python dashboards/generate.py           # (re)write dashboards/*.json
    python dashboards/generate.py --check   # exit 1 if a committed file differs

Plain dicts and json only, so no dependency beyond the standard library. The output is
deterministic; tests/dashboards checks that the committed JSON equals the generated one.

Helpers for tests (the lead's end-to-end test runs every panel query against Prometheus):
``panel_queries(dashboard)`` and ``all_panel_queries()`` return
``(dashboard title, panel title, expr)`` with Grafana variables substituted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
TAGS = ["mailstore-spe", "mailstore", "prometheus-exporter"]
DS = {"type": "prometheus", "uid": "${datasource}"}

# Label matchers every query carries. `$job` and `$target` are multi-value variables,
# hence the regex match.
SEL = 'job=~"$job", target=~"$target"'
ISEL = SEL + ', instance_id=~"$instance_id"'
# Join key between a per-instance series and mailstore_spe_instance_info (same scrape).
ON_INSTANCE = "on (job, instance, target, instance_id)"


def q(expr: str) -> str:
    """Fill the common matchers into a query template: `{S}` / `{S, more}` -> job and target,
    `{I}` / `{I, more}` -> job, target and instance_id."""
    for key, sel in (("S", SEL), ("I", ISEL)):
        expr = expr.replace("{" + key + "}", "{" + sel + "}")
        expr = expr.replace("{" + key + ", ", "{" + sel + ", ")
    return expr


# --- panels -------------------------------------------------------------------------------------


class Layout:
    """Places panels left to right on the 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels: list[dict] = []

    def add(self, panel: dict, w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def newline(self) -> None:
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def row(self, title: str) -> None:
        self.newline()
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.newline()


def target(expr: str, legend: str, ref: str, instant: bool, fmt: str) -> dict:
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    t["format"] = fmt
    return t


def _refs(exprs: list[tuple[str, str]], instant: bool = False, fmt: str = "time_series"
          ) -> list[dict]:
    return [
        target(expr, legend, chr(ord("A") + i), instant, fmt)
        for i, (expr, legend) in enumerate(exprs)
    ]


def timeseries(
    title: str,
    exprs: list[tuple[str, str]],
    unit: str,
    description: str = "",
    stack: bool = False,
    bars: bool = False,
    min0: bool = True,
) -> dict:
    custom: dict = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: dict = {"unit": unit, "custom": custom}
    if min0:
        defaults["min"] = 0
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _refs(exprs),
    }


def stat(
    title: str,
    exprs: list[tuple[str, str]],
    unit: str,
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    text_mode: str = "auto",
    mappings: list[dict] | None = None,
) -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "mappings": mappings or [],
                "color": {"mode": "thresholds"},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if thresholds else "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": text_mode,
        },
        "targets": _refs(exprs, instant=True),
    }


def table(
    title: str,
    exprs: list[tuple[str, str]],
    columns: dict[str, tuple[str, str]],
    description: str = "",
    sort_by: str | None = None,
    desc: bool = True,
) -> dict:
    """An instant-query table. `columns` maps a field (label or "Value #A") to (name, unit);
    fields not listed are hidden. Queries are merged on their common labels; with several
    queries the metric name is dropped (`sum without ()`), else the differing `__name__`
    columns would keep Grafana's merge from joining the rows."""
    if len(exprs) > 1:
        exprs = [(f"sum without () ({expr})", legend) for expr, legend in exprs]
    index = {field: i for i, field in enumerate(columns)}
    rename = {field: name for field, (name, _) in columns.items()}
    overrides = [
        {
            "matcher": {"id": "byName", "options": field},
            "properties": [{"id": "unit", "value": unit}],
        }
        for field, (_, unit) in columns.items()
        if unit
    ]
    panel = {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"unit": "short", "custom": {"align": "auto", "filterable": True}},
            "overrides": overrides,
        },
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "targets": _refs(exprs, instant=True, fmt="table"),
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {},
                    "includeByName": {field: True for field in columns},
                    "indexByName": index,
                    "renameByName": rename,
                },
            },
        ],
    }
    if sort_by:
        panel["options"]["sortBy"] = [{"displayName": columns[sort_by][0], "desc": desc}]
    return panel


# --- variables ----------------------------------------------------------------------------------


def datasource_var() -> dict:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def query_var(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": query,
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "allValue": ".+" if multi else None,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
    }


JOB_VAR = query_var("job", "Job", "label_values(mailstore_spe_up, job)")
TARGET_VAR = query_var(
    "target", "SPE target", 'label_values(mailstore_spe_up{job=~"$job"}, target)'
)


def dashboard(uid: str, title: str, description: str, panels: list[dict], variables: list[dict],
              time_from: str = "now-24h") -> dict:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "tags": ["mailstore-spe"],
                "title": "MailStore SPE",
                "type": "dashboards",
            }
        ],
        "liveNow": False,
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


RED_IF_ABOVE_0 = [(None, "green"), (1, "red")]
RED_IF_BELOW_1 = [(None, "red"), (1, "green")]


# --- the dashboards -----------------------------------------------------------------------------


def overview() -> dict:
    lay = Layout()
    lay.row("Fleet health")
    lay.add(stat("SPE targets up", [(q("sum(mailstore_spe_up{S})"), "up")], "short",
                 "Management servers whose last poll succeeded."), 4, 4)
    lay.add(stat("SPE targets down", [(q("count(mailstore_spe_up{S} == 0) or vector(0)"), "down")],
                 "short", "Management servers whose last poll failed.", RED_IF_ABOVE_0), 4, 4)
    lay.add(stat("Inactive roles",
                 [(q("count(mailstore_spe_server_active{S} == 0) or vector(0)"), "inactive")],
                 "short", "Instance hosts, client access servers and management servers "
                 "reported inactive.", RED_IF_ABOVE_0), 4, 4)
    lay.add(stat("Dashboard messages",
                 [(q("sum by (message_severity) (mailstore_spe_service_messages{S})"),
                   "{{message_severity}}")],
                 "short", "Messages on the SPE dashboard, by severity."), 6, 4)
    lay.add(stat("Instances by status",
                 [(q("sum by (status) (mailstore_spe_instance_status{S})"), "{{status}}")],
                 "short", "Number of instances in each status."), 6, 4)
    lay.add(stat("Total archive size",
                 [(q("sum(mailstore_spe_instance_archive_size_bytes{S})"), "size")], "bytes"), 6, 4)
    lay.add(stat("Total archived messages",
                 [(q("sum(mailstore_spe_instance_messages{S})"), "messages")], "short"), 6, 4)
    lay.add(stat("Failed profile runs (time range)",
                 [(q('sum(increase(mailstore_spe_profile_runs_total{S, result="failed"}'
                     "[$__range])) or vector(0)"),
                   "failed")],
                 "short", "Archiving profile runs with result failed in the selected time range.",
                 RED_IF_ABOVE_0), 6, 4)
    lay.add(stat("Stores with problems (count)",
                 [(q("count(mailstore_spe_store_error{S} == 1 "
                     "or mailstore_spe_store_needs_upgrade{S} == 1 "
                     "or mailstore_spe_store_search_indexes_need_rebuild{S} == 1) or vector(0)"),
                   "stores")],
                 "short", "Stores with an error, a pending upgrade or search indexes to rebuild.",
                 RED_IF_ABOVE_0), 6, 4)

    lay.row("Archive")
    lay.add(timeseries("Archive size by target",
                       [(q("sum by (target) (mailstore_spe_instance_archive_size_bytes{S})"),
                         "{{target}}")], "bytes", stack=True), 12, 8)
    lay.add(timeseries("Archive growth over 24 h by target",
                       [(q("sum by (target) (delta(mailstore_spe_instance_archive_size_bytes{S}"
                           "[1d]))"), "{{target}}")], "bytes",
                       "Change of the archive size over the preceding 24 hours.", min0=False),
            12, 8)
    lay.add(timeseries("Archived messages by target",
                       [(q("sum by (target) (mailstore_spe_instance_messages{S})"), "{{target}}")],
                       "short", stack=True), 12, 8)
    lay.add(timeseries("Messages archived per second",
                       [(q("sum by (target) (rate("
                           "mailstore_spe_instance_process_messages_archived_total{S}"
                           "[$__rate_interval]))"), "{{target}}")],
                       "cps", "From the instance processes' live statistics."), 12, 8)
    lay.add(table("Top 10 instances by archive size",
                  [(q("topk(10, mailstore_spe_instance_archive_size_bytes{S} "
                      f"* {ON_INSTANCE} group_left (alias, display_name) "
                      "mailstore_spe_instance_info{S})"), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "alias": ("Alias", ""), "display_name": ("Name", ""),
                   "Value": ("Archive size", "bytes")},
                  sort_by="Value"), 12, 9)
    lay.add(table("Top 10 instances by growth over 24 h",
                  [(q("topk(10, delta(mailstore_spe_instance_archive_size_bytes{S}[1d]) "
                      f"* {ON_INSTANCE} group_left (alias, display_name) "
                      "mailstore_spe_instance_info{S})"), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "alias": ("Alias", ""), "display_name": ("Name", ""),
                   "Value": ("Growth (24 h)", "bytes")},
                  sort_by="Value"), 12, 9)

    lay.row("Archiving and problems")
    lay.add(timeseries("Profile runs by result",
                       [(q("sum by (result) (increase(mailstore_spe_profile_runs_total{S}"
                           "[$__rate_interval]))"), "{{result}}")],
                       "short", "Finished archiving profile runs.", stack=True, bars=True), 12, 8)
    lay.add(timeseries("Dashboard messages by severity",
                       [(q("sum by (message_severity) (mailstore_spe_service_messages{S})"),
                         "{{message_severity}}")], "short"), 12, 8)
    lay.add(timeseries("Dashboard messages by category",
                       [(q("sum by (category) (mailstore_spe_service_messages_by_category{S})"),
                         "{{category}}")], "short",
                       "Category derived from the message text; sub-items not counted.",
                       stack=True), 12, 8)
    lay.add(table("Most restarted instances (time range)",
                  [(q("topk(10, increase(mailstore_spe_instance_process_restarts_total{S}"
                      "[$__range]))"), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "Value": ("Restarts", "short")},
                  "Changes of the instance process (processUniqueID) seen by the exporter "
                  "in the selected time range.",
                  sort_by="Value"), 12, 8)
    lay.add(table("Stores with problems",
                  [(q('label_replace(mailstore_spe_store_error{S} == 1, "problem", "error", "", "")'
                      ' or label_replace(mailstore_spe_store_needs_upgrade{S} == 1, "problem", '
                      '"needs upgrade", "", "") or label_replace('
                      "mailstore_spe_store_search_indexes_need_rebuild{S} == 1, "
                      '"problem", "search indexes need rebuild", "", "")'), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "store_id": ("Store ID", ""), "store_name": ("Store", ""),
                   "problem": ("Problem", "")}), 12, 8)
    lay.add(table("Instances not running",
                  [(q('mailstore_spe_instance_status{S, status!="running"} == 1'), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "status": ("Status", "")}), 12, 8)
    lay.add(table("Credential certificates expiring soonest",
                  [(q("bottomk(10, mailstore_spe_credential_certificate_expiry_timestamp_seconds"
                      "{S}) * 1000"), "")],
                  {"target": ("Target", ""), "instance_id": ("Instance", ""),
                   "credential_id": ("Credential", ""), "credential_type": ("Type", ""),
                   "Value": ("Expires", "dateTimeFromNow")},
                  "Expiry of certificates used by instance credentials.",
                  sort_by="Value", desc=False), 24, 8)
    lay.row("Management servers and roles")
    lay.add(table("Management servers",
                  [(q("mailstore_spe_info{S}"), "")],
                  {"target": ("Target", ""), "server_name": ("Server", ""),
                   "version": ("Version", ""), "web_client_version": ("Web client", ""),
                   "licensee_name": ("Licensee", ""), "licensee_id": ("Licensee ID", "")}),
            12, 6)
    lay.add(table("Roles",
                  [(q("mailstore_spe_server_active{S}"), "")],
                  {"target": ("Target", ""), "server_name": ("Server", ""),
                   "server_type": ("Role", ""), "port": ("Port", ""),
                   "Value": ("Active", "short")}, sort_by="Value", desc=False), 12, 6)
    lay.add(table("Instance hosts",
                  [(q("mailstore_spe_instance_host_instances{S}"), ""),
                   (q("mailstore_spe_instance_host_running_instances{S}"), "")],
                  {"target": ("Target", ""), "server_name": ("Instance host", ""),
                   "Value #A": ("Instances", "short"), "Value #B": ("Running", "short")}),
            8, 6)
    lay.add(table("Role hardware",
                  [(q("mailstore_spe_server_memory_bytes{S}"), ""),
                   (q("mailstore_spe_server_processors{S}"), "")],
                  {"target": ("Target", ""), "server_name": ("Server", ""),
                   "server_type": ("Role", ""), "Value #A": ("Memory", "bytes"),
                   "Value #B": ("Logical processors", "short")}), 8, 6)
    lay.add(table("Role certificates",
                  [(q("mailstore_spe_server_certificate_info{S}"), "")],
                  {"target": ("Target", ""), "server_name": ("Server", ""),
                   "server_type": ("Role", ""), "thumbprint": ("Thumbprint", "")},
                  "A change of thumbprint shows up here first."), 8, 6)
    return dashboard(
        "mailstore-spe-overview", "MailStore SPE / Overview",
        "Fleet view of MailStore SPE management servers and their instances.",
        lay.panels, [datasource_var(), JOB_VAR, TARGET_VAR],
    )


def instance() -> dict:
    lay = Layout()
    lay.row("Instance")
    lay.add(stat("Status",
                 [(q("mailstore_spe_instance_status{I} == 1"), "{{status}}")], "short",
                 "Current status of the instance.", text_mode="name"), 4, 4)
    lay.add(stat("Start/stop error",
                 [(q("mailstore_spe_instance_start_stop_error{I}"), "error")], "short",
                 "1 if the last start or stop of the instance failed.", RED_IF_ABOVE_0,
                 mappings=[{"type": "value", "options": {"0": {"text": "none"},
                                                         "1": {"text": "error"}}}]), 4, 4)
    lay.add(stat("Archive size", [(q("mailstore_spe_instance_archive_size_bytes{I}"), "size")],
                 "bytes"), 4, 4)
    lay.add(stat("Archived messages", [(q("mailstore_spe_instance_messages{I}"), "messages")],
                 "short"), 4, 4)
    lay.add(stat("Users", [(q("mailstore_spe_instance_users{I}"), "users")], "short",
                 "Users of the instance, without $archiveadmin."), 4, 4)
    lay.add(stat("Legal hold", [(q("mailstore_spe_instance_legal_hold_enabled{I}"), "legal hold")],
                 "short", mappings=[{"type": "value", "options": {"0": {"text": "off"},
                                                                  "1": {"text": "on"}}}]), 4, 4)
    lay.add(stat("Provider access",
                 [(q("mailstore_spe_instance_service_provider_access_enabled{I}"), "access")],
                 "short", "Service provider access (GetArchiveAdminEnabled). Off: users, "
                 "profiles, jobs, compliance and credentials (and, if SPE refuses them, "
                 "statistics and process) are not collected for the instance.",
                 mappings=[{"type": "value", "options": {"0": {"text": "off"},
                                                         "1": {"text": "on"}}}]), 4, 4)

    lay.row("Size and messages")
    lay.add(timeseries("Archive size by component",
                       [(q("mailstore_spe_instance_database_size_bytes{I}"), "database"),
                        (q("mailstore_spe_instance_content_size_bytes{I}"), "content"),
                        (q("mailstore_spe_instance_index_size_bytes{I}"), "index")],
                       "bytes", "Size of the archive by component.", stack=True), 12, 8)
    lay.add(timeseries("Archived messages over time",
                       [(q("mailstore_spe_instance_messages{I}"), "{{instance_id}}")],
                       "short"), 12, 8)

    lay.row("Users")
    lay.add(timeseries("Users by MFA status",
                       [(q("mailstore_spe_instance_users_by_mfa_status{I}"),
                         "{{mfa_status}}")], "short",
                       "Users (without $archiveadmin) by mfaStatus as SPE reports it.",
                       stack=True), 12, 8)
    lay.add(timeseries("Process restarts",
                       [(q("increase(mailstore_spe_instance_process_restarts_total{I}"
                           "[$__rate_interval])"), "{{instance_id}}")], "short",
                       "Changes of the instance process (processUniqueID) between polls.",
                       bars=True), 8, 8)
    lay.add(stat("Current process first seen",
                 [(q("mailstore_spe_instance_process_first_seen_timestamp_seconds{I} * 1000"),
                   "first seen")], "dateTimeFromNow",
                 "When the exporter first saw the current instance process (not its start "
                 "time, which SPE does not report)."), 4, 8)

    lay.row("Process")
    lay.add(timeseries("CPU",
                       [(q("rate(mailstore_spe_instance_process_cpu_seconds_total{I}"
                           "[$__rate_interval])"), "{{instance_id}}")],
                       "percentunit", "CPU time of the instance process per second "
                       "(100% = one core)."), 8, 8)
    lay.add(timeseries("Disk and other IO",
                       [(q("rate(mailstore_spe_instance_process_io_read_bytes_total{I}"
                           "[$__rate_interval])"), "read {{instance_id}}"),
                        (q("rate(mailstore_spe_instance_process_io_write_bytes_total{I}"
                           "[$__rate_interval])"), "write {{instance_id}}"),
                        (q("rate(mailstore_spe_instance_process_io_other_bytes_total{I}"
                           "[$__rate_interval])"), "other {{instance_id}}")],
                       "Bps"), 8, 8)
    lay.add(timeseries("Private memory",
                       [(q("mailstore_spe_instance_process_private_memory_bytes{I}"),
                         "{{instance_id}}")], "bytes"), 8, 8)
    lay.add(timeseries("Messages archived and checked per second",
                       [(q("rate(mailstore_spe_instance_process_messages_archived_total{I}"
                           "[$__rate_interval])"), "archived {{instance_id}}"),
                        (q("rate(mailstore_spe_instance_process_messages_checked_total{I}"
                           "[$__rate_interval])"), "checked {{instance_id}}")],
                       "cps"), 24, 8)

    lay.row("Archive stores")
    store_cols = {"instance_id": ("Instance", ""), "store_id": ("ID", ""),
                  "store_name": ("Store", ""), "Value #A": ("Size", "bytes"),
                  "Value #B": ("Messages", "short"), "Value #C": ("Error", "short"),
                  "Value #D": ("Needs upgrade", "short"),
                  "Value #E": ("Indexes need rebuild", "short")}
    lay.add(table("Stores",
                  [(q("mailstore_spe_store_size_bytes{I}"), ""),
                   (q("mailstore_spe_store_messages{I}"), ""),
                   (q("mailstore_spe_store_error{I}"), ""),
                   (q("mailstore_spe_store_needs_upgrade{I}"), ""),
                   (q("mailstore_spe_store_search_indexes_need_rebuild{I}"), "")],
                  store_cols, "Archive stores with size and health flags.", sort_by="Value #A"),
            16, 8)
    lay.add(table("Store states",
                  [(q("mailstore_spe_store_state{I} == 1"), "")],
                  {"store_name": ("Store", ""), "state": ("State", "")}), 8, 8)

    lay.row("Archiving profiles")
    lay.add(timeseries("Profile runs by result",
                       [(q("sum by (profile_name, result) (increase("
                           "mailstore_spe_profile_runs_total{I}[$__rate_interval]))"),
                         "{{profile_name}} {{result}}")],
                       "short", stack=True, bars=True), 12, 8)
    lay.add(timeseries("Items archived",
                       [(q("sum by (profile_name) (increase("
                           "mailstore_spe_profile_items_archived_total{I}[$__rate_interval]))"),
                         "{{profile_name}}")],
                       "short", stack=True, bars=True), 12, 8)
    lay.add(table("Profiles",
                  [(q("mailstore_spe_profile_last_success_timestamp_seconds{I} * 1000"), ""),
                   (q("mailstore_spe_profile_last_run_timestamp_seconds{I} * 1000"), ""),
                   (q("mailstore_spe_profile_last_run_duration_seconds{I}"), ""),
                   (q("mailstore_spe_profile_automatic{I}"), "")],
                  {"instance_id": ("Instance", ""), "profile_id": ("ID", ""),
                   "profile_name": ("Profile", ""),
                   "Value #A": ("Last success", "dateTimeFromNow"),
                   "Value #B": ("Last run", "dateTimeFromNow"),
                   "Value #C": ("Last duration", "s"), "Value #D": ("Automatic", "short")},
                  sort_by="Value #A", desc=False), 16, 8)
    lay.add(table("Newest run result",
                  [(q("mailstore_spe_profile_last_run_result{I} == 1"), "")],
                  {"instance_id": ("Instance", ""), "profile_name": ("Profile", ""),
                   "result": ("Result", "")}), 8, 8)

    lay.row("Jobs and credentials")
    lay.add(table("Jobs",
                  [(q("mailstore_spe_job_last_run_timestamp_seconds{I} * 1000"), ""),
                   (q("mailstore_spe_job_next_run_timestamp_seconds{I} * 1000"), ""),
                   (q("mailstore_spe_job_enabled{I}"), "")],
                  {"instance_id": ("Instance", ""), "job_id": ("ID", ""),
                   "job_name": ("Job", ""), "action": ("Action", ""),
                   "Value #A": ("Last run", "dateTimeFromNow"),
                   "Value #B": ("Next run", "dateTimeFromNow"),
                   "Value #C": ("Enabled", "short")}), 12, 8)
    lay.add(timeseries("Job runs by result",
                       [(q("sum by (action, result) (increase(mailstore_spe_job_runs_total{I}"
                           "[$__rate_interval]))"), "{{action}} {{result}}")],
                       "short", stack=True, bars=True), 12, 8)
    lay.add(table("Credential certificates",
                  [(q("mailstore_spe_credential_certificate_expiry_timestamp_seconds{I} * 1000"),
                    "")],
                  {"instance_id": ("Instance", ""), "credential_id": ("Credential", ""),
                   "credential_type": ("Type", ""), "Value": ("Expires", "dateTimeFromNow")},
                  sort_by="Value", desc=False), 24, 6)

    instance_var = query_var(
        "instance_id", "Instance",
        'label_values(mailstore_spe_instance_info{job=~"$job", target=~"$target"}, instance_id)',
    )
    return dashboard(
        "mailstore-spe-instance", "MailStore SPE / Instance",
        "Drill-down into MailStore SPE instances: size, process, stores, profiles, jobs.",
        lay.panels, [datasource_var(), JOB_VAR, TARGET_VAR, instance_var],
    )


def exporter() -> dict:
    lay = Layout()
    lay.row("Exporter and polls")
    lay.add(stat("Exporter scrape up", [('up{job=~"$job"}', "{{instance}}")], "short",
                 "Prometheus' scrape of the exporter.", RED_IF_BELOW_1), 6, 4)
    lay.add(stat("SPE targets up", [(q("mailstore_spe_up{S}"), "{{target}}")], "short",
                 "Last poll of each management server.", RED_IF_BELOW_1), 6, 4)
    lay.add(stat("Failing collectors",
                 [(q("count(mailstore_spe_collector_success{S} == 0) or vector(0)"), "failing")],
                 "short", thresholds=RED_IF_ABOVE_0), 6, 4)
    lay.add(table("Exporter build",
                  [('mailstore_spe_exporter_build_info{job=~"$job"}', "")],
                  {"instance": ("Exporter", ""), "version": ("Version", ""),
                   "revision": ("Revision", ""), "python_version": ("Python", "")}), 6, 4)
    lay.add(stat("Config reload", [('mailstore_spe_config_last_reload_successful{job=~"$job"}',
                                    "{{instance}}")], "short",
                 "0: the last reload (SIGHUP or POST /-/reload) failed; the previous config "
                 "is still in use.", RED_IF_BELOW_1), 12, 4)
    lay.add(stat("Config loaded", [(
        'mailstore_spe_config_last_reload_success_timestamp_seconds{job=~"$job"} * 1000',
        "{{instance}}")], "dateTimeFromNow", "When the config in use was loaded."), 12, 4)
    lay.add(timeseries("Collector success",
                       [(q("mailstore_spe_collector_success{S}"), "{{target}} {{collector}}")],
                       "short", "1 if the collector's last run succeeded."), 12, 8)
    lay.add(timeseries("Collector duration",
                       [(q("mailstore_spe_collector_duration_seconds{S}"),
                         "{{target}} {{collector}}")], "s"), 12, 8)
    lay.add(timeseries("Data age (time since last success)",
                       [(q("time() - mailstore_spe_collector_last_success_timestamp_seconds{S}"),
                         "{{target}} {{collector}}")],
                       "s", "Alert MailStoreSPEDataStale fires above 3 intervals."), 12, 8)
    lay.add(timeseries("Data age in polling intervals",
                       [(q("(time() - mailstore_spe_collector_last_success_timestamp_seconds{S})"
                           " / mailstore_spe_collector_interval_seconds{S}"),
                         "{{target}} {{collector}}")],
                       "short", "1 = as fresh as configured; above 3 = stale."), 12, 8)
    lay.add(timeseries("Skipped runs",
                       [(q("sum by (target, collector) (increase("
                           "mailstore_spe_collector_runs_skipped_total{S}[$__rate_interval]))"),
                         "{{target}} {{collector}}")],
                       "short", "Runs skipped because the previous run was still going.",
                       bars=True), 12, 8)
    lay.add(timeseries("Per-instance collection failures",
                       [(q("count by (target, collector) ("
                           "mailstore_spe_instance_collect_success{S} == 0)"),
                         "{{target}} {{collector}}")], "short"), 12, 8)

    # The exporter's own process (prometheus_client's process/platform/GC collectors).
    lay.row("Exporter process")
    job = '{job=~"$job"}'
    lay.add(timeseries("Memory", [(f"process_resident_memory_bytes{job}", "{{instance}} resident"),
                                  (f"process_virtual_memory_bytes{job}", "{{instance}} virtual")],
                       "bytes", "Resident memory is what to compare with the memory budget "
                       "(benchmarks/RESULTS.md) and a container limit."), 8, 8)
    lay.add(timeseries("CPU", [(f"rate(process_cpu_seconds_total{job}[$__rate_interval])",
                                "{{instance}}")], "percentunit",
                       "CPU seconds per second (1 = one core busy)."), 8, 8)
    lay.add(timeseries("Open file descriptors",
                       [(f"process_open_fds{job}", "{{instance}} open"),
                        (f"process_max_fds{job}", "{{instance}} limit")], "short"), 8, 8)
    lay.add(stat("Uptime", [(f"time() - process_start_time_seconds{job}", "{{instance}}")], "s",
                 "Since the exporter process started (a restart resets its counters)."), 6, 6)
    lay.add(table("Python", [(f"python_info{job}", "")],
                  {"instance": ("Exporter", ""), "implementation": ("Implementation", ""),
                   "version": ("Version", "")}), 6, 6)
    lay.add(timeseries("Garbage collections",
                       [(f"sum by (generation) (rate(python_gc_collections_total{job}"
                         "[$__rate_interval]))", "generation {{generation}}")], "short",
                       "Collections per second by generation."), 6, 6)
    lay.add(timeseries("Objects collected by the GC",
                       [(f"sum by (generation) (rate(python_gc_objects_collected_total{job}"
                         "[$__rate_interval]))", "collected gen {{generation}}"),
                        (f"sum by (generation) (increase(python_gc_objects_uncollectable_total"
                         f"{job}[$__rate_interval]))", "uncollectable gen {{generation}}")],
                       "short", "Uncollectable objects above zero mean a reference cycle "
                       "the GC cannot free (a leak)."), 6, 6)

    lay.row("SPE API calls")
    lay.add(timeseries("API requests per second by function",
                       [(q("sum by (function) (rate(mailstore_spe_api_requests_total{S}"
                           "[$__rate_interval]))"), "{{function}}")], "reqps", stack=True), 12, 8)
    lay.add(timeseries("API failures by reason",
                       [(q("sum by (reason) (increase(mailstore_spe_api_request_failures_total{S}"
                           "[$__rate_interval]))"), "{{reason}}")],
                       "short", stack=True, bars=True), 12, 8)
    lat = ("sum by (le) (rate(mailstore_spe_api_request_duration_seconds_bucket{S}"
           "[$__rate_interval]))")
    lay.add(timeseries("API latency",
                       [(q(f"histogram_quantile({p}, {lat})"), f"p{int(p * 100)}")
                        for p in (0.5, 0.9, 0.99)], "s"), 12, 8)
    lay.add(timeseries("API latency p90 by function",
                       [(q("histogram_quantile(0.9, sum by (function, le) (rate("
                           "mailstore_spe_api_request_duration_seconds_bucket{S}"
                           "[$__rate_interval])))"), "{{function}}")], "s"), 12, 8)

    lay.row("Long-running operations")
    lay.add(timeseries("Operations in progress",
                       [(q("sum by (function) (mailstore_spe_async_operations_in_progress{S})"),
                         "{{function}}")], "short"), 8, 8)
    lay.add(timeseries("Finished operations by result",
                       [(q("sum by (function, result) (increase("
                           "mailstore_spe_async_operations_total{S}[$__rate_interval]))"),
                         "{{function}} {{result}}")], "short", stack=True, bars=True), 8, 8)
    lay.add(timeseries("Progress of running operations",
                       [(q("mailstore_spe_async_operation_progress_ratio{S}"),
                         "{{target}} {{function}}")], "percentunit"), 8, 8)
    lay.add(timeseries("Operation duration p90",
                       [(q("histogram_quantile(0.9, sum by (function, le) (rate("
                           "mailstore_spe_async_operation_duration_seconds_bucket{S}"
                           "[$__rate_interval])))"), "{{function}}")], "s"), 8, 8)
    lay.add(timeseries("Last operation duration",
                       [(q("mailstore_spe_async_operation_last_duration_seconds{S}"),
                         "{{target}} {{function}}")], "s"), 8, 8)
    lay.add(table("Last successful operation",
                  [(q("mailstore_spe_async_operation_last_success_timestamp_seconds{S} * 1000"),
                    "")],
                  {"target": ("Target", ""), "function": ("Function", ""),
                   "Value": ("Last success", "dateTimeFromNow")}), 8, 8)
    lay.add(timeseries("Skipped maintenance runs",
                       [(q("sum by (target, function) (increase("
                           "mailstore_spe_maintenance_runs_skipped_total{S}[$__rate_interval]))"),
                         "{{target}} {{function}}")],
                       "short", "Scheduled maintenance runs skipped because the same operation "
                       "was still running (only for configured maintenance).", bars=True), 24, 6)
    return dashboard(
        "mailstore-spe-exporter", "MailStore SPE / Exporter",
        "Health of mailstore-spe-exporter: collectors, SPE API calls, long-running operations.",
        lay.panels, [datasource_var(), JOB_VAR, TARGET_VAR], time_from="now-6h",
    )


DASHBOARDS = {
    "mailstore-spe-overview.json": overview,
    "mailstore-spe-instance.json": instance,
    "mailstore-spe-exporter.json": exporter,
}


def render(dash: dict) -> str:
    return json.dumps(dash, indent=2, sort_keys=False) + "\n"


# --- helpers for tests --------------------------------------------------------------------------

INTERVAL_VARS = ("__rate_interval", "__interval", "__range")
# Panels whose query may rightly return nothing on a healthy system (no problem, nothing
# running, no failure yet). An end-to-end test should not require data for them.
MAY_BE_EMPTY = frozenset({
    "Stores with problems",
    "Instances not running",
    "Per-instance collection failures",
    "Operations in progress",
    "Progress of running operations",
    "Operation duration p90",
    "Last operation duration",
    "Last successful operation",
    "Finished operations by result",
    "Skipped maintenance runs",
    "API failures by reason",
    "Credential certificates expiring soonest",
    "Credential certificates",
    "Store states",
})
DEFAULT_VALUES = {"job": ".+", "target": ".+", "instance_id": ".+", "datasource": "prometheus"}


def substitute(expr: str, values: dict[str, str] | None = None, interval: str = "5m") -> str:
    """Replace Grafana variables: interval variables by `interval`, others by `values`
    (default: `.+`, which every `=~` matcher of these dashboards accepts)."""
    vals = dict(DEFAULT_VALUES)
    vals.update(values or {})

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in INTERVAL_VARS:
            return interval
        if name not in vals:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return vals[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def iter_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def panel_queries(dash: dict, values: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, expr) of every panel target, variables substituted."""
    out = []
    for panel in iter_panels(dash["panels"]):
        for tgt in panel.get("targets", []):
            out.append((dash["title"], panel["title"], substitute(tgt["expr"], values)))
    return out


def all_panel_queries(values: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """panel_queries() of every committed dashboard file."""
    out = []
    for name in DASHBOARDS:
        dash = json.loads((HERE / name).read_text(encoding="utf-8"))
        out.extend(panel_queries(dash, values))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        text = render(build())
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python dashboards/generate.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
