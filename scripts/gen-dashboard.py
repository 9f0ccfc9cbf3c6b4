#!/usr/bin/env python3
"""Generates grafana/network-mapper.json with Grafana's Foundation SDK (PyPI grafana-foundation-sdk).

The dashboard is written through the SDK's typed builders, so panel plugin ids (`nodeGraph`, not
`nodegraph`), option names and enum values come from Grafana's own schema instead of being typed
by hand. Edit this file, then run it; `--check` compares instead of writing and exits 1 when the
committed JSON is not what this script generates (scripts/check-grafana.py runs it).

Every query reads the exporter's raw metrics, summed across nodes: a fresh `kubectl apply -k
deploy/` installs no recording rules, and the dashboard must show the map there too.

usage: gen-dashboard.py [--check]
"""

import json
import pathlib
import sys

try:
    from grafana_foundation_sdk.builders import common as c
    from grafana_foundation_sdk.builders import dashboard as d
    from grafana_foundation_sdk.builders import nodegraph, prometheus, stat, statetimeline, table, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm
    from grafana_foundation_sdk.models import prometheus as pm
except ImportError:
    sys.exit("gen-dashboard: needs the PyPI package grafana-foundation-sdk (pip install -r scripts/requirements.txt)")

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "grafana" / "network-mapper.json"

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
EDGE = "client, namespace, server, server_namespace"
SEL = '{namespace=~"$namespace", client=~"$client", server=~"$server"}'
EDGES = f"network_mapper_edge_total{SEL}"
# Edges seen in the range that no exporter exposed in the 7 days before it. A counter series lives as long as
# its exporter pod, so an hourly subquery step finds every older edge while touching 168 samples per series
# (a plain [7d] range would read every scraped sample).
NEW_EDGES = (
    f"group by ({EDGE}) (max_over_time({EDGES}[$__range]))\n"
    f"  unless on ({EDGE})\n"
    f"    max_over_time(group by ({EDGE}) (network_mapper_edge_total)[7d:1h] offset $__range)"
)
NODE_GRAPH = f"""label_join(
  label_replace(
    label_join(
      label_join(
        sum by ({EDGE}) (rate({EDGES}[$__range])),
        "source", "/", "namespace", "client"),
      "target", "/", "server_namespace", "server"),
    "target", "$1", "target", "/(.*)"),
  "id", " -> ", "source", "target")"""


def query(expr, ref="A", instant=False, table_format=False, legend=None):
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    q = q.instant() if instant else q.range()
    if table_format:
        q = q.format(pm.PromQueryFormat.TABLE)
    if legend:
        q = q.legend_format(legend)
    return q


def organize(exclude=(), rename=None, order=None):
    options = {"excludeByName": {name: True for name in exclude}, "renameByName": rename or {}}
    if order:
        options["indexByName"] = {name: i for i, name in enumerate(order)}
    return dm.DataTransformerConfig(id_val="organize", options=options)


def thresholds(color_from_one):
    steps = [dm.Threshold(value=None, color="green"), dm.Threshold(value=1, color=color_from_one)]
    return d.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


_ids = iter(range(1, 1000))  # panel and row ids, in layout order: unique and stable


def place(panel, x, y, w, h, title, description):
    return panel.id(next(_ids)).title(title).description(description).datasource(DS).grid_pos(dm.GridPos(x=x, y=y, w=w, h=h))


def stat_panel(x, title, description, expr, **extra):
    panel = place(stat.Panel(), x, 1, 4, 4, title, description).with_target(query(expr, instant=True))
    if "no_value" in extra:
        panel = panel.no_value(extra["no_value"])
    if "unit" in extra:
        panel = panel.unit(extra["unit"])
    if "decimals" in extra:
        panel = panel.decimals(extra["decimals"])
    if "alert_color" in extra:
        panel = panel.thresholds(thresholds(extra["alert_color"]))
    return panel


def series_panel(x, y, title, description, expr, legend, unit):
    panel = place(timeseries.Panel(), x, y, 8, 8, title, description)
    panel = panel.with_target(query(expr, legend=legend)).unit(unit).fill_opacity(10)
    legend_options = c.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
    legend_options = legend_options.placement(cm.LegendPlacement.RIGHT).calcs(["lastNotNull", "max"]).show_legend(True)
    tooltip = c.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
    return panel.legend(legend_options).tooltip(tooltip)


def variable(name, label, expr):
    return (
        d.QueryVariable(name).label(label).datasource(DS)
        .query({"query": expr, "refId": f"{name}-var"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True).include_all(True).all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def service_map_row(board):
    board = board.with_row(d.Row("Service map").id(next(_ids)))
    stats = [
        stat_panel(0, "Edges", "Distinct client -> server edges exposed now, across all nodes.",
                   f"count(group by ({EDGE}) ({EDGES}))"),
        stat_panel(4, "Workloads", "Workloads that appear in an edge (network_mapper_workload_info), "
                   "de-duplicated across nodes.",
                   'count(group by (workload, namespace, kind) (network_mapper_workload_info{namespace=~"$namespace"}))'),
        stat_panel(8, "Nodes reporting", "Exporters scraped now (one per node).",
                   "count(group by (node) (network_mapper_build_info))"),
        stat_panel(12, "New edges in range", "Edges seen in the selected time range that were absent from the "
                   "7 days before it.", f"count({NEW_EDGES})", no_value="0", alert_color="orange"),
        stat_panel(16, "Observations / s", "DNS answers and new TCP connections counted per second, all edges, "
                   "all nodes.", f"sum(rate({EDGES}[5m]))", unit="ops", decimals=2),
        stat_panel(20, "Edges refused (range)", "Edges refused by the --max-edges and per-client external-name "
                   "caps in the selected range.", "sum(increase(network_mapper_edges_refused_total[$__range]))",
                   no_value="0", decimals=0, alert_color="red"),
    ]
    for panel in stats:
        board = board.with_panel(panel)
    graph = place(nodegraph.Panel(), 0, 5, 24, 16, "Service map",
                  "Who calls whom in the selected range. Nodes are namespace/workload, or the DNS name for calls "
                  "outside the cluster; an arrow's number is observations per second (DNS answers and new "
                  "connections, not requests).")
    graph = graph.with_target(query(NODE_GRAPH, ref="edges", instant=True, table_format=True))
    graph = graph.with_transformation(organize(exclude=["Time"], rename={"Value": "mainstat"}))
    board = board.with_panel(graph.edges(nodegraph.EdgeOptions().main_stat_unit("ops")))
    edges = place(table.Panel(), 0, 21, 14, 12, "Edges",
                  "Every edge with its current rate and its observations in the selected range, summed across "
                  "nodes. `namespace` is the client's namespace; an empty server namespace means a name outside "
                  "the cluster.")
    edges = edges.with_target(query(f"sum by ({EDGE}) (rate({EDGES}[5m]))", instant=True, table_format=True))
    edges = edges.with_target(query(f"sum by ({EDGE}) (increase({EDGES}[$__range]))", ref="B", instant=True,
                                    table_format=True))
    edges = edges.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    edges = edges.with_transformation(organize(
        exclude=["Time"],
        order=["client", "namespace", "server", "server_namespace", "Value #A", "Value #B"],
        rename={"namespace": "client namespace", "server_namespace": "server namespace",
                "Value #A": "observations/s (5m)", "Value #B": "observations (range)"}))
    edges = edges.decimals(2).sort_by([c.TableSortByFieldState().display_name("observations (range)").desc(True)])
    board = board.with_panel(edges)
    new = place(table.Panel(), 14, 21, 10, 12, "New edges",
                "Edges seen in the selected range that were absent from the 7 days before it: the test of the "
                "NetworkMapperNewEdge alert, over the dashboard's range.")
    new = new.with_target(query(NEW_EDGES, instant=True, table_format=True))
    new = new.with_transformation(organize(exclude=["Time", "Value"], rename={
        "namespace": "client namespace", "server_namespace": "server namespace"}))
    board = board.with_panel(new)
    by_ns = series_panel(0, 33, "Edge observations by client namespace", "Observations per second, summed across "
                         "nodes.", f"sum by (namespace) (rate({EDGES}[$__rate_interval]))", "{{namespace}}", "ops")
    return board.with_panel(by_ns.span(24))


HEALTH = [
    # (title, description, expr, legend, unit)
    ("Packets captured / s", "DNS packets read by libpcap (port 53 answers only).",
     'sum by (node) (rate(network_mapper_capture_packets_total{node=~"$node"}[$__rate_interval]))', "{{node}}", "pps"),
    ("Kernel drops / s", "Packets the kernel dropped before libpcap read them (NetworkMapperCaptureDrops).",
     'sum by (node) (rate(network_mapper_capture_kernel_drops_total{node=~"$node"}[$__rate_interval]))', "{{node}}",
     "pps"),
    ("Capture errors / s", "Capture errors by kind.",
     'sum by (node, error) (rate(network_mapper_capture_errors_total{node=~"$node"}[$__rate_interval]))',
     "{{node}} {{error}}", "ops"),
    ("DNS responses by outcome", "counted: became an edge observation; duplicate: another copy of an answer this "
     "node parses (another interface, NAT); other_node: the client is on another node (counted there); forwarded: "
     "a DNS server's upstream lookup; unresolved / malformed / not_answer: not counted. Every copy of an other_node, "
     "forwarded or not_answer response counts under it.",
     'sum by (outcome) (rate(network_mapper_dns_responses_total{node=~"$node"}[$__rate_interval]))', "{{outcome}}",
     "ops"),
    ("Unresolved observations", "Observations whose client or server could not be mapped to a workload, by reason.",
     'sum by (source, side, reason) (rate(network_mapper_unresolved_total{node=~"$node"}[$__rate_interval]))',
     "{{source}} {{side}} {{reason}}", "ops"),
    ("New TCP connections by outcome", "Client-side connections found by the /proc socket scan.",
     'sum by (outcome) (rate(network_mapper_socket_connections_total{node=~"$node"}[$__rate_interval]))',
     "{{outcome}}", "ops"),
    ("Socket scan time (p95)", "95th percentile of one /proc socket scan (every --scan-interval).",
     'histogram_quantile(0.95, sum by (node, le) (rate(network_mapper_socket_scan_duration_seconds_bucket'
     '{node=~"$node"}[$__rate_interval])))', "{{node}}", "s"),
    ("Network namespaces scanned", "Network namespaces read in the last socket scan.",
     'max by (node) (network_mapper_socket_namespaces{node=~"$node"})', "{{node}}", "short"),
    ("Failed socket scans / s", "Scans that failed (NetworkMapperSocketScansFailing).",
     'sum by (node) (rate(network_mapper_socket_scans_total{outcome="error", node=~"$node"}[$__rate_interval]))',
     "{{node}}", "ops"),
    ("Inventory objects", "Kubernetes objects in each exporter's inventory, by kind.",
     'max by (node, kind) (network_mapper_inventory_objects{node=~"$node"})', "{{node}} {{kind}}", "short"),
    None,  # Inventory synced: a state timeline, below
    ("Inventory watch errors / s", "Errors of the Kubernetes watches; they retry on their own.",
     'sum by (node, kind) (rate(network_mapper_inventory_watch_errors_total{node=~"$node"}[$__rate_interval]))',
     "{{node}} {{kind}}", "ops"),
    None,  # Edges vs. cap: two queries, below
    ("Edges refused / s", "Edges refused by a cap, by reason (NetworkMapperEdgeCapReached for max_edges).",
     'sum by (node, reason) (rate(network_mapper_edges_refused_total{node=~"$node"}[$__rate_interval]))',
     "{{node}} {{reason}}", "ops"),
    ("Memory (RSS)", "Resident memory of each exporter; compare with the DaemonSet's memory limit.",
     'max by (node) (process_resident_memory_bytes{job="network-mapper", node=~"$node"})', "{{node}}", "bytes"),
    ("CPU", "CPU used by each exporter, in cores.",
     'sum by (node) (rate(process_cpu_seconds_total{job="network-mapper", node=~"$node"}[$__rate_interval]))',
     "{{node}}", "percentunit"),
    ("Uptime", "Time since each exporter started: restarts show as drops.",
     'time() - max by (node) (process_start_time_seconds{job="network-mapper", node=~"$node"})', "{{node}}", "s"),
    None,  # Versions: a table, below
]


def special_health_panel(title, x, y):
    if title == "Inventory synced":
        panel = place(statetimeline.Panel(), x, y, 8, 8, title,
                      "1 = the kind's watch has synced (NetworkMapperInventoryNotSynced).")
        panel = panel.with_target(query('min by (node, kind) (network_mapper_inventory_synced{node=~"$node"})',
                                        legend="{{node}} {{kind}}"))
        return panel.mappings([dm.ValueMap(options={
            "0": dm.ValueMappingResult(text="not synced", color="red"),
            "1": dm.ValueMappingResult(text="synced", color="green")})])
    if title == "Edges vs. cap":
        panel = series_panel(x, y, title, "Distinct edges each exporter exposes, and its --max-edges cap.",
                             'max by (node) (network_mapper_edges{node=~"$node"})', "{{node}}", "short")
        return panel.with_target(query('max(network_mapper_edges_max{node=~"$node"})', ref="B",
                                       legend="--max-edges"))
    panel = place(table.Panel(), x, y, 8, 8, "Versions", "Exporters per version.")
    panel = panel.with_target(query("count by (version) (network_mapper_build_info)", instant=True,
                                    table_format=True))
    return panel.with_transformation(organize(exclude=["Time"], rename={"Value": "exporters"}))


def health_row(board):
    board = board.with_row(d.Row("Exporter health (per node)").id(next(_ids)))
    specials = iter(["Inventory synced", "Edges vs. cap", "Versions"])
    for i, spec in enumerate(HEALTH):
        x, y = (i % 3) * 8, 42 + (i // 3) * 8
        board = board.with_panel(special_health_panel(next(specials), x, y) if spec is None
                                 else series_panel(x, y, *spec))
    return board


def build():
    board = (
        d.Dashboard("network-mapper").uid("network-mapper")
        .description("Service map from network_mapper_edge_total (who calls whom), new edges, and exporter "
                     "health per node.")
        .tags(["network-mapper", "kubernetes", "service-map"])
        .editable().time("now-24h", "now").refresh("1m").tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(d.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(variable("namespace", "Client namespace", "label_values(network_mapper_edge_total, namespace)"))
        .with_variable(variable("client", "Client",
                                'label_values(network_mapper_edge_total{namespace=~"$namespace"}, client)'))
        .with_variable(variable("server", "Server", 'label_values(network_mapper_edge_total'
                                '{namespace=~"$namespace", client=~"$client"}, server)'))
        .with_variable(variable("node", "Node", "label_values(network_mapper_build_info, node)"))
    )
    return health_row(service_map_row(board)).build()


def render():
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv):
    text = render()
    if argv == ["--check"]:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"FAIL {OUTPUT.relative_to(ROOT)} is not what scripts/gen-dashboard.py generates; run it",
                  file=sys.stderr)
            return 1
        print(f"ok   {OUTPUT.relative_to(ROOT)} is what scripts/gen-dashboard.py generates")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
