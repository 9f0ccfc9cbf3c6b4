#!/usr/bin/env python3
"""Validates the dashboards in grafana/.

grafana/network-mapper.json must be exactly what scripts/gen-dashboard.py writes with Grafana's
Foundation SDK, and every panel's type must be a panel plugin id that the SDK knows (Grafana's own
vocabulary: `nodeGraph`, not `nodegraph`, which Grafana shows as "panel plugin not found").

For every query of every dashboard (panel targets, also inside rows, and template variables):
  - it is valid PromQL: the queries, with Grafana's macros and variables substituted, become
    recording rules in a generated rule file that `promtool check rules` must accept;
  - it names only metrics the exporter exposes (its own table of families, printed by
    `network-mapper --print-metric-families`; $NETMAP_EXPORTER names the binary, else `cargo run`), never a
    recording rule of alerts/: `kubectl apply -k deploy/` installs no rules, and the dashboard
    must show the map on that fresh install (names read with the `promql-parser` AST);
  - every exporter metric sits under an aggregation (sum/max/count/histogram_quantile of a
    sum ...) so that no panel shows per-pod series that split on every rollout. Template
    variables (label_values) are metadata look-ups and exempt.
The Node Graph panel must have an instant table query shaping `id`, `source` and `target`, and
that query, run by `promtool test rules` on two nodes' worth of sample edges (one in-cluster, one
to an outside name), must yield exactly the ids Grafana's Node Graph needs.

Provisioning: the kube-prometheus-stack overlay and the Helm chart (dashboard.enabled) each render one
ConfigMap for Grafana's dashboard sidecar, labelled grafana_dashboard: "1" (the chart: the label name, value
and namespace its values say), holding exactly grafana/network-mapper.json; the chart's defaults render none.

usage: check-grafana.py [DASHBOARD.json ...]   (default: grafana/*.json, and the provisioning checks)
Exit 0 when all pass, 1 on a failed check, 2 on unreadable input or a missing tool.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

try:
    import promql_parser
except ImportError:
    sys.exit("check-grafana: needs the PyPI package promql-parser (pip install promql-parser==0.11.0)")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NODE_GRAPH_TYPE = "nodeGraph"

# Grafana macros, replaced by a representative value so promtool sees plain PromQL.
MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1d", "${__range}": "1d"}
# A dashboard variable; `$1` in label_replace is a regex group, not a variable.
VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)(?::\w+)?\}?")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)

failures = []


def exported_names():
    """Every sample name network-mapper serves, from the exporter's own table of families."""
    binary = os.environ.get("NETMAP_EXPORTER")
    command = [binary] if binary else ["cargo", "run", "--quiet", "--locked", "--bin", "network-mapper", "--"]
    command.append("--print-metric-families")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"check-grafana: cannot run {command[0]} (set NETMAP_EXPORTER to a built network-mapper)")
    if done.returncode != 0:
        sys.exit(f"check-grafana: {' '.join(command)} failed:\n{done.stderr.strip()}")
    names = set()
    for family in json.loads(done.stdout):
        name = family["exposed_name"]
        if family["type"] == "histogram":
            names |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(name)
    return names


def recording_rules():
    names = set()
    for path in ROOT.glob("alerts/*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def substitute(expr):
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    return VARIABLE.sub("x", expr)


def children(node):
    """The sub-expressions of a promql-parser AST node."""
    for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if isinstance(child, promql_parser.Expr) or type(child).__module__ == "promql_parser":
            if not isinstance(child, (str, int, float)) and child is not None:
                yield child
    for arg in getattr(node, "args", None) or []:
        yield arg


def selectors(node, aggregated=False):
    """Yields (metric name, aggregated?) for every vector selector under node."""
    if isinstance(node, promql_parser.VectorSelector):
        name = node.name
        if name is None:
            name = next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
        yield name, aggregated
        return
    inside = aggregated or isinstance(node, promql_parser.AggregateExpr)
    for child in children(node):
        yield from selectors(child, inside)


def queries(dashboard):
    """(where, expr, is_variable) for every query in a dashboard."""
    def walk(panels):
        for panel in panels:
            yield from walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield f"panel {panel.get('title')!r} ref {target.get('refId')}", target["expr"], False
    yield from walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = LABEL_VALUES.match(query)
        if not match:
            failures.append(f"FAIL variable {var['name']}: only label_values(<selector>, <label>) queries are supported, got {query!r}")
            continue
        yield f"variable {var['name']}", match.group(1), True


def check_names(source, where, expr, is_variable, records, exported):
    try:
        ast = promql_parser.parse(expr)
    except Exception as err:  # the parser raises plain exceptions with its message
        failures.append(f"FAIL {source} {where}: not PromQL: {err}")
        return
    for name, aggregated in selectors(ast):
        if name in records:
            failures.append(f"FAIL {source} {where}: {name!r} is a recording rule that `kubectl apply -k deploy/` "
                            "does not install, so a fresh install shows no data; query the exporter's metrics")
        elif name not in exported:
            failures.append(f"FAIL {source} {where}: metric {name!r} is not exported by network-mapper")
        elif not is_variable and not aggregated:
            failures.append(f"FAIL {source} {where}: raw metric {name!r} is not aggregated across nodes/pods")


def sdk_panel_types():
    """The panel plugin ids of Grafana's Foundation SDK: every builders.<plugin>.Panel sets its type."""
    import importlib
    import pkgutil
    try:
        import grafana_foundation_sdk.builders as builders
    except ImportError:
        sys.exit("check-grafana: needs the PyPI package grafana-foundation-sdk (pip install -r scripts/requirements.txt)")
    types = {"row"}
    for module in pkgutil.iter_modules(builders.__path__):
        panel = getattr(importlib.import_module(f"{builders.__name__}.{module.name}"), "Panel", None)
        if panel is not None and panel().build().type_val:
            types.add(panel().build().type_val)
    return types


def check_panel_types(source, dashboard, known):
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))
    for panel in walk(dashboard.get("panels", [])):
        if panel.get("type") not in known:
            failures.append(f"FAIL {source} panel {panel.get('title')!r}: type {panel.get('type')!r} is not a Grafana "
                            f"panel plugin id (Grafana shows \"panel plugin not found\"); known: {sorted(known)}")


def check_generated():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-dashboard.py"), "--check"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        failures.append(done.stderr.strip() or done.stdout.strip())


def check_node_graph(source, dashboard):
    graphs = [p for p in dashboard.get("panels", []) if p.get("type") == NODE_GRAPH_TYPE]
    if not graphs:
        failures.append(f"FAIL {source}: no Node Graph panel")
    for panel in graphs:
        for target in panel["targets"]:
            fields = ('"id"', '"source"', '"target"')
            if not (target.get("instant") and target.get("format") == "table" and all(f in target["expr"] for f in fields)):
                failures.append(f"FAIL {source} panel {panel['title']!r}: Node Graph queries must be instant tables with id/source/target")


NODE_GRAPH_INPUT = [
    ('network_mapper_edge_total{node="n1",pod="a",client="frontend",namespace="shop",server="cart",server_namespace="shop"}', "0+6x200"),
    ('network_mapper_edge_total{node="n2",pod="b",client="frontend",namespace="shop",server="cart",server_namespace="shop"}', "0+6x200"),
    ('network_mapper_edge_total{node="n1",pod="a",client="checkout",namespace="pay",server="api.stripe.com"}', "0+3x200"),
]
# Observations per second: two nodes at 6/min, one at 3/min.
NODE_GRAPH_OUTPUT = [
    ('{client="frontend",namespace="shop",server="cart",server_namespace="shop",'
     'source="shop/frontend",target="shop/cart",id="shop/frontend -> shop/cart"}', 0.2),
    ('{client="checkout",namespace="pay",server="api.stripe.com",'
     'source="pay/checkout",target="api.stripe.com",id="pay/checkout -> api.stripe.com"}', 0.05),
]


def node_graph_test(source, dashboard):
    """Runs the Node Graph query on sample edges with promtool and checks the shaped labels."""
    graphs = [p for p in dashboard.get("panels", []) if p.get("type") == NODE_GRAPH_TYPE]
    for panel in graphs:
        expr = panel["targets"][0]["expr"].replace("$__range", "1h")
        expr = VARIABLE.sub(".*", expr)  # "All" selected in every variable
        test = {
            "rule_files": [],
            "evaluation_interval": "1m",
            "tests": [{
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in NODE_GRAPH_INPUT],
                "promql_expr_test": [{
                    "expr": expr, "eval_time": "3h",
                    "exp_samples": [{"labels": labels, "value": value} for labels, value in NODE_GRAPH_OUTPUT],
                }],
            }],
        }
        with tempfile.NamedTemporaryFile("w", suffix=".test.yml") as test_file:
            yaml.safe_dump(test, test_file)
            test_file.flush()
            done = subprocess.run(["promtool", "test", "rules", test_file.name], capture_output=True, text=True)
        if done.returncode != 0:
            failures.append(f"FAIL {source} panel {panel['title']!r}: the Node Graph query does not shape "
                            f"id/source/target as expected:\n{done.stdout}{done.stderr}")


def promtool_check(exprs):
    rules = [{"record": f"grafana:query_{i}:check", "expr": e} for i, (_, e) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as rule_file:
        yaml.safe_dump({"groups": [{"name": "grafana-queries", "rules": rules}]}, rule_file)
        rule_file.flush()
        try:
            done = subprocess.run(["promtool", "check", "rules", rule_file.name], capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit("check-grafana: promtool is not installed (apt-get install prometheus)")
    if done.returncode != 0:
        # promtool names the failing rule by its position: map it back to the panel.
        for index in sorted({int(i) for i in re.findall(r"query_(\d+)", done.stdout + done.stderr)}):
            failures.append(f"FAIL {exprs[index][0]}: promtool rejects the query")
        failures.append(f"FAIL promtool check rules:\n{done.stdout}{done.stderr}")
    return len(rules)


def rendered_configmaps(command):
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        failures.append(f"FAIL {command[0]} is not installed: scripts/setup.sh puts it in .tools/bin (`make` and "
                        "`source scripts/tools.sh` put that on PATH)")
        return None
    if done.returncode != 0:
        failures.append(f"FAIL {' '.join(command)}: {done.stderr.strip()}")
        return None
    return [d for d in yaml.safe_load_all(done.stdout) if d and d.get("kind") == "ConfigMap"]


def check_provisioned():
    """The dashboard ConfigMap of the kube-prometheus-stack overlay and of the chart."""
    dashboard = json.loads((ROOT / "grafana" / "network-mapper.json").read_text())
    chart = ["helm", "template", "network-mapper", "deploy/helm/network-mapper", "--namespace", "network-mapper"]
    cases = [
        (["kubectl", "kustomize", "deploy/overlays/kube-prometheus-stack"], ("grafana_dashboard", "1"), "network-mapper"),
        (chart + ["--set", "dashboard.enabled=true"], ("grafana_dashboard", "1"), "network-mapper"),
        (chart + ["--set", "dashboard.enabled=true,dashboard.labelName=team_dashboards,dashboard.labelValue=net",
                  "--set", "dashboard.namespace=monitoring"], ("team_dashboards", "net"), "monitoring"),
        (chart, None, None),
    ]
    for command, label, namespace in cases:
        where = " ".join(command)
        maps = rendered_configmaps(command)
        if maps is None:
            continue
        if label is None:
            if maps:
                failures.append(f"FAIL {where}: renders a ConfigMap although dashboard.enabled is false")
            continue
        if len(maps) != 1:
            failures.append(f"FAIL {where}: expected one dashboard ConfigMap, found {len(maps)}")
            continue
        meta, data = maps[0]["metadata"], maps[0].get("data", {})
        if meta.get("labels", {}).get(label[0]) != label[1]:
            failures.append(f"FAIL {where}: the ConfigMap is not labelled {label[0]}: \"{label[1]}\" (Grafana's sidecar "
                            f"would not load it): {meta.get('labels')}")
        if meta.get("namespace") != namespace:
            failures.append(f"FAIL {where}: the ConfigMap is in namespace {meta.get('namespace')!r}, expected {namespace!r}")
        if list(data) != ["network-mapper.json"] or json.loads(data["network-mapper.json"]) != dashboard:
            failures.append(f"FAIL {where}: the ConfigMap does not hold exactly grafana/network-mapper.json")
        else:
            print(f"ok   {where}: the dashboard ConfigMap, {label[0]}: \"{label[1]}\" in {namespace}")


def main(argv):
    paths = [pathlib.Path(p) for p in argv] or sorted(ROOT.glob("grafana/*.json"))
    records = recording_rules()
    exported = exported_names()
    known_types = sdk_panel_types()
    if not argv:
        check_generated()
        check_provisioned()
    exprs = []
    for path in paths:
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"{path}: not a readable dashboard JSON: {err}", file=sys.stderr)
            return 2
        check_panel_types(path.name, dashboard, known_types)
        check_node_graph(path.name, dashboard)
        node_graph_test(path.name, dashboard)
        for where, expr, is_variable in queries(dashboard):
            plain = substitute(expr)
            check_names(path.name, where, plain, is_variable, records, exported)
            exprs.append((f"{path.name} {where}", plain))
    count = promtool_check(exprs)
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        return 1
    print(f"ok   {count} queries in {len(paths)} dashboard(s): generated by the Foundation SDK, panel types known to "
          "it, valid PromQL (promtool), exported metrics only, aggregated; Node Graph shape tested")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
