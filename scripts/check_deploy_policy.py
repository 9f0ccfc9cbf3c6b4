#!/usr/bin/env python3
"""Asserts what deploy/ promises beyond schema validity, on manifests rendered by kustomize.

usage: check_deploy_policy.py RENDERED.yaml [RENDERED.yaml ...]
       check_deploy_policy.py --scrape-config deploy/prometheus/prometheus.yml

Schema validation (kubernetes-validate, the CRD schemas) says the objects are well formed; this
says they are the objects the contract (docs/design.md) asks for: least-privilege RBAC, the DaemonSet's
host access and capabilities, probes, honor_labels. Prints one line per failed promise and exits
1 if there is any, 2 on unreadable input.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAMESPACE = "network-mapper"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
READ_VERBS = {"get", "list", "watch"}
# Exactly what the inventory reads (docs/design.md §4, the inventory issue).
RBAC = {("", "pods"), ("", "services"), ("", "nodes"), ("discovery.k8s.io", "endpointslices"), ("apps", "replicasets"),
        ("batch", "jobs")}
CAPABILITIES = ["NET_RAW"]
# The image `make image` builds and tags (scripts/build-image.sh); overlays may point elsewhere.
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
LOCAL_IMAGE = f"localhost/network-mapper:{VERSION}"
# Ports a hostNetwork pod must not take: kubelet, kube-proxy, controller-manager, scheduler,
# etcd, node-exporter, NodeLocal DNSCache, Cilium/Hubble, common exporters of node agents.
RESERVED_PORTS = {53, 80, 443, 2379, 2380, 6443, 8080, 9100, 9153, 9253, 9353, 9962, 9963, 9964,
                  9965, 10248, 10249, 10250, 10255, 10256, 10257, 10259}

WEB_CONFIG_FLAG = re.compile(r"--web-config-file[= ](\S+)")

failures = []


def fail(where, message):
    failures.append(f"FAIL {where}: {message}")


def load(path):
    try:
        return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as err:
        print(f"{path}: cannot read rendered manifests: {err}", file=sys.stderr)
        sys.exit(2)


def by_kind(objects, kind):
    return [o for o in objects if o.get("kind") == kind]


def check_namespaces(src, objects):
    # The Helm chart installs into a namespace made beforehand (`helm install --create-namespace`), as Helm
    # expects; a kustomize rendering brings its own, with the Pod Security labels.
    from_chart = any("helm.sh/chart" in o["metadata"].get("labels", {}) for o in objects)
    if not from_chart and not any(o["metadata"]["name"] == NAMESPACE for o in by_kind(objects, "Namespace")):
        fail(src, f"no Namespace {NAMESPACE}")
    for o in objects:
        ns = o["metadata"].get("namespace")
        where = f"{src} {o['kind']}/{o['metadata']['name']}"
        if o["kind"] in CLUSTER_SCOPED and ns:
            fail(where, "cluster-scoped object has a namespace")
        if o["kind"] not in CLUSTER_SCOPED and ns != NAMESPACE:
            fail(where, f"namespace is {ns!r}, expected {NAMESPACE!r}")


def check_rbac(src, objects):
    roles = by_kind(objects, "ClusterRole")
    if len(roles) != 1:
        fail(src, f"expected one ClusterRole, found {len(roles)}")
        return
    granted = set()
    for rule in roles[0].get("rules", []):
        where = f"{src} ClusterRole rule {rule}"
        if set(rule.get("verbs", [])) != READ_VERBS:
            fail(where, "verbs must be exactly get, list, watch")
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            fail(where, "resourceNames/nonResourceURLs are not expected")
        granted |= {(g, r) for g in rule.get("apiGroups", []) for r in rule.get("resources", [])}
    if granted != RBAC:
        fail(f"{src} ClusterRole", f"grants {sorted(granted)}, expected exactly {sorted(RBAC)}")
    for binding in by_kind(objects, "ClusterRoleBinding"):
        ref, subjects = binding["roleRef"], binding.get("subjects", [])
        if ref["name"] != roles[0]["metadata"]["name"] or subjects != [
            {"kind": "ServiceAccount", "name": "network-mapper", "namespace": NAMESPACE}]:
            fail(f"{src} ClusterRoleBinding", "must bind the ClusterRole to the network-mapper ServiceAccount only")


def container_port(container):
    ports = {p.get("name"): p for p in container.get("ports", [])}
    return ports.get("metrics")


def check_pod_spec(src, objects, ds):
    where = f"{src} DaemonSet/{ds['metadata']['name']}"
    spec = ds["spec"]["template"]["spec"]
    expect = {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}
    for key, value in expect.items():
        if spec.get(key) != value:
            fail(where, f"{key} is {spec.get(key)!r}, expected {value!r}")
    for key in ("hostPID", "hostIPC"):
        if spec.get(key):
            fail(where, f"{key} is not needed and must stay off")
    if {"operator": "Exists"} not in spec.get("tolerations", []):
        fail(where, "needs a toleration {operator: Exists} so every node is covered")
    classes = {o["metadata"]["name"] for o in by_kind(objects, "PriorityClass")}
    if spec.get("priorityClassName") not in classes:
        fail(where, f"priorityClassName {spec.get('priorityClassName')!r} is not a rendered PriorityClass")
    accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    if spec.get("serviceAccountName") not in accounts:
        fail(where, "serviceAccountName is not a rendered ServiceAccount")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec["containers"]:
        check_container(f"{where} container {c['name']}", c, volumes)


def check_container(where, c, volumes):
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        fail(where, "NODE_NAME must come from the downward API (spec.nodeName)")
    args = " ".join(c.get("args", []))
    if not re.search(r"--procfs-root[= ]/host/proc\b", args):
        fail(where, "needs --procfs-root /host/proc")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    proc = mounts.get("/host/proc")
    if not proc or not proc.get("readOnly"):
        fail(where, "host /proc must be mounted read-only at /host/proc")
    elif volumes.get(proc["name"], {}).get("hostPath", {}).get("path") != "/proc":
        fail(where, "/host/proc must be the hostPath /proc")
    check_ports_and_probes(where, c)
    check_listen_and_web_config(where, c, volumes)
    check_resources(where, c.get("resources", {}))
    check_security(where, c.get("securityContext", {}))
    if not c.get("image") or c["image"].endswith(":latest") or ":" not in c["image"]:
        fail(where, f"image {c.get('image')!r} needs a pinned tag")
    elif c["image"].startswith("localhost/") and c["image"] != LOCAL_IMAGE:
        fail(where, f"image {c['image']!r} is not what `make image` builds ({LOCAL_IMAGE})")


def check_ports_and_probes(where, c):
    port = container_port(c)
    if not port:
        fail(where, "no container port named metrics")
        return
    if port["containerPort"] in RESERVED_PORTS:
        fail(where, f"port {port['containerPort']} is a well-known node port")
    listen = re.search(r"--listen-address[= ]\S*:(\d+)", " ".join(c.get("args", [])))
    if port["containerPort"] != (int(listen.group(1)) if listen else 9953):
        fail(where, "metrics port does not match the exporter's listen address")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("metrics", port["containerPort"]):
            fail(where, f"{probe} must GET {path} on the metrics port")


def web_config_file(container):
    match = WEB_CONFIG_FLAG.search(" ".join(container.get("args", [])))
    return match.group(1) if match else None


def check_listen_and_web_config(where, c, volumes):
    args = " ".join(c.get("args", []))
    env = {e["name"]: e for e in c.get("env", [])}
    if "$(HOST_IP)" in args and env.get("HOST_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "status.hostIP":
        fail(where, "--listen-address uses $(HOST_IP), which must come from the downward API (status.hostIP)")
    path = web_config_file(c)
    if not path:
        return
    mounts = [m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts or "secret" not in volumes.get(mounts[0]["name"], {}):
        fail(where, f"--web-config-file {path} is not on a mounted Secret (it holds the TLS key)")
    for probe in ("livenessProbe", "readinessProbe"):
        if c.get(probe, {}).get("httpGet", {}).get("scheme") != "HTTPS":
            fail(where, f"{probe} needs scheme: HTTPS: with --web-config-file the exporter serves TLS only")


def check_release_labels(src, objects):
    """kube-prometheus-stack selects its objects by `release`; one without it is silently ignored."""
    operator = [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]
    releases = {o["metadata"].get("labels", {}).get("release") for o in operator}
    if len(releases) > 1:
        names = {f"{o['kind']}/{o['metadata']['name']}": o["metadata"].get("labels", {}).get("release") for o in operator}
        fail(src, f"Prometheus Operator objects disagree on the `release` label {names}: a Prometheus that selects "
                  "on it (kube-prometheus-stack) silently ignores the others")


def quantity(value):
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi)?", str(value))
    return float(match.group(1)) * units.get(match.group(2), 1)


def check_resources(where, resources):
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        if request is None or limit is None:
            fail(where, f"{resource} needs both a request and a limit")
        elif quantity(request) > quantity(limit):
            fail(where, f"{resource} request {request} exceeds limit {limit}")


def check_security(where, sc):
    expect = {"privileged": False, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    for key, value in expect.items():
        if sc.get(key) is not value:
            fail(where, f"securityContext.{key} must be {value}")
    caps = sc.get("capabilities", {})
    if caps.get("drop") != ["ALL"]:
        fail(where, "capabilities.drop must be [ALL]")
    if caps.get("add") != CAPABILITIES:
        fail(where, f"capabilities.add is {caps.get('add')}, expected {CAPABILITIES} (scripts/probe-capabilities.sh)")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "seccompProfile must be RuntimeDefault")
    source = (ROOT / "deploy" / "base" / "daemonset.yaml").read_text()
    for cap in caps.get("add", []):
        if not re.search(rf"#\s*{cap}:", source):
            fail(where, f"capability {cap} has no '# {cap}: why' comment in deploy/base/daemonset.yaml")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_service_and_monitors(src, objects, ds):
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    services = by_kind(objects, "Service")
    for svc in services:
        where = f"{src} Service/{svc['metadata']['name']}"
        if svc["spec"].get("clusterIP") != "None":
            fail(where, "must be headless (clusterIP: None)")
        if not labels_match(svc["spec"].get("selector", {}), pod_labels):
            fail(where, "selector does not select the DaemonSet's pods")
        if [p.get("name") for p in svc["spec"]["ports"]] != ["metrics"]:
            fail(where, "expected one port named metrics")
    web = any(web_config_file(c) for c in ds["spec"]["template"]["spec"]["containers"])
    monitors = by_kind(objects, "ServiceMonitor") + by_kind(objects, "PodMonitor")
    if len(monitors) > 1:
        fail(src, "a ServiceMonitor and a PodMonitor together scrape every pod twice")
    for mon in monitors:
        where = f"{src} {mon['kind']}/{mon['metadata']['name']}"
        spec = mon["spec"]
        targets = [s["metadata"]["labels"] for s in services] if mon["kind"] == "ServiceMonitor" else [pod_labels]
        if not any(labels_match(spec["selector"].get("matchLabels", {}), t) for t in targets):
            fail(where, "selector matches nothing rendered")
        if not all(t.get(spec.get("jobLabel")) == "network-mapper" for t in targets):
            fail(where, "jobLabel must yield job=\"network-mapper\" (the alert rules use it)")
        endpoints = spec.get("endpoints") or spec.get("podMetricsEndpoints") or []
        for ep in endpoints:
            if ep.get("honorLabels") is not True or ep.get("port") != "metrics":
                fail(where, "every endpoint needs port metrics and honorLabels: true")
            if {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} not in ep.get("relabelings", []):
                fail(where, "every endpoint needs the `node` relabelling")
            secured = ep.get("scheme") == "https" and ep.get("tlsConfig") and ep.get("basicAuth")
            if web and not secured:
                fail(where, "the exporter serves TLS and basic auth (--web-config-file): every endpoint needs "
                            "scheme: https, tlsConfig and basicAuth")
            if not web and ep.get("scheme") == "https":
                fail(where, "scheme: https, but the exporter has no --web-config-file and serves plain HTTP")


def check_rendered(path):
    objects = load(path)
    check_namespaces(path, objects)
    check_rbac(path, objects)
    check_release_labels(path, objects)
    daemonsets = by_kind(objects, "DaemonSet")
    if len(daemonsets) != 1:
        fail(path, f"expected one DaemonSet, found {len(daemonsets)}")
        return
    check_pod_spec(path, objects, daemonsets[0])
    check_service_and_monitors(path, objects, daemonsets[0])


SD_KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}


def check_scrape_config(path):
    config = load(path)[0]
    jobs = {j["job_name"]: j for j in config.get("scrape_configs", [])}
    job = jobs.get("network-mapper")
    if not job:
        fail(path, "no job_name network-mapper (the alert rules use it)")
        return
    if job.get("honor_labels") is not True:
        fail(path, "job network-mapper needs honor_labels: true")
    relabels = job.get("relabel_configs", [])
    if not any(r.get("source_labels") == ["__meta_kubernetes_pod_node_name"] and r.get("target_label") == "node" for r in relabels):
        fail(path, "job network-mapper needs the `node` relabelling")
    for sd in job.get("kubernetes_sd_configs", []):
        if set(sd) - SD_KEYS or sd.get("role") != "pod":
            fail(path, f"kubernetes_sd_configs entry {sd} has unknown keys or is not role: pod")
    wanted = {f"../../alerts/{p.name}" for p in (ROOT / "alerts").glob("*.yml")}
    if set(config.get("rule_files", [])) != wanted:
        fail(path, f"rule_files must list every alerts/*.yml: {sorted(wanted)}")


def main(argv):
    if argv[:1] == ["--scrape-config"] and len(argv) == 2:
        check_scrape_config(argv[1])
    elif argv and not argv[0].startswith("-"):
        for path in argv:
            check_rendered(path)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
