#!/usr/bin/env bash
# Checks the alert rules: syntax (promtool check rules) and behaviour (promtool test rules, one
# unit test per alert in tests/), and that the Grafana dashboards match their generator.
# promtool comes with Debian's `prometheus` package. (That dashboards and rules use only
# registered metric names is checked by `cargo test -p nija-telemetry`.)
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null; then
    echo "check.sh: promtool not found; install it with: apt-get install -y prometheus" >&2
    exit 2
fi
promtool check rules nija-rules.yml
promtool test rules tests/*.yml

# Every alert has a unit test and a runbook link.
mapfile -t alerts < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' nija-rules.yml)
missing=0
for alert in "${alerts[@]}"; do
    if ! grep -q "alertname: ${alert}\$" tests/*.yml; then
        echo "check.sh: alert ${alert} has no unit test in deploy/prometheus/tests/" >&2
        missing=1
    fi
done
runbooks=$(grep -c 'runbook_url: "docs/operations.md#' nija-rules.yml)
if [ "${runbooks}" -ne "${#alerts[@]}" ]; then
    echo "check.sh: ${#alerts[@]} alerts but ${runbooks} runbook_url annotations" >&2
    missing=1
fi
[ "${missing}" -eq 0 ]
echo "check.sh: ${#alerts[@]} alerts, each tested and linked to its runbook"
python3 ../grafana/generate.py --check
