#!/usr/bin/env bash
# End-to-end check against a running nija stack: a real Prometheus scrapes the given coordinator
# and worker metrics endpoints (with the alert rules loaded), then every dashboard query in
# deploy/grafana/*.json is run against it.
#
#   deploy/prometheus/e2e-check.sh [--strict] COORDINATOR_HOST:PORT WORKER_HOST:PORT [WORKER...]
#
# Fails when a target is not scraped, a query does not parse, a dashboard variable has no value,
# or a rule evaluates with an error. Queries that parse but return no data are listed; with
# --strict they fail the check too (on a busy stack every panel should have data; on a fresh one
# a few, such as task deaths or order latency, legitimately have none yet).
# Needs: prometheus (Debian's `prometheus` package, or PROMETHEUS_BIN) and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"

strict=0
if [ "${1:-}" = "--strict" ]; then
    strict=1
    shift
fi
if [ "$#" -lt 2 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
coordinator="$1"
shift
workers=("$@")

prometheus_bin="${PROMETHEUS_BIN:-prometheus}"
if ! command -v "${prometheus_bin}" >/dev/null; then
    echo "e2e-check.sh: ${prometheus_bin} not found: apt-get install -y prometheus, or set PROMETHEUS_BIN" >&2
    exit 2
fi

dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
worker_targets="$(printf "'%s'," "${workers[@]}")"
cat >"${dir}/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${here}/nija-rules.yml
scrape_configs:
  - job_name: nija-coordinator
    static_configs:
      - targets: ['${coordinator}']
  - job_name: nija-worker
    static_configs:
      - targets: [${worker_targets%,}]
YAML

"${prometheus_bin}" --config.file="${dir}/prometheus.yml" --storage.tsdb.path="${dir}/data" \
    --web.listen-address="127.0.0.1:${port}" --log.level=warn 2>"${dir}/prometheus.log" &
prometheus_pid=$!
cleanup() {
    kill "${prometheus_pid}" 2>/dev/null || true
    wait "${prometheus_pid}" 2>/dev/null || true
    rm -rf "${dir}"
}
trap cleanup EXIT

STRICT="${strict}" API="http://127.0.0.1:${port}" REPO="${repo}" EXPECTED_TARGETS="$((1 + ${#workers[@]}))" python3 - <<'PY'
import json, os, pathlib, sys, time, urllib.parse, urllib.request

api, repo = os.environ["API"], pathlib.Path(os.environ["REPO"])
strict, expected = os.environ["STRICT"] == "1", int(os.environ["EXPECTED_TARGETS"])


def get(path):
    try:
        with urllib.request.urlopen(api + path, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def query(expr):
    return get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))


deadline = time.time() + 120
while True:
    try:
        status, answer = query("count(up == 1) and on() min(count_over_time(up[1m])) >= 6")
        if status == 200 and answer["data"]["result"] and float(answer["data"]["result"][0]["value"][1]) >= expected:
            break
    except OSError:
        pass
    if time.time() > deadline:
        _, targets = get("/api/v1/targets")
        sys.exit(f"e2e-check: targets not all scraped within 2 minutes: {json.dumps(targets)[:2000]}")
    time.sleep(0.5)

subst = {"$__rate_interval": "5s", "$broker": ".*"}
failures, empty = [], []
accounts = query("count by (account) (nija_account_positions_active)")[1]["data"]["result"]
subst["$account"] = accounts[0]["metric"]["account"] if accounts else "platform"
queries = 0
for path in sorted((repo / "deploy" / "grafana").glob("*.json")):
    board = json.loads(path.read_text())
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        metric, label = var["definition"][len("label_values("):-1].split(",")
        status, answer = query(f"count by ({label.strip()}) ({metric.strip()})")
        if status != 200 or not answer["data"]["result"]:
            failures.append(f"{path.name}: variable {var['name']} has no values")
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for k, v in subst.items():
                expr = expr.replace(k, v)
            queries += 1
            status, answer = query(expr)
            where = f"{path.name} / {panel['title']}: {expr}"
            if status != 200:
                failures.append(f"{where}: {answer.get('error')}")
            elif not answer["data"]["result"]:
                empty.append(where)

time.sleep(3)
_, rules = get("/api/v1/rules")
for group in rules["data"]["groups"]:
    for rule in group["rules"]:
        if rule["health"] == "err":
            failures.append(f"rule {rule['name']}: {rule.get('lastError')}")

for line in empty:
    print(f"e2e-check: no data: {line}")
for line in failures:
    print(f"e2e-check: FAILED: {line}")
print(f"e2e-check: {queries} queries, {len(empty)} without data, {len(failures)} failures")
if failures or (strict and empty):
    sys.exit(1)
PY
