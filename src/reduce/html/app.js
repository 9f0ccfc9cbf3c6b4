// The interactive map of netmap-reduce --format html. Reads the graph from #netmap-data, draws it with
// cytoscape and the dagre layered layout, and writes what is on screen into #netmap-state (JSON), which the
// tests read back from a headless browser. The URL fragment #search=TEXT, #focus=NAME[.NAMESPACE] and #group
// opens the map in that state, so a link can point at one workload.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("netmap-data").textContent);
  var state = { ready: false, errors: [], focus: null, search: "", grouped: false };
  window.addEventListener("error", function (e) { state.errors.push(String(e.message)); publish(); });
  cytoscape.use(cytoscapeDagre);

  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });

  function elements(grouped) {
    var els = [];
    if (grouped) {
      var groups = {};
      data.nodes.forEach(function (n) { groups[n.namespace || "(outside the cluster)"] = true; });
      Object.keys(groups).sort().forEach(function (g) {
        els.push({ group: "nodes", data: { id: "group:" + g, label: g }, classes: "namespace" });
      });
    }
    data.nodes.forEach(function (n) {
      var label = n.kind ? n.name + "\n" + n.kind : n.name;
      var d = { id: n.id, label: label, name: n.name, namespace: n.namespace, kind: n.kind };
      if (grouped) d.parent = "group:" + (n.namespace || "(outside the cluster)");
      els.push({ group: "nodes", data: d, classes: n.external ? "external" : "workload" });
    });
    data.edges.forEach(function (e, i) {
      els.push({ group: "edges", data: { id: "e" + i, source: e.from, target: e.to, label: e.label, width: e.width, count: e.count } });
    });
    return els;
  }

  var style = [
    { selector: "node", style: { "label": "data(label)", "text-wrap": "wrap", "font-size": 10, "text-valign": "center",
      "shape": "round-rectangle", "width": "label", "height": "label", "padding": 6, "background-color": "#eef3fb",
      "border-width": 1, "border-color": "#5b7bb5", "color": "#1d2733" } },
    { selector: "node.external", style: { "border-style": "dashed", "border-color": "#888", "background-color": "#fff" } },
    { selector: "node.namespace", style: { "label": "data(label)", "text-valign": "top", "text-halign": "center",
      "font-size": 12, "font-weight": "bold", "background-color": "#f7f8fa", "border-color": "#9aa5b1", "padding": 12 } },
    { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.7,
      "width": "data(width)", "line-color": "#8a96a3", "target-arrow-color": "#8a96a3", "label": "data(label)",
      "font-size": 8, "color": "#44505c", "text-background-color": "#fff", "text-background-opacity": 0.8,
      "min-zoomed-font-size": 7 } },
    { selector: ".match", style: { "background-color": "#ffe08a", "border-color": "#c48a00", "border-width": 2 } },
    { selector: ".focused", style: { "border-width": 3, "border-color": "#d0412f" } },
    { selector: ".faded", style: { "opacity": 0.15 } },
    { selector: ".hidden", style: { "display": "none" } }
  ];

  var cy;
  function draw() {
    if (cy) cy.destroy();
    cy = cytoscape({ container: document.getElementById("cy"), elements: elements(state.grouped), style: style,
      wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 3 });
    cy.on("tap", "node.workload, node.external", function (evt) { focus(evt.target.id()); });
    cy.on("tap", function (evt) { if (evt.target === cy) showAll(); });
    apply();
  }

  function layout(eles) {
    eles.layout({ name: "dagre", rankDir: "LR", nodeSep: 12, rankSep: 60, edgeSep: 6, fit: true, padding: 20,
      animate: false }).run();
  }

  function depth() { return parseInt(document.getElementById("depth").value, 10) || 1; }

  // Re-applies focus and search to the current drawing.
  function apply() {
    cy.elements().removeClass("hidden faded match focused");
    var visible = cy.elements();
    if (state.focus && cy.getElementById(state.focus).nonempty()) {
      var hood = cy.getElementById(state.focus);
      for (var i = 0; i < depth(); i++) hood = hood.closedNeighborhood("node.workload, node.external").union(hood);
      hood = hood.union(hood.edgesWith(hood)).union(hood.parents());
      cy.elements().not(hood).addClass("hidden");
      cy.getElementById(state.focus).addClass("focused");
      visible = hood;
      showDetails(state.focus);
    }
    if (state.search) {
      var q = state.search.toLowerCase();
      var hits = cy.nodes("node.workload, node.external").filter(function (n) {
        return (n.data("name") + "." + (n.data("namespace") || "")).toLowerCase().indexOf(q) >= 0;
      });
      hits.addClass("match");
      visible.nodes("node.workload, node.external").not(hits).addClass("faded");
    }
    layout(visible.filter(function (e) { return !e.hasClass("hidden"); }));
    publish();
  }

  function focus(id) { state.focus = id; apply(); }

  function showAll() {
    state.focus = null;
    document.getElementById("side").innerHTML = "<p class=\"muted\">Click a workload to focus on it and its neighbours.</p>";
    apply();
  }

  function text(s) { var d = document.createElement("div"); d.textContent = s; return d.innerHTML; }

  function showDetails(id) {
    var n = byId[id];
    var calls = data.edges.filter(function (e) { return e.from === id; });
    var callers = data.edges.filter(function (e) { return e.to === id; });
    var item = function (e, other) {
      var o = byId[other];
      var seen = e.last_seen ? " <span class=\"muted\">last seen " + text(e.last_seen) + "</span>" : "";
      return "<li>" + text(o.name) + (o.namespace ? " <span class=\"muted\">" + text(o.namespace) + "</span>" : "") +
        " (" + text(e.label) + ")" + seen + "</li>";
    };
    document.getElementById("side").innerHTML =
      "<h2>" + text(n.name) + "</h2><p class=\"muted\">" + text(n.namespace ? "namespace " + n.namespace : "outside the cluster") +
      (n.kind ? ", " + text(n.kind) : "") + "</p>" +
      "<b>calls</b><ul>" + calls.map(function (e) { return item(e, e.to); }).join("") + "</ul>" +
      "<b>called by</b><ul>" + callers.map(function (e) { return item(e, e.from); }).join("") + "</ul>";
  }

  function nodeName(n) { return n.data("namespace") ? n.data("name") + "." + n.data("namespace") : n.data("name"); }

  // What the page shows, for tests and for anyone scripting the page.
  function publish() {
    var shown = cy ? cy.nodes("node.workload, node.external").filter(function (n) { return !n.hasClass("hidden"); }) : [];
    var out = {
      ready: state.ready,
      errors: state.errors,
      nodes: data.nodes.length,
      edges: data.edges.length,
      graphNodes: cy ? cy.nodes("node.workload, node.external").map(nodeName).sort() : [],
      graphEdges: cy ? cy.edges().map(function (e) { return nodeName(e.source()) + " -> " + nodeName(e.target()) + " " + e.data("label"); }).sort() : [],
      namespaceGroups: cy ? cy.nodes("node.namespace").length : 0,
      focus: state.focus ? nodeName(cy.getElementById(state.focus)) : null,
      visibleNodes: cy ? shown.map(nodeName).sort() : [],
      visibleEdges: cy ? cy.edges().filter(function (e) { return !e.hasClass("hidden"); }).length : 0,
      matches: cy ? cy.nodes(".match").map(nodeName).sort() : [],
      resources: performance.getEntriesByType("resource").map(function (r) { return r.name; })
    };
    document.getElementById("netmap-state").textContent = JSON.stringify(out);
    document.getElementById("status").textContent = data.nodes.length + " workloads and names, " + data.edges.length +
      " edges" + (state.focus ? "; focused on " + out.focus + ": " + out.visibleNodes.length + " shown" : "") +
      (state.search ? "; " + out.matches.length + " match" : "");
  }

  function findNode(spec) {
    var hit = data.nodes.filter(function (n) { return n.name === spec || (n.namespace && n.name + "." + n.namespace === spec); });
    return hit.length ? hit[0].id : null;
  }

  var search = document.getElementById("search");
  search.addEventListener("input", function () { state.search = search.value.trim(); apply(); });
  search.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    var first = cy.nodes(".match")[0];
    if (first) focus(first.id());
  });
  document.getElementById("group").addEventListener("change", function (e) { state.grouped = e.target.checked; draw(); });
  document.getElementById("depth").addEventListener("change", apply);
  document.getElementById("reset").addEventListener("click", function () {
    search.value = ""; state.search = ""; showAll();
  });

  // Initial state: the page's own default, then the URL fragment, applied through the same events as typing
  // into the search box and clicking a node.
  state.grouped = data.grouped;
  var wanted = {};
  decodeURIComponent(location.hash.replace(/^#/, "")).split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv[0]) wanted[kv[0]] = kv.length > 1 ? kv[1] : "";
  });
  if ("group" in wanted) state.grouped = true;
  if (wanted.depth) document.getElementById("depth").value = wanted.depth;
  document.getElementById("group").checked = state.grouped;
  draw();
  if (wanted.search) { search.value = wanted.search; search.dispatchEvent(new Event("input")); }
  var start = wanted.focus ? findNode(wanted.focus) : null;
  if (start) cy.getElementById(start).emit("tap");
  state.ready = true;
  publish();
})();
