#!/usr/bin/env python3
"""Writes the nija Grafana dashboards (deploy/grafana/*.json) from the panel lists below.

The JSON files are the product (provisioned as they are, and copied into Kubernetes ConfigMaps by
deploy/k8s/sync.py); this script keeps them consistent: one datasource variable `${datasource}`,
the same panel shapes, and only metric names that nija-telemetry registers (a Rust test in
telemetry/tests/names.rs checks that).

  python3 deploy/grafana/generate.py           # rewrite the dashboards
  python3 deploy/grafana/generate.py --check   # fail if a dashboard differs from this script
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}

DATASOURCE_VAR = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "hide": 0,
    "refresh": 1,
    "options": [],
}


def query_var(name, label, query, multi=False):
    var = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "current": {},
        "hide": 0,
        "options": [],
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        var["allValue"] = ".*"
    return var


class Layout:
    """Places panels left to right on a 24-column grid, wrapping rows."""

    def __init__(self):
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def row(self, title):
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def _newline(self):
        if self.x:
            self.y += self.row_height
            self.x = 0
            self.row_height = 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def targets(queries):
    out = []
    for i, (expr, legend) in enumerate(queries):
        out.append(
            {
                "datasource": DS,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + i),
            }
        )
    return out


def stat(title, expr, unit="none", thresholds=None, description=""):
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets([(expr, "")]),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
        },
    }


def red_above(value):
    return [{"color": "green", "value": None}, {"color": "red", "value": value}]


def series(title, queries, unit="none", description="", stack=False):
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets(queries),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "stacking": {"mode": "normal" if stack else "none"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def dashboard(uid, title, description, layout, variables=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["nija"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "graphTooltip": 1,
        "templating": {"list": [DATASOURCE_VAR, *variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "nija",
                "type": "dashboards",
                "tags": ["nija"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": layout.panels,
    }


RATE = "$__rate_interval"


def fleet():
    l = Layout()
    l.row("Now")
    l.add(stat("Coordinator up", 'count(nija_build_info{service="coordinator"}) or vector(0)',
               thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]), 4, 4)
    l.add(stat("Workers alive", "max(nija_workers_alive)",
               thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]), 4, 4)
    l.add(stat("Accounts over cap", "sum(nija_accounts_over_cap)", thresholds=red_above(1)), 4, 4)
    l.add(stat("Quarantined accounts", "max(nija_quarantined_accounts)", thresholds=red_above(1)), 4, 4)
    l.add(stat("Kill switch (paused)", "max(nija_paused)", thresholds=red_above(1),
               description="1 while nija pause is in force: no order is placed."), 4, 4)
    l.add(stat("Observe mode", "max(nija_observe_mode)",
               thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
               description="1 while mode = observe: everything runs, no order is placed."), 4, 4)
    l.row("Positions")
    l.add(series("Active positions", [("sum by (account_type) (nija_positions_active)", "{{account_type}}")],
                 description="Material positions (priced non-dust and unpriced), summed over accounts."), 8, 8)
    l.add(series("Dust and unpriced positions", [
        ("sum by (account_type) (nija_positions_dust)", "dust {{account_type}}"),
        ("sum by (account_type) (nija_positions_unpriced)", "unpriced {{account_type}}"),
    ]), 8, 8)
    l.add(series("Accounts reporting / over cap", [
        ("sum by (account_type) (nija_accounts)", "reporting {{account_type}}"),
        ("sum by (account_type) (nija_accounts_over_cap)", "over cap {{account_type}}"),
    ]), 8, 8)
    l.add(series("Positions sold by reason", [
        (f"sum by (reason) (increase(nija_positions_sold_total[{RATE}]))", "{{reason}}"),
    ], stack=True), 8, 8)
    l.add(series("Dust cleaned and cap enforcements", [
        (f"sum by (account_type) (increase(nija_dust_cleaned_total[{RATE}]))", "dust cleaned {{account_type}}"),
        (f"sum by (account_type) (increase(nija_cap_enforcements_total[{RATE}]))", "cap enforcements {{account_type}}"),
    ]), 8, 8)
    l.add(series("Blacklist size", [("sum by (account_type) (nija_blacklist_size)", "{{account_type}}")]), 8, 8)
    l.row("Balances")
    l.add(series("Total balance", [("sum by (account_type) (nija_balance_total_usd)", "{{account_type}}")],
                 unit="currencyUSD"), 8, 8)
    l.add(series("Position value and free capital", [
        ("sum by (account_type) (nija_position_value_usd)", "positions {{account_type}}"),
        ("sum by (account_type) (nija_free_capital_usd)", "cash {{account_type}}"),
    ], unit="currencyUSD"), 8, 8)
    l.add(series("Largest and smallest position", [
        ("max by (account_type) (nija_position_largest_usd)", "largest {{account_type}}"),
        ("min by (account_type) (nija_position_smallest_usd)", "smallest {{account_type}}"),
    ], unit="currencyUSD"), 8, 8)
    l.add(series("Reconciliation drift (worst account)", [
        ("max by (account_type) (nija_reconciliation_drift_ratio)", "{{account_type}}"),
    ], unit="percentunit", description="Alert above 1%."), 12, 8)
    l.add(series("Job results by status", [
        (f"sum by (status) (increase(nija_jobs_completed_total[{RATE}]))", "{{status}}"),
    ], stack=True), 12, 8)
    return dashboard("nija-fleet", "nija / Fleet overview",
                     "Positions, dust, caps, balances and control flags across all accounts.", l)


def account():
    a = 'account="$account"'
    l = Layout()
    l.row("Now")
    l.add(stat("Active positions", f"max(nija_account_positions_active{{{a}}})"), 4, 4)
    l.add(stat("Cap", f"max(nija_account_positions_max{{{a}}})"), 4, 4)
    l.add(stat("Over cap", f"max(nija_account_over_cap{{{a}}})", thresholds=red_above(1)), 4, 4)
    l.add(stat("Total balance", f"max(nija_account_balance_total_usd{{{a}}})", unit="currencyUSD"), 4, 4)
    l.add(stat("Drift", f"max(nija_account_reconciliation_drift_ratio{{{a}}})", unit="percentunit",
               thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.01}]), 4, 4)
    l.add(stat("Figures age", f"time() - max(nija_account_figures_timestamp_seconds{{{a}}})", unit="s",
               thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 300}],
               description="Seconds since the last fresh snapshot of this account."), 4, 4)
    l.row("Positions")
    l.add(series("Positions against the cap", [
        (f"max(nija_account_positions_active{{{a}}})", "active"),
        (f"max(nija_account_positions_max{{{a}}})", "cap"),
        (f"max(nija_account_positions_dust{{{a}}})", "dust"),
        (f"max(nija_account_positions_unpriced{{{a}}})", "unpriced"),
    ]), 12, 8)
    l.add(series("Sold by reason", [
        (f"sum by (reason) (increase(nija_account_positions_sold_total{{{a}}}[{RATE}]))", "{{reason}}"),
    ], stack=True), 12, 8)
    l.add(series("Dust cleaned, cap enforcements, blacklist", [
        (f"sum(increase(nija_account_dust_cleaned_total{{{a}}}[{RATE}]))", "dust cleaned"),
        (f"sum(increase(nija_account_cap_enforcements_total{{{a}}}[{RATE}]))", "cap enforcements"),
        (f"max(nija_account_blacklist_size{{{a}}})", "blacklist size"),
    ]), 12, 8)
    l.add(series("Reconciliation drift", [
        (f"max(nija_account_reconciliation_drift_ratio{{{a}}})", "drift"),
    ], unit="percentunit"), 12, 8)
    l.row("Balances")
    l.add(series("Balance", [
        (f"max(nija_account_balance_total_usd{{{a}}})", "total"),
        (f"max(nija_account_position_value_usd{{{a}}})", "positions"),
        (f"max(nija_account_free_capital_usd{{{a}}})", "cash"),
    ], unit="currencyUSD"), 12, 8)
    l.add(series("Largest and smallest position", [
        (f"max(nija_account_position_largest_usd{{{a}}})", "largest"),
        (f"max(nija_account_position_smallest_usd{{{a}}})", "smallest"),
    ], unit="currencyUSD"), 12, 8)
    variables = [query_var("account", "Account", "label_values(nija_account_positions_active, account)")]
    return dashboard("nija-account", "nija / Account",
                     "One account: the platform accounts and those on the metrics allow-list "
                     "([metrics] per_account, see docs/metrics.md).", l, variables)


def pipeline():
    l = Layout()
    l.row("Jobs")
    l.add(series("Jobs published", [
        (f"sum by (kind) (rate(nija_jobs_published_total[{RATE}]))", "{{kind}}"),
    ], unit="ops"), 8, 8)
    l.add(series("Job results by status", [
        (f"sum by (kind, status) (rate(nija_jobs_completed_total[{RATE}]))", "{{kind}} {{status}}"),
    ], unit="ops"), 8, 8)
    l.add(series("Failed jobs", [
        (f"sum by (kind) (rate(nija_jobs_failed_total[{RATE}]))", "{{kind}}"),
    ], unit="ops"), 8, 8)
    l.add(series("Job duration", [
        (f"histogram_quantile(0.5, sum by (le, kind) (rate(nija_job_duration_seconds_bucket[{RATE}])))", "p50 {{kind}}"),
        (f"histogram_quantile(0.95, sum by (le, kind) (rate(nija_job_duration_seconds_bucket[{RATE}])))", "p95 {{kind}}"),
        (f"sum by (kind) (rate(nija_job_duration_seconds_sum[{RATE}])) / sum by (kind) (rate(nija_job_duration_seconds_count[{RATE}]))", "mean {{kind}}"),
    ], unit="s"), 8, 8)
    l.add(series("In flight and pending", [
        ("max(nija_jobs_in_flight)", "in flight (coordinator)"),
        ("max(nija_jobs_pending)", "pending in consumers"),
        ("sum(nija_worker_jobs_in_flight)", "running on workers"),
    ]), 8, 8)
    l.add(series("Stalls and dead letters", [
        (f"sum by (kind) (increase(nija_job_stalls_total[{RATE}]))", "stalls {{kind}}"),
        (f"sum by (kind) (increase(nija_dead_letters_total[{RATE}]))", "dead-lettered {{kind}}"),
        ("max(nija_dead_letter_messages)", "held in NIJA_DLQ"),
    ]), 8, 8)
    l.row("Workers")
    l.add(series("Workers alive and lost", [
        ("max(nija_workers_alive)", "alive"),
        (f"sum(increase(nija_workers_lost_total[{RATE}]))", "declared dead"),
    ]), 8, 8)
    l.add(series("Heartbeat age", [("max by (worker) (nija_worker_heartbeat_age_seconds)", "{{worker}}")],
                 unit="s", description="A worker is marked dead after three missed heartbeats."), 8, 8)
    l.add(series("Jobs run per worker", [
        (f"sum by (instance) (rate(nija_worker_jobs_total[{RATE}]))", "{{instance}}"),
    ], unit="ops"), 8, 8)
    l.add(series("Partitions and accounts held", [
        ("sum by (instance) (nija_worker_partitions)", "partitions {{instance}}"),
        ("sum by (instance) (nija_worker_accounts)", "accounts {{instance}}"),
    ]), 8, 8)
    l.add(series("Lease takeovers and fence refusals", [
        (f"sum by (scope) (increase(nija_lease_takeovers_total[{RATE}]))", "takeover {{scope}}"),
        (f"sum by (reason) (increase(nija_order_fence_refusals_total[{RATE}]))", "fence refused {{reason}}"),
    ]), 8, 8)
    l.add(series("Heartbeats sent", [
        (f"sum by (instance) (rate(nija_heartbeats_sent_total[{RATE}]))", "{{instance}}"),
    ], unit="ops"), 8, 8)
    l.row("Supervision")
    l.add(series("Task deaths (thread died)", [
        (f"sum by (task, cause) (increase(nija_task_deaths_total[{RATE}]))", "{{task}} {{cause}}"),
    ]), 12, 8)
    l.add(series("Task restarts", [
        (f"sum by (task) (increase(nija_task_restarts_total[{RATE}]))", "{{task}}"),
    ]), 12, 8)
    return dashboard("nija-pipeline", "nija / Workers and pipeline",
                     "Jobs from scheduling to result, worker liveness, leases and supervised tasks.", l)


def brokers():
    b = 'broker=~"$broker"'
    l = Layout()
    l.row("Calls")
    l.add(series("Requests by operation", [
        (f"sum by (broker, operation) (rate(nija_broker_requests_total{{{b}}}[{RATE}]))", "{{broker}} {{operation}}"),
    ], unit="reqps"), 8, 8)
    l.add(series("Errors by class", [
        (f"sum by (broker, class) (rate(nija_broker_errors_total{{{b}}}[{RATE}]))", "{{broker}} {{class}}"),
    ], unit="reqps"), 8, 8)
    l.add(series("Error ratio", [
        (f'sum by (broker) (rate(nija_broker_errors_total{{{b},class!~"not_found|market_closed"}}[{RATE}])) '
         f"/ sum by (broker) (rate(nija_broker_requests_total{{{b}}}[{RATE}]))", "{{broker}}"),
    ], unit="percentunit", description="not_found and market_closed are normal answers; alert above 5%."), 8, 8)
    l.add(series("Request duration", [
        (f"histogram_quantile(0.5, sum by (le, broker) (rate(nija_broker_request_duration_seconds_bucket{{{b}}}[{RATE}])))", "p50 {{broker}}"),
        (f"histogram_quantile(0.95, sum by (le, broker) (rate(nija_broker_request_duration_seconds_bucket{{{b}}}[{RATE}])))", "p95 {{broker}}"),
    ], unit="s"), 12, 8)
    l.add(series("Retries", [
        (f"sum by (broker) (rate(nija_broker_retries_total{{{b}}}[{RATE}]))", "{{broker}}"),
    ], unit="reqps"), 12, 8)
    l.row("Waits")
    l.add(series("Waits by reason", [
        (f"sum by (broker, reason) (rate(nija_broker_waits_total{{{b}}}[{RATE}]))", "{{broker}} {{reason}}"),
    ], unit="ops"), 12, 8)
    l.add(series("Time spent waiting", [
        (f"sum by (broker, reason) (rate(nija_broker_wait_seconds_total{{{b}}}[{RATE}]))", "{{broker}} {{reason}}"),
    ], unit="s", description="Seconds waited per second: cooldown after connect, rate limits."), 12, 8)
    l.row("Orders")
    l.add(series("Orders by outcome", [
        (f"sum by (broker, outcome) (increase(nija_orders_total{{{b}}}[{RATE}]))", "{{broker}} {{outcome}}"),
    ], stack=True), 12, 8)
    l.add(series("Order placement latency", [
        (f"histogram_quantile(0.5, sum by (le, broker) (rate(nija_order_placement_seconds_bucket{{{b}}}[{RATE}])))", "p50 {{broker}}"),
        (f"histogram_quantile(0.95, sum by (le, broker) (rate(nija_order_placement_seconds_bucket{{{b}}}[{RATE}])))", "p95 {{broker}}"),
    ], unit="s"), 12, 8)
    variables = [query_var("broker", "Broker", "label_values(nija_broker_requests_total, broker)", multi=True)]
    return dashboard("nija-brokers", "nija / Brokers",
                     "Broker calls, errors by class, retries, waits and order placement.", l, variables)


DASHBOARDS = {
    "nija-fleet.json": fleet,
    "nija-account.json": account,
    "nija-pipeline.json": pipeline,
    "nija-brokers.json": brokers,
}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.exit(f"generate.py: stale dashboards {stale}: run python3 deploy/grafana/generate.py")
    print(f"generate.py: {len(DASHBOARDS)} dashboards {'up to date' if check else 'written'}")


if __name__ == "__main__":
    main()
