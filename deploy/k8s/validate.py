#!/usr/bin/env python3
"""Offline validation of rendered overlays (deploy/check.sh renders them with kubectl kustomize).

Core objects are validated strictly against the Kubernetes JSON schemas bundled with
kubernetes-validate. The custom resources (ServiceMonitor, PrometheusRule, ScaledObject) have no
packaged schema, so their required fields are checked here by hand, together with the facts that
tie the objects to each other and to the rest of the repository: the alert rules are exactly
deploy/prometheus/nija-rules.yml, one autoscaler per Deployment, probes and grace period against
the configuration, commands against the image's binaries, references to existing objects.

Usage: validate.py [--kubernetes-version 1.32.0] RENDERED.yaml...
Prints every problem found and exits 1 if there is any.
"""

import argparse
import pathlib
import re
import sys
import tomllib

import kubernetes_validate
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CUSTOM_GROUPS = {"monitoring.coreos.com", "keda.sh"}
# Secrets the operator creates (docs/deploy.md); account Secrets are checked against the Role.
OPERATOR_SECRETS = {"nats-identities", "nija-coordinator-nats", "nija-worker-nats", "nats-tls"}
PORTS = {"nija-coordinator": 9464, "nija-worker": 9465}
# kubectl apply (client side) keeps the whole object in an annotation, limited to 256 KiB.
APPLY_ANNOTATION_LIMIT = 256 * 1024


class Report:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def error(self, obj: dict | None, message: str) -> None:
        where = f"{obj['kind']}/{obj['metadata']['name']}" if obj else "-"
        self.problems.append(f"{self.source}: {where}: {message}")


def group_of(obj: dict) -> str:
    api = obj.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def image_binaries() -> set[str]:
    text = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    return set(re.findall(r"--bin\s+([A-Za-z0-9_-]+)", text))


def containers(obj: dict) -> list[dict]:
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def pod_spec(obj: dict) -> dict:
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def check_service_monitor(r: Report, sm: dict, services: list[dict]) -> None:
    spec = sm.get("spec", {})
    selector = spec.get("selector")
    endpoints = spec.get("endpoints") or []
    if not selector:
        r.error(sm, "spec.selector is required")
        return
    if not endpoints:
        r.error(sm, "spec.endpoints must list at least one endpoint")
    names = set()
    for expr in selector.get("matchExpressions", []):
        if expr.get("key") == "app.kubernetes.io/name" and expr.get("operator") == "In":
            names.update(expr.get("values", []))
    names.update(
        v for k, v in selector.get("matchLabels", {}).items() if k == "app.kubernetes.io/name"
    )
    selected = [s for s in services if s["metadata"].get("labels", {}).get("app.kubernetes.io/name") in names]
    if {s["metadata"]["name"] for s in selected} != set(PORTS):
        r.error(sm, f"selects services {sorted(s['metadata']['name'] for s in selected)}, wanted {sorted(PORTS)}")
    for ep in endpoints:
        if not ep.get("port"):
            r.error(sm, "every endpoint needs a named port")
        if ep.get("honorLabels") is not True:
            r.error(sm, "endpoints need honorLabels: true (the rules select on the exporter's `service` label)")
        for svc in selected:
            if ep.get("port") not in {p.get("name") for p in svc["spec"].get("ports", [])}:
                r.error(sm, f"port {ep.get('port')!r} is not a port of Service {svc['metadata']['name']}")


def check_prometheus_rule(r: Report, rule: dict) -> None:
    groups = rule.get("spec", {}).get("groups")
    if not isinstance(groups, list) or not groups:
        r.error(rule, "spec.groups must be a non-empty list")
        return
    for g in groups:
        if not g.get("name"):
            r.error(rule, "every group needs a name")
        for item in g.get("rules") or []:
            if not (item.get("alert") or item.get("record")) or not item.get("expr"):
                r.error(rule, f"group {g.get('name')}: every rule needs alert or record, and expr")
            if item.get("alert") and "severity" not in item.get("labels", {}):
                r.error(rule, f"alert {item['alert']} has no severity label")
    source = yaml.safe_load((REPO / "deploy" / "prometheus" / "nija-rules.yml").read_text())
    if rule["spec"] != source:
        r.error(rule, "spec differs from deploy/prometheus/nija-rules.yml: run python3 deploy/k8s/sync.py")
    labels = rule["metadata"].get("labels", {})
    if labels.get("prometheus") != "k8s" or labels.get("role") != "alert-rules":
        r.error(rule, "needs the kube-prometheus labels prometheus: k8s, role: alert-rules")


def check_scaled_object(r: Report, so: dict, deployments: dict, namespace: str, partitions: int) -> None:
    spec = so.get("spec", {})
    target = spec.get("scaleTargetRef", {}).get("name")
    if target not in deployments:
        r.error(so, f"scaleTargetRef {target!r} is not a Deployment of this overlay")
    if spec.get("minReplicaCount", 0) < 1:
        r.error(so, "minReplicaCount must be at least 1: exit sweeps need a worker at all times")
    if spec.get("maxReplicaCount", 100) < spec.get("minReplicaCount", 0):
        r.error(so, "maxReplicaCount below minReplicaCount")
    consumers = []
    for t in spec.get("triggers") or []:
        meta = t.get("metadata", {})
        if t.get("type") != "nats-jetstream":
            r.error(so, f"unexpected trigger type {t.get('type')!r}")
            continue
        for key in ("natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"):
            if not meta.get(key):
                r.error(so, f"nats-jetstream trigger without {key}")
        if meta.get("stream") != "NIJA_JOBS" or meta.get("account") != "NIJA":
            r.error(so, "triggers must read account NIJA, stream NIJA_JOBS (deploy/nats/accounts.conf)")
        host = str(meta.get("natsServerMonitoringEndpoint", "")).split(":")[0]
        if host != f"nats-headless.{namespace}.svc.cluster.local":
            r.error(so, f"monitoring endpoint {host!r} is not this overlay's nats-headless Service")
        if not str(meta.get("lagThreshold", "")).isdigit():
            r.error(so, "lagThreshold must be a whole number (as a string)")
        consumers.append(meta.get("consumer"))
    wanted = [f"nija-jobs-p{p}" for p in range(partitions)]
    if consumers != wanted:
        r.error(so, f"triggers must cover exactly the {partitions} partition consumers, in order")


def check(path: pathlib.Path, version: str) -> list[str]:
    r = Report(path.name)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        if group_of(d) in CUSTOM_GROUPS:
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            r.error(d, f"schema: {e.message} at {'/'.join(str(p) for p in e.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            r.error(d, f"no schema for {d['apiVersion']} {d['kind']} in Kubernetes {version}")

    namespaces = [n["metadata"]["name"] for n in by_kind.get("Namespace", [])]
    if len(namespaces) != 1:
        r.error(None, f"an overlay creates exactly one Namespace, found {namespaces}")
        return r.problems
    namespace = namespaces[0]
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespace:
            r.error(d, f"not in the overlay's namespace {namespace}")

    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    services = by_kind.get("Service", [])
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    nija_config = next((c for n, c in configmaps.items() if n.startswith("nija-config")), None)
    if nija_config is None:
        r.error(None, "no nija-config ConfigMap")
        return r.problems
    worker_toml = tomllib.loads(nija_config["data"]["worker.toml"])
    coordinator_toml = tomllib.loads(nija_config["data"]["coordinator.toml"])
    job_deadline = parse_seconds(worker_toml.get("schedule", {}).get("job_deadline", "60s"))
    partitions = worker_toml.get("worker", {}).get("partitions", 64)
    for role, toml in (("nija-coordinator", coordinator_toml), ("nija-worker", worker_toml)):
        listen = toml.get("http", {}).get("listen", "")
        if listen != f"0.0.0.0:{PORTS[role]}":
            r.error(nija_config, f"{role}'s [http] listen must be 0.0.0.0:{PORTS[role]}, is {listen!r}")
    if {k: v for k, v in worker_toml.items() if k != "http"} != {
        k: v for k, v in coordinator_toml.items() if k != "http"
    }:
        r.error(nija_config, "worker.toml and coordinator.toml differ beyond [http]")

    # Workloads: commands, probes, ports, references.
    binaries = image_binaries()
    role_names = set()
    for role in by_kind.get("Role", []):
        for rule in role.get("rules", []):
            if rule.get("resources") == ["secrets"]:
                if set(rule.get("verbs", [])) != {"get"}:
                    r.error(role, "workers may only get Secrets")
                if not rule.get("resourceNames"):
                    r.error(role, "the Secret rule must name the account Secrets (resourceNames)")
                role_names.update(rule.get("resourceNames", []))
    for wl in list(deployments.values()) + by_kind.get("StatefulSet", []):
        spec = pod_spec(wl)
        for c in containers(wl):
            image = c.get("image", "")
            if image.split("/")[-1].startswith("nija"):
                cmd = (c.get("command") or [""])[0]
                if pathlib.PurePath(cmd).name not in binaries or not cmd.startswith("/usr/local/bin/"):
                    r.error(wl, f"command {cmd!r} is not a binary the image builds {sorted(binaries)}")
                if ":" not in image.split("/")[-1]:
                    r.error(wl, f"image {image!r} has no tag: the overlay's images: entry is missing")
        for vol in spec.get("volumes", []):
            if "configMap" in vol and vol["configMap"]["name"] not in configmaps:
                r.error(wl, f"volume {vol['name']} names a ConfigMap that is not rendered")
            if "secret" in vol and vol["secret"]["secretName"] not in OPERATOR_SECRETS:
                r.error(wl, f"volume {vol['name']} names an undocumented Secret")
        for c in containers(wl):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in OPERATOR_SECRETS:
                    r.error(wl, f"env {env['name']} names an undocumented Secret {ref['name']}")
    for name, port in PORTS.items():
        dep = deployments.get(name)
        if dep is None:
            r.error(None, f"no Deployment {name}")
            continue
        c = containers(dep)[0]
        if [p["containerPort"] for p in c.get("ports", [])] != [port]:
            r.error(dep, f"must expose exactly the metrics port {port}")
        for probe, path_ in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path_ or get.get("port") not in (port, "metrics"):
                r.error(dep, f"{probe} must GET {path_} on port {port}")
        if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
            r.error(dep, "needs resource requests and limits")
    worker = deployments.get("nija-worker")
    if worker and pod_spec(worker).get("terminationGracePeriodSeconds", 30) <= job_deadline:
        r.error(worker, f"terminationGracePeriodSeconds must exceed job_deadline ({job_deadline}s)")
    coordinator = deployments.get("nija-coordinator")
    if coordinator and (
        coordinator["spec"].get("replicas") != 1
        or coordinator["spec"].get("strategy", {}).get("type") != "Recreate"
    ):
        r.error(coordinator, "one replica, replaced with Recreate (no leader election yet)")

    # Autoscaling: one autoscaler per Deployment, which then owns the replica count.
    scaled: dict[str, list[str]] = {}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        scaled.setdefault(hpa["spec"]["scaleTargetRef"]["name"], []).append("HPA")
    for so in by_kind.get("ScaledObject", []):
        check_scaled_object(r, so, deployments, namespace, partitions)
        scaled.setdefault(so["spec"].get("scaleTargetRef", {}).get("name"), []).append("ScaledObject")
    for target, kinds in scaled.items():
        if len(kinds) > 1:
            r.error(deployments.get(target), f"scaled by {kinds}: one autoscaler per Deployment")
        if target in deployments and "replicas" in deployments[target]["spec"]:
            r.error(deployments[target], "autoscaled, so it must not set spec.replicas")

    # PodDisruptionBudgets select existing workloads.
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(
            all(pod_spec_labels(w).get(k) == v for k, v in sel.items())
            for w in list(deployments.values()) + by_kind.get("StatefulSet", [])
        ):
            r.error(pdb, "selects no workload")
    for needed in ("nats", "nija-worker"):
        if needed not in {p["metadata"]["name"] for p in by_kind.get("PodDisruptionBudget", [])}:
            r.error(None, f"no PodDisruptionBudget {needed}")

    # The worker's secret Role names exactly the accounts' Secrets.
    accounts = tomllib.loads(nija_config["data"]["accounts.toml"]).get("accounts", [])
    secret_names = {a["credentials"]["k8s_secret"] for a in accounts if "k8s_secret" in a["credentials"]}
    if role_names != secret_names:
        r.error(None, f"worker Role names {sorted(role_names)}, accounts use {sorted(secret_names)}")
    if worker:
        automount = pod_spec(worker).get("automountServiceAccountToken", True)
        if secret_names and not automount:
            r.error(worker, "reads account Secrets through the API, so it needs its token")
        if not secret_names and automount:
            r.error(worker, "calls no Kubernetes API: set automountServiceAccountToken: false")
        check_credential_files(r, worker, accounts)

    # Dashboards: one labelled ConfigMap per deploy/grafana JSON.
    dashboards = {c["metadata"]["name"]: c for c in configmaps.values() if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"}
    sources = sorted((REPO / "deploy" / "grafana").glob("*.json"))
    rendered = {k: v for c in dashboards.values() for k, v in c.get("data", {}).items()}
    for src in sources:
        if rendered.get(src.name) != src.read_text():
            r.error(None, f"dashboard {src.name} is missing or stale: run python3 deploy/k8s/sync.py")
    if len(rendered) != len(sources):
        r.error(None, "dashboard ConfigMaps and deploy/grafana/*.json differ")

    for sm in by_kind.get("ServiceMonitor", []):
        check_service_monitor(r, sm, services)
    if not by_kind.get("ServiceMonitor"):
        r.error(None, "no ServiceMonitor")
    for rule in by_kind.get("PrometheusRule", []):
        check_prometheus_rule(r, rule)
    if not by_kind.get("PrometheusRule"):
        r.error(None, "no PrometheusRule")
    check_network_policies(r, by_kind.get("NetworkPolicy", []))
    check_nats(r, by_kind.get("StatefulSet", []), configmaps)
    for cm in configmaps.values():
        size = sum(len(v.encode()) for v in cm.get("data", {}).values())
        if size > APPLY_ANNOTATION_LIMIT:
            r.error(cm, f"{size} bytes: too large for kubectl apply's last-applied annotation")
    return r.problems


def check_nats(r: Report, statefulsets: list[dict], configmaps: dict) -> None:
    """The StatefulSet, its headless Service name and the cluster routes describe one cluster."""
    nats = next((s for s in statefulsets if s["metadata"]["name"] == "nats"), None)
    conf = next((c for n, c in configmaps.items() if n.startswith("nats-config")), None)
    if nats is None or conf is None:
        r.error(None, "no nats StatefulSet or nats-config ConfigMap")
        return
    replicas = nats["spec"].get("replicas", 1)
    service = nats["spec"].get("serviceName")
    routes = re.findall(r"nats://([a-z0-9-]+)\.([a-z0-9-]+):6222", conf["data"]["nats-server.conf"])
    wanted = [(f"nats-{i}", service) for i in range(replicas)]
    if routes != wanted:
        r.error(nats, f"routes {routes} do not match {replicas} replicas behind {service}")
    if replicas < 3 or replicas % 2 == 0:
        r.error(nats, "JetStream needs an odd number of nodes, at least 3, for a quorum")
    if not nats["spec"].get("volumeClaimTemplates"):
        r.error(nats, "JetStream needs persistent volumes (DESIGN R5)")
    env = {e["name"] for c in containers(nats) for e in c.get("env", [])}
    needed = set(re.findall(r"\$(NIJA_[A-Z]+_NKEY)", conf["data"]["accounts.conf"])) | {"POD_NAME"}
    if not needed <= env:
        r.error(nats, f"the server config reads {sorted(needed - env)} from the environment; not set")


def check_credential_files(r: Report, worker: dict, accounts: list[dict]) -> None:
    """Each file credential is served by a projected account Secret, and only those are."""
    served = {}
    for vol in pod_spec(worker).get("volumes", []):
        for src in vol.get("projected", {}).get("sources", []):
            secret = src.get("secret")
            if not secret:
                continue
            mounts = [
                m["mountPath"] for c in containers(worker) for m in c.get("volumeMounts", [])
                if m["name"] == vol["name"]
            ]
            for item in secret.get("items", []):
                for mount in mounts:
                    served[f"{mount}/{item['path']}"] = secret["name"]
    wanted = {
        a["credentials"]["file"]: f"nija-account-{a['id']}"
        for a in accounts
        if "file" in a["credentials"]
    }
    if served != wanted:
        r.error(worker, f"projected credential files {served} differ from the accounts' {wanted}")


def pod_spec_labels(obj: dict) -> dict:
    return obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def check_network_policies(r: Report, policies: list[dict]) -> None:
    by_name = {p["metadata"]["name"]: p for p in policies}
    deny = by_name.get("default-deny")
    if not deny or deny["spec"].get("podSelector") != {} or deny["spec"].get("ingress") or deny["spec"].get("egress"):
        r.error(deny, "needs a default-deny policy for every pod")
    worker = by_name.get("nija-worker")
    if worker is None:
        r.error(None, "no NetworkPolicy for the workers")
        return
    egress_ports = sorted(p["port"] for rule in worker["spec"].get("egress", []) for p in rule.get("ports", []))
    if egress_ports != [53, 53, 443, 4222, 4317]:
        r.error(worker, f"workers may reach only NATS, DNS, HTTPS and OTLP; egress ports {egress_ports}")
    for name, port in PORTS.items():
        pol = by_name.get(name)
        if pol is None:
            r.error(None, f"no NetworkPolicy {name}")
            continue
        for rule in pol["spec"].get("ingress", []):
            sources = rule.get("from", [])
            prom_only = sources and all(
                s.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus"
                for s in sources
            )
            if not prom_only or [p["port"] for p in rule.get("ports", [])] != [port]:
                r.error(pol, f"only Prometheus may reach {name}'s metrics port {port}")


def parse_seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)s", value)
    if not m:
        raise SystemExit(f"validate.py: job_deadline {value!r} is not a whole number of seconds")
    return int(m.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default="1.32.0")
    parser.add_argument("rendered", nargs="+", type=pathlib.Path)
    args = parser.parse_args()
    failed = False
    for path in args.rendered:
        found = check(path, args.kubernetes_version)
        print(f"{path.name}: {'OK' if not found else f'{len(found)} problem(s)'}")
        for p in found:
            print(f"  {p}")
        failed |= bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
