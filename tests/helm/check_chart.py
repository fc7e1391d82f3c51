#!/usr/bin/env python3
"""Checks the Helm chart (helm/authcell) and the Dockerfile as far as a machine without a
Kubernetes cluster or a Docker engine allows:

1. Helm's own engine (Helm v4's Go SDK, linked in through helm-python-sdk) lints the chart
   strictly and renders it with each shipped cell values file (values-cell-*.yaml), each other
   shipped values file (values-*.yaml, e.g. values-sentinel.yaml) layered over every cell file,
   plus the first cell with TLS, with Redis Sentinel, and a variant with every optional feature
   on; values are checked against values.schema.json;
2. every rendered manifest is validated, strictly (no unknown fields), against the Kubernetes
   JSON schemas bundled by kubernetes-validate, for the oldest Kubernetes the chart supports
   and the newest the validator bundles; the ServiceMonitor (a Prometheus Operator CRD, whose
   schema the validator does not carry) is checked field by field here instead;
3. properties of the rendered output: non-root, read-only root filesystem, gRPC probes, graceful
   drain, Secret and ConfigMap references that resolve, selectors that match, two cells that
   differ where they must (cell, endpoint, replica) and agree where they must (primary or
   Sentinels, keys); Sentinel mode (AUTHCELL_REDIS_SENTINELS and the master name, the password
   from its Secret, no AUTHCELL_REDIS_URL) and the write durability settings
   (AUTHCELL_MIN_REPLICA_ACKS, AUTHCELL_REPLICA_ACK_TIMEOUT_MS);
4. the chart refuses values it cannot deploy (missing cell, bad enum, private key in the
   trusted directory, a fixed primary and Sentinels both, Sentinels without a master name, a
   negative replica ack count);
5. the Dockerfile agrees with the chart (user, ports, binary path);
6. the authcell binary starts with exactly the environment, arguments and file layout the
   rendered Deployment gives it (Secrets laid out as the kubelet would mount them, Redis
   password expanded from $(REDIS_PASSWORD)) against a local Redis primary and replica, for the
   first cell in plaintext and with TLS and a client CA (certificates made with openssl; never
   for a Sentinel rendering, which needs real Sentinels): it
   turns SERVING on grpc.health.v1 (what the readiness probe asks), logs JSON naming its cell,
   enforces TLS and the client CA on the Verifier, serves /metrics on the metrics port, and on
   SIGTERM turns NOT_SERVING while still answering through the drain, then exits 0 within the
   grace period.

Prints one line per check and closes with `N passed, M failed`; exits non-zero on any failure.
Nothing is skipped: a missing tool or binary is a failure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

# gRPC's C core logs failed TLS handshakes at INFO; only errors here.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import helm_python as helm  # noqa: E402
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "authcell"
NAMESPACE = "authcell"
RUN_AS = 65532

# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest schema set
# kubernetes-validate bundles.
MIN_KUBE = "1.30"
# Kinds whose schemas are CRDs the validator does not bundle; checked field by field instead.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# The variant with every optional feature on, layered over the first cell's values.
ALL_OPTIONS = {
    "tls": {
        "enabled": True,
        "secretName": "authcell-tls",
        "clientCA": {"enabled": True, "secretName": "authcell-client-ca", "key": "ca.crt"},
    },
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "keys": {
        "trusted": {
            "enabled": True,
            "secretName": "",
            "items": [{"key": "previous.pem", "path": "previous.pem"}],
        }
    },
    "autoscaling": {"enabled": False},
    "replicaCount": 4,
    "podDisruptionBudget": {"minAvailable": 2},
    "podAntiAffinity": "hard",
    "redis": {
        "username": "authcell",
        "replica": {"host": ""},
        "durability": {"minReplicaAcks": 2, "replicaAckTimeoutMs": 2500},
    },
    "server": {"stalePolicy": "deny", "extraEnv": [{"name": "EXTRA", "value": "1"}]},
    "lifecycle": {"preStopSleepSeconds": 3},
}
# The variant the binary is started with over TLS: server certificate and client CA from
# separate Secrets, as cert-manager would make them.
WITH_TLS = {
    "tls": {
        "enabled": True,
        "secretName": "authcell-tls",
        "clientCA": {"enabled": True, "secretName": "authcell-client-ca", "key": "ca.crt"},
    },
}


# Redis through Sentinel, layered over the first cell's values (which keep their password
# Secret): the primary is found through the Sentinels, so primary.host is emptied; no replica, an
# ACL user and another database, so AUTHCELL_REDIS_USERNAME and AUTHCELL_REDIS_DB show. Never
# started: the binary cannot start without real Sentinels.
SENTINEL_HOSTS = [
    "redis-sentinel-0.redis:26379",
    "redis-sentinel-1.redis:26379",
    "redis-sentinel-2.redis:26379",
]
WITH_SENTINEL = {
    "redis": {
        "primary": {"host": ""},
        "sentinel": {"hosts": SENTINEL_HOSTS, "masterName": "authcell"},
        "replica": {"host": ""},
        "username": "authcell",
        "db": 2,
    },
}


class Failure(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Runner:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            result = fn()
        except Failure as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            return None
        except Exception:  # a crash is a failure too, with its traceback
            self.failed += 1
            print(f"FAIL {name}: unexpected error\n{traceback.format_exc()}", flush=True)
            return None
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - started:.2f}s)", flush=True)
        return result


# ----- rendering ---------------------------------------------------------------------------


class Rendered:
    """One rendered release: its values (as Helm merged them) and its objects."""

    def __init__(self, case: str, release: str, values: dict, manifests: dict[str, str]):
        self.case = case
        self.release = release
        self.values = values
        self.objects: list[dict] = []
        for template, text in sorted(manifests.items()):
            if template.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    expect(isinstance(doc, dict), f"{template}: a document is not a mapping")
                    for field in ("apiVersion", "kind", "metadata"):
                        expect(field in doc, f"{template}: document without {field}")
                    doc["__template"] = template
                    self.objects.append(doc)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.of_kind(kind)
        expect(len(found) == 1, f"expected one {kind}, rendered {len(found)}")
        return found[0]

    def container(self) -> dict:
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        expect(len(containers) == 1, f"expected one container, got {len(containers)}")
        return containers[0]


def values_from_file(path: Path) -> dict:
    # Helm's own YAML reader (what `-f FILE` uses).
    return helm.values_from_yaml(path.read_text())


def render(chart: helm.Chart, case: str, release: str, values: dict) -> Rendered:
    chart.validate_schema(values)
    manifests = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
    return Rendered(case, release, chart.merge_values(values), manifests)


def lint(values: dict) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [
        {"error": e} for e in report.get("errors") or []
    ]
    expect(report["total_charts_linted"] == 1, f"linted {report['total_charts_linted']} charts")
    expect(not problems, "lint: " + "; ".join(str(p.get("path", "")) + " " + p["error"] for p in problems))


# ----- schema validation -------------------------------------------------------------------


def validate_schemas(r: Rendered, kube: str) -> list[str]:
    """Validates every object; returns the CRD objects left to the field checks."""
    errors: list[str] = []
    crds: list[str] = []
    for obj in r.objects:
        doc = {k: v for k, v in obj.items() if k != "__template"}
        label = f"{obj['kind']}/{obj['metadata'].get('name')}"
        try:
            kubernetes_validate.validate(doc, kube, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{label}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
                crds.append(label)
            else:
                errors.append(f"{label}: {e.message}")
    expect(not errors, f"{len(errors)} schema error(s) against Kubernetes {kube}:\n  " + "\n  ".join(errors))
    return crds


def check_service_monitor(r: Rendered) -> None:
    """The ServiceMonitor's fields as the Prometheus Operator's v1 CRD defines them."""
    sm = r.one("ServiceMonitor")
    allowed_top = {"apiVersion", "kind", "metadata", "spec", "__template"}
    expect(set(sm) <= allowed_top, f"unexpected top-level fields {set(sm) - allowed_top}")
    spec = sm["spec"]
    expect(
        set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"},
        f"unexpected spec fields {set(spec)}",
    )
    svc = main_service(r)
    selector = spec["selector"]["matchLabels"]
    expect(
        all(svc["metadata"]["labels"].get(k) == v for k, v in selector.items()),
        "selector does not match the Service",
    )
    headless = [s for s in r.of_kind("Service") if s is not svc]
    for h in headless:
        expect(
            not all(h["metadata"]["labels"].get(k) == v for k, v in selector.items()),
            f"selector also matches {h['metadata']['name']}",
        )
    expect(
        spec["namespaceSelector"] == {"matchNames": [NAMESPACE]},
        "namespaceSelector is not the release namespace",
    )
    expect(len(spec["endpoints"]) == 1, "expected one endpoint")
    ep = spec["endpoints"][0]
    expect(
        set(ep) <= {"port", "path", "scheme", "interval", "scrapeTimeout"},
        f"unexpected endpoint fields {set(ep)}",
    )
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    expect(ep["port"] in port_names, f"endpoint port {ep['port']!r} is not a Service port ({port_names})")
    expect(ep["path"] == "/metrics" and ep["scheme"] == "http", "scrapes something other than http /metrics")
    for field in ("interval", "scrapeTimeout"):
        expect(
            re.fullmatch(r"(\d+(ms|s|m|h))+", ep[field]) is not None,
            f"{field} {ep[field]!r} is not a Prometheus duration",
        )
    for k, v in r.values["metrics"]["serviceMonitor"]["labels"].items():
        expect(sm["metadata"]["labels"].get(k) == v, f"label {k} missing from the ServiceMonitor")


# ----- properties --------------------------------------------------------------------------


def env_list(c: dict) -> list[dict]:
    return c.get("env") or []


def config_data(r: Rendered) -> dict[str, str]:
    return r.one("ConfigMap")["data"]


def main_service(r: Rendered) -> dict:
    services = [s for s in r.of_kind("Service") if s["spec"].get("clusterIP") != "None"]
    expect(len(services) == 1, f"expected one non-headless Service, got {len(services)}")
    return services[0]


def check_security(r: Rendered) -> None:
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    expect(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot is not true")
    expect(psc.get("runAsUser") == RUN_AS, f"pod: runAsUser {psc.get('runAsUser')} != {RUN_AS}")
    expect(psc.get("fsGroup") == RUN_AS, "pod: fsGroup must make the 0440 Secret files readable")
    expect(
        psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccomp is not RuntimeDefault"
    )
    expect(pod.get("automountServiceAccountToken") is False, "pod mounts a service account token")
    sc = r.container()["securityContext"]
    expect(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == RUN_AS, "container may run as root")
    expect(sc.get("readOnlyRootFilesystem") is True, "root filesystem is writable")
    expect(sc.get("allowPrivilegeEscalation") is False, "privilege escalation allowed")
    expect(sc.get("privileged") in (None, False), "privileged container")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities not all dropped")
    expect(not sc.get("capabilities", {}).get("add"), "capabilities added")
    expect(
        sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        "container: seccomp is not RuntimeDefault",
    )
    res = r.container()["resources"]
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            expect(what in res.get(kind, {}), f"no {what} {kind}")
    for volume in pod["volumes"]:
        expect(set(volume) - {"name"} <= {"secret"}, f"volume {volume['name']} is not a Secret: {volume}")
    for mount in r.container()["volumeMounts"]:
        expect(mount.get("readOnly") is True, f"mount {mount['mountPath']} is writable")


def prestop_seconds(c: dict) -> int:
    return c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)


def check_probes(r: Rendered) -> None:
    c = r.container()
    tls = r.values["tls"]["enabled"]
    port = r.values["server"]["port"]
    expect(
        f"0.0.0.0:{port}" in c["args"] and c["args"][0] == "serve",
        f"args {c['args']} do not serve on port {port}",
    )
    grpc_port = {p["name"]: p["containerPort"] for p in c["ports"]}.get("grpc")
    expect(grpc_port == port, f"container port grpc={grpc_port} != {port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        expect(probe in c, f"no {probe}")
        p = c[probe]
        if tls:
            # Kubernetes gRPC probes cannot speak TLS: TCP connect on the same port.
            expect("tcpSocket" in p and "grpc" not in p, f"{probe}: with TLS expected tcpSocket, got {p}")
        else:
            expect("grpc" in p, f"{probe} is not a gRPC probe: {p}")
            expect(p["grpc"]["port"] == port, f"{probe} probes port {p['grpc']['port']}")
            expect(
                p["grpc"].get("service") == "",
                f"{probe} checks service {p['grpc'].get('service')!r}, not overall health",
            )
    live = c["livenessProbe"]
    ready = c["readinessProbe"]
    expect(live["periodSeconds"] * live["failureThreshold"] >= 60, "liveness gives up in under a minute")
    expect(
        live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"],
        "liveness is not more patient than readiness",
    )
    # Graceful drain: authcell's drain (health NOT_SERVING, still answering) and the in-flight
    # timeout, after any preStop sleep, fit in the grace period.
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    data = config_data(r)
    sleep = prestop_seconds(c)
    expect(sleep == r.values["lifecycle"]["preStopSleepSeconds"], f"preStop sleep {sleep}s")
    drain = int(data["AUTHCELL_DRAIN_SECONDS"])
    timeout = int(data["AUTHCELL_SHUTDOWN_TIMEOUT"])
    grace = pod["terminationGracePeriodSeconds"]
    expect(drain > 0, "no drain: pods would stop answering before they leave the endpoints")
    expect(
        grace >= sleep + drain + timeout,
        f"grace period {grace}s < preStop {sleep}s + drain {drain}s + shutdown timeout {timeout}s",
    )
    strategy = r.one("Deployment")["spec"]["strategy"]["rollingUpdate"]
    expect(
        strategy["maxUnavailable"] == 0, "rolling update may take a pod down before its successor is ready"
    )


def check_env_and_secrets(r: Rendered) -> None:
    v = r.values
    c = r.container()
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    data = config_data(r)
    env = env_list(c)
    names = [e["name"] for e in env]

    # ConfigMap: every setting the binary reads, with the values given.
    expect(
        c["envFrom"] == [{"configMapRef": {"name": r.one("ConfigMap")["metadata"]["name"]}}],
        "envFrom does not name the ConfigMap",
    )
    expected = {
        "AUTHCELL_CELL": v["cell"]["name"],
        "AUTHCELL_ENDPOINT": v["cell"]["endpoint"],
        "AUTHCELL_LOG_FORMAT": "json",
        "AUTHCELL_STALE_POLICY": v["server"]["stalePolicy"],
        "AUTHCELL_MAX_STALENESS": str(v["server"]["maxStaleness"]),
        "AUTHCELL_VEND_RATE": str(v["server"]["vendRate"]),
        "AUTHCELL_VEND_BURST": str(v["server"]["vendBurst"]),
        "AUTHCELL_SIGNING_KEY_FILE": "/etc/authcell/keys/signing.pem",
        "AUTHCELL_DRAIN_SECONDS": str(v["lifecycle"]["drainSeconds"]),
        "AUTHCELL_SHUTDOWN_TIMEOUT": str(v["lifecycle"]["shutdownTimeoutSeconds"]),
    }
    if v["keys"]["trusted"]["enabled"]:
        expected["AUTHCELL_VERIFICATION_KEYS_DIR"] = "/etc/authcell/keys/trusted"
    if v["metrics"]["enabled"]:
        expected["AUTHCELL_METRICS_LISTEN"] = f"0.0.0.0:{v['metrics']['port']}"
    if v["tls"]["enabled"]:
        expected["AUTHCELL_TLS_CERT"] = "/etc/authcell/tls/tls.crt"
        expected["AUTHCELL_TLS_KEY"] = "/etc/authcell/tls/tls.key"
    durability = v["redis"]["durability"]
    expected["AUTHCELL_REPLICA_ACK_TIMEOUT_MS"] = str(durability["replicaAckTimeoutMs"])
    acks = durability.get("minReplicaAcks")
    if acks is None:
        # Automatic (the binary decides): not set at all.
        expect("AUTHCELL_MIN_REPLICA_ACKS" not in data, "AUTHCELL_MIN_REPLICA_ACKS set while automatic")
    else:
        expected["AUTHCELL_MIN_REPLICA_ACKS"] = str(acks)
    for key, value in expected.items():
        expect(data.get(key) == value, f"ConfigMap {key}={data.get(key)!r}, expected {value!r}")
    for key in data:
        expect(
            re.fullmatch(r"(AUTHCELL_[A-Z_]+|RUST_LOG)", key) is not None, f"unexpected ConfigMap key {key}"
        )
    expect(all(isinstance(x, str) for x in data.values()), "ConfigMap values must all be strings")

    # Redis: the primary as a URL, or (Sentinel mode) found through the Sentinels, never both;
    # the password from its Secret, defined before the URLs that expand it.
    password = v["redis"]["password"]
    user = v["redis"]["username"]
    auth = f"{user}:$(REDIS_PASSWORD)@" if password["secretName"] else (f"{user}@" if user else "")
    env_by_name = {e["name"]: e for e in env}
    sentinels = v["redis"]["sentinel"]["hosts"]
    sentinel_keys = ("AUTHCELL_REDIS_SENTINELS", "AUTHCELL_REDIS_MASTER_NAME", "AUTHCELL_REDIS_DB")
    if sentinels:
        expect(
            "AUTHCELL_REDIS_URL" not in env_by_name and "AUTHCELL_REDIS_URL" not in data,
            "AUTHCELL_REDIS_URL set in Sentinel mode (it conflicts with AUTHCELL_REDIS_SENTINELS)",
        )
        want = {
            "AUTHCELL_REDIS_SENTINELS": ",".join(sentinels),
            "AUTHCELL_REDIS_MASTER_NAME": v["redis"]["sentinel"]["masterName"],
            "AUTHCELL_REDIS_DB": str(v["redis"]["db"]),
        }
        for key, value in want.items():
            expect(data.get(key) == value, f"ConfigMap {key}={data.get(key)!r}, expected {value!r}")
        expect(
            data.get("AUTHCELL_REDIS_USERNAME") == (user or None),
            f"AUTHCELL_REDIS_USERNAME={data.get('AUTHCELL_REDIS_USERNAME')!r} for user {user!r}",
        )
        if password["secretName"]:
            ref = env_by_name.get("AUTHCELL_REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
            expect(
                ref == {"name": password["secretName"], "key": password["key"]},
                f"AUTHCELL_REDIS_PASSWORD from {ref}",
            )
        else:
            expect("AUTHCELL_REDIS_PASSWORD" not in env_by_name, "AUTHCELL_REDIS_PASSWORD without a Secret")
    else:
        primary = v["redis"]["primary"]
        url = f"redis://{auth}{primary['host']}:{primary['port']}/{v['redis']['db']}"
        expect(
            env_by_name.get("AUTHCELL_REDIS_URL", {}).get("value") == url,
            f"AUTHCELL_REDIS_URL={env_by_name.get('AUTHCELL_REDIS_URL')}, expected {url}",
        )
        for key in (*sentinel_keys, "AUTHCELL_REDIS_USERNAME", "AUTHCELL_REDIS_PASSWORD"):
            expect(key not in data and key not in env_by_name, f"{key} set without Sentinel")
    replica = v["redis"]["replica"]
    if replica["host"]:
        read_url = f"redis://{auth}{replica['host']}:{replica['port']}/{v['redis']['db']}"
        expect(
            env_by_name.get("AUTHCELL_REDIS_READ_URL", {}).get("value") == read_url,
            f"AUTHCELL_REDIS_READ_URL, expected {read_url}",
        )
    else:
        expect("AUTHCELL_REDIS_READ_URL" not in env_by_name, "a read URL without a replica")
    urls = [n for n in ("AUTHCELL_REDIS_URL", "AUTHCELL_REDIS_READ_URL") if n in env_by_name]
    if password["secretName"] and urls:
        ref = env_by_name["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        expect(ref == {"name": password["secretName"], "key": password["key"]}, f"REDIS_PASSWORD from {ref}")
        expect(
            all(names.index("REDIS_PASSWORD") < names.index(u) for u in urls),
            "REDIS_PASSWORD defined after a URL that expands it",
        )
    else:
        expect("REDIS_PASSWORD" not in env_by_name, "REDIS_PASSWORD defined but no URL uses it")
    for e in env:
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value", "")):
            expect(
                ref in names[: names.index(e["name"])], f"{e['name']} refers to $({ref}) before it is defined"
            )

    # Secrets: each referenced by the name the values give, mounted where the settings point.
    volumes = {vol["name"]: vol for vol in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    keys_vol = volumes[mounts["/etc/authcell/keys"]]["secret"]
    expect(
        keys_vol["secretName"] == v["keys"]["signing"]["secretName"],
        f"signing key from {keys_vol['secretName']}",
    )
    expect(
        keys_vol["items"] == [{"key": v["keys"]["signing"]["key"], "path": "signing.pem"}],
        f"signing key items {keys_vol['items']}",
    )
    if v["keys"]["trusted"]["enabled"]:
        trusted = volumes[mounts["/etc/authcell/keys/trusted"]]["secret"]
        want = v["keys"]["trusted"]["secretName"] or v["keys"]["signing"]["secretName"]
        expect(trusted["secretName"] == want, f"trusted keys from {trusted['secretName']}, expected {want}")
        if trusted["secretName"] == v["keys"]["signing"]["secretName"]:
            items = [i["key"] for i in trusted.get("items", [])]
            expect(
                items and v["keys"]["signing"]["key"] not in items,
                "the private key is mounted into the trusted directory",
            )
    else:
        expect("/etc/authcell/keys/trusted" not in mounts, "trusted keys mounted while disabled")
    if v["tls"]["enabled"]:
        tls = volumes[mounts["/etc/authcell/tls"]]["secret"]
        expect(tls["secretName"] == v["tls"]["secretName"], "TLS Secret name")
        ca = data.get("AUTHCELL_TLS_CLIENT_CA", "")
        expect(
            any(ca.startswith(m + "/") for m in mounts), f"AUTHCELL_TLS_CLIENT_CA {ca!r} is not under a mount"
        )
    for vol in volumes.values():
        expect(
            vol["secret"].get("defaultMode") == 0o440,
            f"volume {vol['name']} mode {vol['secret'].get('defaultMode')}",
        )
    expect(set(mounts.values()) == set(volumes), f"mounted {set(mounts.values())} vs volumes {set(volumes)}")


def check_wiring(r: Rendered) -> None:
    deployment = r.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    expect(
        all(pod_labels.get(k) == val for k, val in selector.items()),
        "Deployment selector does not match its pods",
    )

    def matches(sel: dict) -> bool:
        return all(pod_labels.get(k) == val for k, val in sel.items())

    container_ports = {p["name"] for p in r.container()["ports"]}
    for svc in r.of_kind("Service"):
        expect(matches(svc["spec"]["selector"]), f"Service {svc['metadata']['name']} selects no pod")
        for port in svc["spec"]["ports"]:
            expect(
                port["targetPort"] in container_ports,
                f"Service port {port['name']} targets {port['targetPort']}",
            )
    expect(
        {p["name"] for p in main_service(r)["spec"]["ports"]}
        >= ({"grpc", "metrics"} if r.values["metrics"]["enabled"] else {"grpc"}),
        "Service ports",
    )
    pdb = r.one("PodDisruptionBudget")["spec"]
    expect(matches(pdb["selector"]["matchLabels"]), "PodDisruptionBudget selects no pod")
    expect(
        ("minAvailable" in pdb) != ("maxUnavailable" in pdb),
        "PDB sets both or neither of minAvailable/maxUnavailable",
    )
    want_min = r.values["podDisruptionBudget"].get("minAvailable")
    if want_min not in (None, ""):
        expect(
            pdb.get("minAvailable") == want_min,
            f"PDB minAvailable {pdb.get('minAvailable')}, expected {want_min}",
        )
    else:
        expect(
            pdb.get("maxUnavailable") == r.values["podDisruptionBudget"]["maxUnavailable"],
            "PDB maxUnavailable",
        )
    if r.values["autoscaling"]["enabled"]:
        hpa = r.one("HorizontalPodAutoscaler")
        expect(hpa["apiVersion"] == "autoscaling/v2", f"HPA {hpa['apiVersion']}")
        target = hpa["spec"]["scaleTargetRef"]
        expect(
            target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]},
            f"HPA targets {target}",
        )
        metric = hpa["spec"]["metrics"][0]
        expect(
            metric["type"] == "Resource" and metric["resource"]["name"] == "cpu", "HPA does not scale on CPU"
        )
        expect("replicas" not in deployment["spec"], "Deployment sets replicas while the HPA owns them")
        expect(hpa["spec"]["minReplicas"] >= 2, "HPA may scale to a single replica")
    else:
        expect(not r.of_kind("HorizontalPodAutoscaler"), "HPA rendered while disabled")
        expect(deployment["spec"]["replicas"] == r.values["replicaCount"], "replicas")
    pod = deployment["spec"]["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]
    terms = anti.get("preferredDuringSchedulingIgnoredDuringExecution") or [
        {"podAffinityTerm": t} for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    ]
    expect(bool(terms), "no pod anti-affinity")
    for t in terms:
        term = t["podAffinityTerm"]
        expect(
            term["topologyKey"] == "kubernetes.io/hostname" and matches(term["labelSelector"]["matchLabels"]),
            f"anti-affinity term {term}",
        )
    if r.values["podAntiAffinity"] == "soft":
        expect(
            "preferredDuringSchedulingIgnoredDuringExecution" in anti,
            "anti-affinity across nodes is not preferred (soft)",
        )
    for spread in pod.get("topologySpreadConstraints", []):
        expect(matches(spread["labelSelector"]["matchLabels"]), "topology spread selects no pod")
    sa = r.of_kind("ServiceAccount")
    expect(
        len(sa) == 1 and pod["serviceAccountName"] == sa[0]["metadata"]["name"],
        "serviceAccountName is not the rendered ServiceAccount",
    )
    expect(
        re.fullmatch(
            r"[0-9a-f]{64}",
            deployment["spec"]["template"]["metadata"]["annotations"].get("checksum/config", ""),
        )
        is not None,
        "no config checksum on the pod template",
    )
    # app.kubernetes.io labels on everything.
    for obj in r.objects:
        labels = obj["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            expect(key in labels, f"{obj['kind']}/{obj['metadata']['name']} has no {key} label")
        expect(labels["app.kubernetes.io/instance"] == r.release, f"{obj['kind']} instance label")
        expect(labels.get("authcell/cell") == r.values["cell"]["name"], f"{obj['kind']} cell label")
    kinds = sorted({o["kind"] for o in r.objects})
    required = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
    expect(required <= set(kinds), f"rendered kinds {kinds}")


def check_two_cells(cells: list[Rendered]) -> None:
    expect(len(cells) >= 2, f"only {len(cells)} cell values files")
    data = [config_data(c) for c in cells]
    for key in ("AUTHCELL_CELL", "AUTHCELL_ENDPOINT"):
        got = [d[key] for d in data]
        expect(len(set(got)) == len(got), f"{key} not distinct across cells: {got}")
    env = [{e["name"]: e.get("value") for e in env_list(c.container())} for c in cells]
    # The primary: its URL, or (Sentinel mode) the Sentinels, master name and database.
    primaries = {
        e.get("AUTHCELL_REDIS_URL")
        or "sentinel:{AUTHCELL_REDIS_SENTINELS}/{AUTHCELL_REDIS_MASTER_NAME}/{AUTHCELL_REDIS_DB}".format(**d)
        for e, d in zip(env, data)
    }
    expect(len(primaries) == 1, f"cells write to different primaries: {primaries}")
    replicas = [e.get("AUTHCELL_REDIS_READ_URL") for e in env]
    expect(all(replicas) and len(set(replicas)) == len(replicas), f"replicas not distinct: {replicas}")
    expect(not primaries & set(replicas), "a cell reads from the primary")
    signing = {c.values["keys"]["signing"]["secretName"] for c in cells}
    expect(len(signing) == 1, f"cells sign with different Secrets: {signing}")
    releases = [c.release for c in cells]
    expect(len(set(releases)) == len(releases), "release names collide")


def check_sentinel(r: Rendered) -> None:
    """Sentinel mode, spelled out for WITH_SENTINEL (the general rules are in
    check_env_and_secrets): the primary through the Sentinels, no fixed URL anywhere."""
    data = config_data(r)
    env = {e["name"]: e for e in env_list(r.container())}
    expect(
        data.get("AUTHCELL_REDIS_SENTINELS") == ",".join(SENTINEL_HOSTS),
        f"AUTHCELL_REDIS_SENTINELS={data.get('AUTHCELL_REDIS_SENTINELS')!r}",
    )
    expect(
        data.get("AUTHCELL_REDIS_MASTER_NAME") == "authcell",
        f"AUTHCELL_REDIS_MASTER_NAME={data.get('AUTHCELL_REDIS_MASTER_NAME')!r}",
    )
    expect(data.get("AUTHCELL_REDIS_DB") == "2", f"AUTHCELL_REDIS_DB={data.get('AUTHCELL_REDIS_DB')!r}")
    expect(
        data.get("AUTHCELL_REDIS_USERNAME") == "authcell",
        f"AUTHCELL_REDIS_USERNAME={data.get('AUTHCELL_REDIS_USERNAME')!r}",
    )
    secret = r.values["redis"]["password"]
    expect(bool(secret["secretName"]), "the Sentinel case needs a password Secret")
    ref = env.get("AUTHCELL_REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
    expect(
        ref == {"name": secret["secretName"], "key": secret["key"]},
        f"AUTHCELL_REDIS_PASSWORD from {ref}, expected the Secret {secret['secretName']}",
    )
    for name in ("AUTHCELL_REDIS_URL", "AUTHCELL_REDIS_READ_URL", "REDIS_PASSWORD"):
        expect(name not in env and name not in data, f"{name} set in Sentinel mode without a replica")
    expect(
        not any("$(" in e.get("value", "") for e in env.values()), "an env value refers to another variable"
    )


def check_durability(chart: helm.Chart, base: dict) -> None:
    """redis.durability: null (automatic) leaves AUTHCELL_MIN_REPLICA_ACKS unset; a number, 0
    included, is set as it is; the ack timeout is always set."""

    def data(durability: dict) -> dict[str, str]:
        values = deep_merge(base, {"redis": {"durability": durability}})
        return config_data(render(chart, "durability", "authcell-durability", values))

    auto = data({})
    expect("AUTHCELL_MIN_REPLICA_ACKS" not in auto, "AUTHCELL_MIN_REPLICA_ACKS set by default (automatic)")
    expect(
        auto.get("AUTHCELL_REPLICA_ACK_TIMEOUT_MS") == "1000",
        f"default AUTHCELL_REPLICA_ACK_TIMEOUT_MS={auto.get('AUTHCELL_REPLICA_ACK_TIMEOUT_MS')!r}",
    )
    for acks in (0, 1, 3):
        got = data({"minReplicaAcks": acks, "replicaAckTimeoutMs": 250})
        expect(
            got.get("AUTHCELL_MIN_REPLICA_ACKS") == str(acks),
            f"minReplicaAcks {acks}: AUTHCELL_MIN_REPLICA_ACKS={got.get('AUTHCELL_MIN_REPLICA_ACKS')!r}",
        )
        expect(got.get("AUTHCELL_REPLICA_ACK_TIMEOUT_MS") == "250", "replicaAckTimeoutMs 250")
    back = data({"minReplicaAcks": None})
    expect("AUTHCELL_MIN_REPLICA_ACKS" not in back, "minReplicaAcks null: AUTHCELL_MIN_REPLICA_ACKS set")


# ----- refusals ----------------------------------------------------------------------------


def expect_refused(chart: helm.Chart, values: dict, message: str) -> None:
    try:
        chart.render(values, name="refused", namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        expect(message in str(e), f"refused, but with {e!s:.300}")
        return
    raise Failure(f"rendered values it should refuse ({message})")


# ----- Dockerfile --------------------------------------------------------------------------


def check_dockerfile(chart_values: dict) -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    expect(
        len(froms) == 2 and froms[0].split()[1].startswith("rust:"),
        f"expected a rust build stage and a runtime stage: {froms}",
    )
    expect(re.search(r"distroless|debian:.*-slim", froms[1]) is not None, f"runtime base {froms[1]}")
    expect("cargo build --release --locked" in text, "no `cargo build --release --locked`")
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    expect(
        users and users[-1].split(":")[0] == str(chart_values["podSecurityContext"]["runAsUser"]),
        f"image USER {users} != chart runAsUser",
    )
    exposed = {
        int(p.split("/")[0]) for ln in lines if ln.upper().startswith("EXPOSE ") for p in ln.split()[1:]
    }
    want = {chart_values["server"]["port"], chart_values["metrics"]["port"]}
    expect(want <= exposed, f"EXPOSE {exposed} lacks {want - exposed}")
    entry = [ln for ln in lines if ln.upper().startswith("ENTRYPOINT ")]
    expect(
        entry and json.loads(entry[-1].split(None, 1)[1]) == ["/usr/local/bin/authcell"],
        f"ENTRYPOINT {entry}",
    )
    expect(
        re.search(r"COPY --from=\S+ \S+ /usr/local/bin/authcell", text) is not None,
        "binary not copied to /usr/local/bin/authcell",
    )
    ignored = (REPO / ".dockerignore").read_text().split()
    expect("target/" in ignored or "target" in ignored, ".dockerignore does not exclude target/")


# ----- the binary under the rendered configuration ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        expect(proc.poll() is None, f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"nothing listens on 127.0.0.1:{port}")


def kube_env(
    pod_env: list[dict], config: dict[str, str], secret_values: dict[tuple[str, str], str]
) -> dict[str, str]:
    """The environment the kubelet gives the container: envFrom first, then env in order,
    $(VAR) expanded from what is defined so far ($$ escapes)."""
    env = dict(config)
    for e in pod_env:
        if "value" in e:

            def expand(m: re.Match) -> str:
                if m.group(0) == "$$":
                    return "$"
                name = m.group(1)
                return env[name] if name in env else m.group(0)

            env[e["name"]] = re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", expand, e["value"])
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secret_values[(ref["name"], ref["key"])]
    return env


def openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    expect(tool is not None, "openssl not on PATH (apt-get install -y openssl)")
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True)
    expect(done.returncode == 0, f"openssl {' '.join(args[:2])}: {done.stderr.strip()}")


def make_pki(d: Path) -> dict[str, str]:
    """A server CA with a certificate for localhost / 127.0.0.1, and a client CA with one client
    certificate: PEM texts by name."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("server-ca", "client-ca"):
        openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.crt",
            "-days",
            "1",
            "-subj",
            f"/CN=authcell test {ca}",
            cwd=d,
        )
    leaves = {
        "server": ("server-ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        "client": ("client-ca", "extendedKeyUsage=clientAuth\n"),
    }
    for leaf, (ca, ext) in leaves.items():
        (d / f"{leaf}.ext").write_text("basicConstraints=critical,CA:FALSE\n" + ext)
        openssl("req", *ec, "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr", "-subj", f"/CN={leaf}", cwd=d)
        openssl(
            "x509",
            "-req",
            "-in",
            f"{leaf}.csr",
            "-CA",
            f"{ca}.crt",
            "-CAkey",
            f"{ca}.key",
            "-CAcreateserial",
            "-out",
            f"{leaf}.crt",
            "-days",
            "1",
            "-extfile",
            f"{leaf}.ext",
            cwd=d,
        )
    names = ("server-ca.crt", "client-ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    return {n: (d / n).read_text() for n in names}


def smoke(r: Rendered, binary: Path) -> None:
    """Starts authcell the way the rendered Deployment would, against local Redis."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    expect(binary.is_file() and os.access(binary, os.X_OK), f"no authcell binary at {binary} (cargo build)")
    expect(
        not r.values["redis"]["sentinel"]["hosts"], "the start-up check needs a fixed primary, not Sentinels"
    )
    redis = shutil.which("redis-server")
    expect(redis is not None, "redis-server not on PATH (scripts/test installs it)")
    v = r.values
    c = r.container()
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    tls = v["tls"]["enabled"]
    procs: list[subprocess.Popen] = []
    files: list[Any] = []
    tmp = Path(tempfile.mkdtemp(prefix="authcell-chart-"))
    try:
        # Redis: the primary and this cell's replica, both requiring the password.
        expect(bool(v["redis"]["replica"]["host"]), "the start-up check needs a cell with a replica")
        password = secrets.token_urlsafe(18)
        primary_port, replica_port = free_port(), free_port()
        common = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
            "--dir",
            str(tmp),
        ]
        log = open(tmp / "redis.log", "w")
        files.append(log)
        for cmd in (
            [redis, "--port", str(primary_port), *common],
            [
                redis,
                "--port",
                str(replica_port),
                *common,
                "--replicaof",
                "127.0.0.1",
                str(primary_port),
                "--masterauth",
                password,
            ],
        ):
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 10
        wait_port(primary_port, procs[0], deadline)
        wait_port(replica_port, procs[1], deadline)

        # The Secrets' contents, then laid out as the kubelet mounts them (items -> files).
        def keygen(*extra: str, stdin: str | None = None) -> str:
            return subprocess.run(
                [str(binary), "keygen", *extra], input=stdin, check=True, capture_output=True, text=True
            ).stdout

        secret_data: dict[str, dict[str, str]] = {}

        def put(name: str, key: str, value: str) -> None:
            secret_data.setdefault(name, {})[key] = value

        put(v["keys"]["signing"]["secretName"], v["keys"]["signing"]["key"], keygen())
        put(v["redis"]["password"]["secretName"], v["redis"]["password"]["key"], password)
        if v["keys"]["trusted"]["enabled"]:
            put(v["keys"]["trusted"]["secretName"], "next.pem", keygen("--public", stdin=keygen()))
        pki: dict[str, str] = {}
        if tls:
            pki = make_pki(tmp)
            put(v["tls"]["secretName"], "tls.crt", pki["server.crt"])
            put(v["tls"]["secretName"], "tls.key", pki["server.key"])
            put(v["tls"]["secretName"], "ca.crt", pki["server-ca.crt"])
            ca = v["tls"]["clientCA"]
            if ca["enabled"]:
                put(ca["secretName"] or v["tls"]["secretName"], ca["key"], pki["client-ca.crt"])
        root = tmp / "root"
        volumes = {vol["name"]: vol["secret"] for vol in pod["volumes"]}
        for mount in c["volumeMounts"]:
            secret = volumes[mount["name"]]
            data = secret_data[secret["secretName"]]
            items = secret.get("items") or [{"key": k, "path": k} for k in data]
            target = root / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            for item in items:
                (target / item["path"]).write_text(data[item["key"]])

        # The container's environment and arguments, pointed at this machine.
        secret_values = {(n, k): val for n, d in secret_data.items() for k, val in d.items()}
        env = kube_env(env_list(c), config_data(r), secret_values)
        leftover = [k for k, val in env.items() if "$(" in val]
        expect(not leftover, f"unexpanded references in {leftover}")
        grpc_port, metrics_port = free_port(), free_port()
        primary, replica = v["redis"]["primary"], v["redis"]["replica"]
        rewrites = {
            f"{primary['host']}:{primary['port']}": f"127.0.0.1:{primary_port}",
            f"{replica['host']}:{replica['port']}": f"127.0.0.1:{replica_port}",
            f"0.0.0.0:{v['server']['port']}": f"127.0.0.1:{grpc_port}",
            f"0.0.0.0:{v['metrics']['port']}": f"127.0.0.1:{metrics_port}",
            "/etc/authcell/": f"{root}/etc/authcell/",
        }

        def local(text: str) -> str:
            for old, new in rewrites.items():
                text = text.replace(old, new)
            return text

        env = {k: local(val) for k, val in env.items()}
        want_url = f"redis://:{password}@127.0.0.1:{primary_port}/0"
        expect(env["AUTHCELL_REDIS_URL"] == want_url, "primary URL with the password expanded")
        args = [local(a) for a in c["args"]]
        stderr = open(tmp / "authcell.log", "w+")
        files.append(stderr)
        node = subprocess.Popen(
            [str(binary), *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        )
        procs.append(node)

        # Readiness: overall health until SERVING (over TLS when on: the kubelet's gRPC probe
        # cannot, which is why the chart probes TCP then).
        address = f"127.0.0.1:{grpc_port}"

        def channel(client_cert: bool = False) -> grpc.Channel:
            if not tls:
                return grpc.insecure_channel(address)
            creds = grpc.ssl_channel_credentials(
                root_certificates=pki["server-ca.crt"].encode(),
                private_key=pki["client.key"].encode() if client_cert else None,
                certificate_chain=pki["client.crt"].encode() if client_cert else None,
            )
            return grpc.secure_channel(
                address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
            )

        def health(ch: grpc.Channel) -> Any:
            try:
                request = health_pb2.HealthCheckRequest(service="")
                return health_pb2_grpc.HealthStub(ch).Check(request, timeout=1).status
            except grpc.RpcError as e:
                return e.code()

        deadline = time.monotonic() + 30
        wait_port(grpc_port, node, deadline)
        ch = channel()
        files.append(ch)
        status = None
        while time.monotonic() < deadline and status != health_pb2.HealthCheckResponse.SERVING:
            expect(node.poll() is None, f"authcell exited with {node.returncode}")
            status = health(ch)
            if status != health_pb2.HealthCheckResponse.SERVING:
                time.sleep(0.1)
        expect(
            status == health_pb2.HealthCheckResponse.SERVING,
            f"health never SERVING{' over TLS' if tls else ''} (last: {status})",
        )
        seen = ["SERVING" + (" over TLS" if tls else "")]

        # The node took the chart's settings: JSON logs naming this cell and endpoint.
        stderr.seek(0)
        events = []
        for line in stderr.read().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                raise Failure(f"a log line is not JSON: {line!r}")
        serving = [e for e in events if e.get("fields", {}).get("message") == "serving with Redis"]
        expect(len(serving) == 1, f"no 'serving with Redis' event in {events}")
        fields = serving[0]["fields"]
        expect(
            fields.get("cell") == v["cell"]["name"] and fields.get("endpoint") == v["cell"]["endpoint"],
            f"served as {fields}",
        )

        if tls:
            plain = grpc.insecure_channel(address)
            files.append(plain)
            expect(
                health(plain) != health_pb2.HealthCheckResponse.SERVING, "plaintext answered on a TLS port"
            )
            seen.append("plaintext refused")
        if tls and v["tls"]["clientCA"]["enabled"]:
            # The Verifier requires a client certificate from the client CA: an empty Authorize
            # is UNAUTHENTICATED without one, and gets past TLS (to request validation) with one.
            def authorize(ch: grpc.Channel) -> grpc.StatusCode:
                call = ch.unary_unary(
                    "/authcell.v1.Verifier/Authorize",
                    request_serializer=lambda b: b,
                    response_deserializer=lambda b: b,
                )
                try:
                    call(b"", timeout=2)
                    return grpc.StatusCode.OK
                except grpc.RpcError as e:
                    return e.code()

            without = authorize(ch)
            expect(without == grpc.StatusCode.UNAUTHENTICATED, f"Authorize without a client cert: {without}")
            mtls = channel(client_cert=True)
            files.append(mtls)
            with_cert = authorize(mtls)
            expect(
                with_cert == grpc.StatusCode.INVALID_ARGUMENT, f"Authorize with a client cert: {with_cert}"
            )
            seen.append("client CA enforced on the Verifier")

        # Metrics: Prometheus text on the metrics port the chart sets (AUTHCELL_METRICS_LISTEN).
        if v["metrics"]["enabled"]:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                expect(response.status == 200, f"GET /metrics: {response.status}")
                body = response.read().decode()
            loaded = re.search(r"^authcell_revocation_view_loaded 1(\.0)?$", body, re.M)
            expect(loaded is not None, f"/metrics does not report a loaded view:\n{body[:500]}")
            seen.append("/metrics")

        # Graceful drain: after SIGTERM health turns NOT_SERVING at once while calls are still
        # answered, and the process exits 0 within what the grace period leaves after preStop.
        budget = pod["terminationGracePeriodSeconds"] - prestop_seconds(c)
        started = time.monotonic()
        node.send_signal(signal.SIGTERM)
        status = None
        while time.monotonic() - started < 2 and node.poll() is None:
            status = health(ch)
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
            time.sleep(0.05)
        expect(
            status == health_pb2.HealthCheckResponse.NOT_SERVING,
            f"health {status} after SIGTERM, expected NOT_SERVING while draining",
        )
        # Still answering (NOT_SERVING, not a refused connection) well into the drain period
        # the chart sets (AUTHCELL_DRAIN_SECONDS), while the pod leaves the endpoints.
        drain = int(config_data(r)["AUTHCELL_DRAIN_SECONDS"])
        time.sleep(max(0.0, started + drain * 0.6 - time.monotonic()))
        status = health(ch)
        expect(
            status == health_pb2.HealthCheckResponse.NOT_SERVING,
            f"{drain * 0.6:.1f}s into a {drain}s drain, health is {status}: not answering while draining",
        )
        try:
            rc = node.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            raise Failure(f"still running {budget}s after SIGTERM")
        expect(rc == 0, f"exit status {rc} after SIGTERM")
        elapsed = time.monotonic() - started
        expect(elapsed >= drain * 0.9, f"exited {elapsed:.1f}s after SIGTERM, before the {drain}s drain")
        seen.append(
            f"NOT_SERVING on SIGTERM, exit 0 after {time.monotonic() - started:.1f}s (budget {budget}s)"
        )
        print(f"     {'; '.join(seen)}", flush=True)
    except Failure as e:
        log_path = tmp / "authcell.log"
        tail = log_path.read_text()[-2000:] if log_path.exists() else ""
        raise Failure(f"{e}\n--- authcell stderr (tail) ---\n{tail}") from None
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in files:
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ----- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--authcell-bin",
        type=Path,
        default=REPO / "target" / "debug" / "authcell",
        help="the authcell binary for the start-up check",
    )
    args = parser.parse_args()

    started = time.monotonic()
    run = Runner()
    latest = kubernetes_validate.latest_version()
    kube_versions = [MIN_KUBE, ".".join(latest.split(".")[:2])]
    print(
        f"helm-python-sdk: Helm {helm.helm_sdk_version()} (libhelm_c {helm.helm_c_version()}); kubernetes-validate {kubernetes_validate.__version__}, schemas for Kubernetes {', '.join(kube_versions)}",
        flush=True,
    )

    # values-cell-*.yaml: one cell each. Any other values-*.yaml (values-sentinel.yaml) is a
    # layer for a cell file (`-f values-cell-a.yaml -f values-sentinel.yaml`): rendered over each.
    files = sorted(CHART.glob("values-*.yaml"))
    cell_files = [f for f in files if f.name.startswith("values-cell-")]
    layers = [f for f in files if f not in cell_files]
    print(
        f"values files: {', '.join(f.name for f in cell_files)}; "
        f"layered over each: {', '.join(f.name for f in layers) or 'none'}",
        flush=True,
    )
    unvalidated: set[str] = set()

    with helm.Chart.load(CHART) as chart:
        defaults = chart.values
        run.check(
            "chart metadata",
            lambda: expect(
                chart.metadata.get("apiVersion") == "v2" and chart.schema is not None,
                "Chart.yaml is not apiVersion v2 or values.schema.json is missing",
            ),
        )
        run.check(
            "two or more cell values files",
            lambda: expect(len(cell_files) >= 2, f"found {[f.name for f in cell_files]}"),
        )

        cases: list[tuple[str, dict]] = []
        for f in cell_files:
            cases.append((f.name, values_from_file(f)))
        cell_cases = list(cases)
        if cell_files:
            first = cases[0][1]
            cases.append((f"{cell_files[0].name} + every option", deep_merge(first, ALL_OPTIONS)))
            cases.append((f"{cell_files[0].name} + TLS", deep_merge(first, WITH_TLS)))
            cases.append((f"{cell_files[0].name} + Sentinel", deep_merge(first, WITH_SENTINEL)))
        for layer in layers:
            layer_values = values_from_file(layer)
            for name, values in cell_cases:
                cases.append((f"{name} + {layer.name}", deep_merge(values, layer_values)))

        cells: list[Rendered] = []
        layered: dict[str, list[Rendered]] = {layer.name: [] for layer in layers}
        started_cells: list[Rendered] = []
        for case, values in cases:
            cell = values.get("cell", {}).get("name", "x")
            release = f"authcell-{cell}"
            run.check(f"[{case}] helm lint --strict", lambda: lint(values))
            r = run.check(
                f"[{case}] renders (values schema, templates)", lambda: render(chart, case, release, values)
            )
            if r is None:
                continue
            if case in {f.name for f in cell_files}:
                cells.append(r)
            for layer in layers:
                if case.endswith(f" + {layer.name}"):
                    layered[layer.name].append(r)
            # Started: the first cell, plaintext and TLS. Never a Sentinel rendering (the binary
            # cannot start without real Sentinels).
            if case == cases[0][0] or case.endswith("+ TLS"):
                started_cells.append(r)
            for kube in kube_versions:
                crds = run.check(
                    f"[{case}] {len(r.objects)} manifests valid against Kubernetes {kube} schemas (strict)",
                    lambda: validate_schemas(r, kube),
                )
                unvalidated.update(crds or [])
            if r.of_kind("ServiceMonitor"):
                run.check(
                    f"[{case}] ServiceMonitor fields (no schema bundled for its CRD)",
                    lambda: check_service_monitor(r),
                )
            run.check(
                f"[{case}] non-root, read-only root fs, no privileges, resources", lambda: check_security(r)
            )
            run.check(f"[{case}] probes and graceful drain", lambda: check_probes(r))
            run.check(
                f"[{case}] ConfigMap, Redis URLs, Secret references and mounts",
                lambda: check_env_and_secrets(r),
            )
            run.check(f"[{case}] selectors, HPA, PDB, anti-affinity, labels", lambda: check_wiring(r))
            if case.endswith("+ Sentinel"):
                run.check(
                    f"[{case}] Sentinel mode: AUTHCELL_REDIS_SENTINELS, master name, db, user, "
                    "password from its Secret, no AUTHCELL_REDIS_URL",
                    lambda: check_sentinel(r),
                )

        run.check(
            "two cells: distinct cell/endpoint/replica, shared primary and signing key",
            lambda: check_two_cells(cells),
        )
        for layer in layers:
            run.check(
                f"two cells with {layer.name}: distinct cell/endpoint/replica, "
                "shared primary (or Sentinels) and signing key",
                lambda: check_two_cells(layered[layer.name]),
            )

        base = cases[0][1] if cases else {}
        run.check(
            "refuses: no values (cell.name required)",
            lambda: expect_refused(chart, {}, "cell.name is required"),
        )
        run.check(
            "refuses: no Redis primary",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"redis": {"primary": {"host": ""}}}),
                "redis.primary.host is required",
            ),
        )
        run.check(
            "refuses: a fixed Redis primary and Sentinels both",
            lambda: expect_refused(
                chart,
                deep_merge(
                    base, {"redis": {"sentinel": {"hosts": SENTINEL_HOSTS, "masterName": "authcell"}}}
                ),
                "redis.primary.host and redis.sentinel.hosts are both set",
            ),
        )
        run.check(
            "refuses: Sentinels without a master name",
            lambda: expect_refused(
                chart,
                deep_merge(base, deep_merge(WITH_SENTINEL, {"redis": {"sentinel": {"masterName": ""}}})),
                "redis.sentinel.masterName is required",
            ),
        )
        run.check(
            "refuses: a Sentinel address without a port (values schema)",
            lambda: expect_refused(
                chart,
                deep_merge(
                    base,
                    deep_merge(WITH_SENTINEL, {"redis": {"sentinel": {"hosts": ["redis-sentinel-0.redis"]}}}),
                ),
                "/redis/sentinel/hosts/0",
            ),
        )
        run.check(
            "redis.durability: AUTHCELL_MIN_REPLICA_ACKS (0 included, unset when automatic), "
            "AUTHCELL_REPLICA_ACK_TIMEOUT_MS",
            lambda: check_durability(chart, base),
        )
        run.check(
            "refuses: a negative minReplicaAcks (values schema)",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"redis": {"durability": {"minReplicaAcks": -1}}}),
                "/redis/durability/minReplicaAcks",
            ),
        )
        run.check(
            "refuses: a replicaAckTimeoutMs of 0 (values schema)",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"redis": {"durability": {"replicaAckTimeoutMs": 0}}}),
                "/redis/durability/replicaAckTimeoutMs",
            ),
        )
        run.check(
            "refuses: no signing key Secret",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"keys": {"signing": {"secretName": ""}}}),
                "keys.signing.secretName is required",
            ),
        )
        run.check(
            "refuses: bad stale policy (values schema)",
            lambda: expect_refused(
                chart, deep_merge(base, {"server": {"stalePolicy": "maybe"}}), "stalePolicy"
            ),
        )
        run.check(
            "refuses: endpoint the binary would reject (values schema)",
            lambda: expect_refused(
                chart, deep_merge(base, {"cell": {"endpoint": "https://a/"}}), "/cell/endpoint"
            ),
        )
        run.check(
            "refuses: private key in the trusted directory",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"keys": {"trusted": {"enabled": True, "secretName": "", "items": []}}}),
                "keys.trusted",
            ),
        )
        run.check(
            "refuses: a grace period shorter than drain + shutdown timeout",
            lambda: expect_refused(
                chart,
                deep_merge(base, {"terminationGracePeriodSeconds": 10}),
                "terminationGracePeriodSeconds",
            ),
        )
        run.check(
            "refuses: TLS without a Secret",
            lambda: expect_refused(
                chart, deep_merge(base, {"tls": {"enabled": True}}), "tls.secretName is required"
            ),
        )

        run.check(
            "Dockerfile agrees with the chart (user, ports, binary)", lambda: check_dockerfile(defaults)
        )
        for r in started_cells:
            run.check(
                f"[{r.case}] authcell runs under the rendered Deployment's env, args and mounts",
                lambda: smoke(r, args.authcell_bin.resolve()),
            )
        run.check(
            "the binary was started for a cell and for TLS",
            lambda: expect(len(started_cells) == 2, "missing"),
        )

    if unvalidated:
        print(
            f"not schema-validated (CRD, no schema in kubernetes-validate; field-checked above): {', '.join(sorted(unvalidated))}",
            flush=True,
        )
    print(f"chart checks took {time.monotonic() - started:.1f}s", flush=True)
    print(f"{run.passed} passed, {run.failed} failed", flush=True)
    return 0 if run.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
