// The interactive map of netmap-reduce --format html. Reads the graph from #netmap-data, draws it with
// cytoscape, and writes what is on screen into #netmap-state (JSON, label and edge geometry included), which the
// tests read back from a headless browser. The URL fragment #search=TEXT, #focus=NAME[.NAMESPACE], #depth=N and
// #group opens the map in that state, so a link can point at one workload.
//
// Views. A small map (up to RING_FROM nodes) is a layered graph (dagre) with every edge and its count, grouped
// into namespace boxes by the switch. A large one cannot show hundreds of edges and names that way (the names
// shrink to specks), so:
//   - by default it is a ring: every workload on an ellipse, ordered and coloured by namespace, its name
//     written radially outside the ring, so no two names overlap; every call is a curve through the inside
//     of the ring, which never passes behind another workload; hovering a workload shows its calls' counts,
//     and the side panel lists the namespaces and the busiest calls with their counts;
//   - grouped, one node per namespace on the ellipse, labelled with its workloads and calls inside, the calls
//     between namespaces summed, each count written near the calling namespace; hovering or clicking a
//     namespace lists its workloads by name;
//   - focused (a click on a workload, or #focus), the workload and its neighbours as a layered graph.
(function () {
  "use strict";
  var RING_FROM = 60;          // nodes from which a map is drawn as a ring
  var FONT = "Helvetica, Arial, sans-serif";
  var LABEL_PX = 10;           // workload names on the ring, at zoom 1
  var OUTSIDE = "(outside the cluster)";
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#3b8b8b", "#8f6ad8", "#c2a000", "#d45087", "#2f4b7c", "#7a9b3a", "#a05195"];

  var data = JSON.parse(document.getElementById("netmap-data").textContent);
  var state = { ready: false, errors: [], focus: null, search: "", grouped: false, hovered: null };
  window.addEventListener("error", function (e) { state.errors.push(String(e.message)); publish(); });
  cytoscape.use(cytoscapeDagre);

  var large = data.nodes.length > RING_FROM;
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });
  function nsOf(n) { return n.namespace || OUTSIDE; }
  // Namespaces in drawing order (outside names last), each with its colour, workloads and call counts.
  var namespaces = (function () {
    var names = {};
    data.nodes.forEach(function (n) { names[nsOf(n)] = true; });
    var order = Object.keys(names).filter(function (k) { return k !== OUTSIDE; }).sort();
    if (names[OUTSIDE]) order.push(OUTSIDE);
    var info = {};
    order.forEach(function (ns, i) {
      info[ns] = { name: ns, colour: ns === OUTSIDE ? "#8a8f96" : PALETTE[i % PALETTE.length], members: [],
        inside: 0, out: 0, into: 0 };
    });
    data.nodes.forEach(function (n) { info[nsOf(n)].members.push(n); });
    data.edges.forEach(function (e) {
      var a = nsOf(byId[e.from]), b = nsOf(byId[e.to]);
      if (a === b) info[a].inside += e.count; else { info[a].out += e.count; info[b].into += e.count; }
    });
    order.forEach(function (ns) { info[ns].members.sort(function (x, y) { return x.name < y.name ? -1 : 1; }); });
    return { order: order, info: info };
  })();

  function view() {
    if (!large) return state.grouped ? "layered-grouped" : "layered";
    if (state.focus) return "focus";
    return state.grouped ? "namespaces" : "ring";
  }

  // ---- elements of each view ----
  function layeredElements(grouped) {
    var els = [];
    if (grouped) {
      namespaces.order.forEach(function (g) {
        els.push({ group: "nodes", data: { id: "group:" + g, label: g }, classes: "namespace" });
      });
    }
    data.nodes.forEach(function (n) {
      var d = { id: n.id, label: n.kind ? n.name + "\n" + n.kind : n.name, name: n.name, namespace: n.namespace,
        kind: n.kind };
      if (grouped) d.parent = "group:" + nsOf(n);
      els.push({ group: "nodes", data: d, classes: n.external ? "external" : "workload" });
    });
    data.edges.forEach(function (e, i) {
      els.push({ group: "edges", data: { id: "e" + i, source: e.from, target: e.to, label: e.label, width: e.width,
        count: e.count } });
    });
    return els;
  }

  var measure = document.createElement("canvas").getContext("2d");
  function textWidth(text, px, weight) {
    measure.font = (weight || "normal") + " " + px + "px " + FONT;
    return measure.measureText(text).width;
  }

  // Points evenly spaced by arc length on the ellipse (a, b); slot i of n.
  function ellipseSlots(a, b, n) {
    var steps = 4000, acc = [0], pts = [];
    for (var s = 0; s <= steps; s++) {
      var t = -Math.PI / 2 + 2 * Math.PI * s / steps;
      pts.push([a * Math.cos(t), b * Math.sin(t)]);
      if (s > 0) acc.push(acc[s - 1] + Math.hypot(pts[s][0] - pts[s - 1][0], pts[s][1] - pts[s - 1][1]));
    }
    var total = acc[steps], out = [], j = 0;
    for (var i = 0; i < n; i++) {
      var want = total * (i + 0.5) / n;
      while (acc[j] < want) j++;
      var p = pts[j];
      // The outward normal of the ellipse at p.
      var nx = p[0] / (a * a), ny = p[1] / (b * b), len = Math.hypot(nx, ny);
      out.push({ x: p[0], y: p[1], nx: nx / len, ny: ny / len });
    }
    return out;
  }

  // Where a label of `width` sits, rotated along the outward normal, `gap` beyond the point.
  function radialLabel(slot, width, gap) {
    var angle = Math.atan2(slot.ny, slot.nx);
    var flip = Math.cos(angle) < 0;          // the left half reads left to right too
    return { rot: flip ? angle + Math.PI : angle, mx: slot.nx * (gap + width / 2), my: slot.ny * (gap + width / 2) };
  }

  // A call on the ring: a quadratic curve bent towards the centre (the edge's control point).
  function bend(edge, pull) {
    var s = edge.source().position(), t = edge.target().position();
    var mx = (s.x + t.x) / 2, my = (s.y + t.y) / 2, dx = t.x - s.x, dy = t.y - s.y, len = Math.hypot(dx, dy) || 1;
    var towardsX = mx * pull, towardsY = my * pull;        // towards the centre (0, 0)
    var d = ((towardsX - mx) * -dy + (towardsY - my) * dx) / len;   // its distance along the chord's left normal
    edge.style({ "control-point-distances": d, "control-point-weights": 0.5 });
  }

  // Workloads on an ellipse giving each name LABEL_PX * 1.1 of arc, in namespace order with a gap between
  // namespaces; `aspect` is the ellipse's width over its height.
  function ringPlaces(aspect) {
    var slots = namespaces.order.reduce(function (sum, ns) { return sum + namespaces.info[ns].members.length + 1.5; }, 0);
    var perimeter = slots * LABEL_PX * 1.1;
    var b = perimeter / (2 * Math.PI * Math.sqrt((1 + aspect * aspect) / 2)), a = aspect * b;
    var places = ellipseSlots(a, b, Math.round(slots * 2));   // half-slot resolution for the gaps
    var out = [], k = 0, box = [Infinity, Infinity, -Infinity, -Infinity];
    namespaces.order.forEach(function (ns) {
      namespaces.info[ns].members.forEach(function (n) {
        var slot = places[k], width = textWidth(n.name, LABEL_PX), label = radialLabel(slot, width, 7);
        k += 2;
        out.push({ node: n, slot: slot, label: label });
        [[slot.x, slot.y], [slot.x + 2 * label.mx, slot.y + 2 * label.my]].forEach(function (e) {
          box = [Math.min(box[0], e[0]), Math.min(box[1], e[1]), Math.max(box[2], e[0]), Math.max(box[3], e[1])];
        });
      });
      k += 3;
    });
    return { places: out, width: box[2] - box[0] + 2 * LABEL_PX, height: box[3] - box[1] + 2 * LABEL_PX };
  }

  function ringElements() {
    // The ellipse whose drawing, names included, has the canvas' shape (a few corrections converge).
    var canvas = document.getElementById("cy").getBoundingClientRect(), want = canvas.width / canvas.height;
    var aspect = want, ring = ringPlaces(aspect);
    for (var i = 0; i < 4; i++) {
      aspect = Math.max(0.5, Math.min(2.5, aspect * want / (ring.width / ring.height)));
      ring = ringPlaces(aspect);
    }
    var els = [];
    ring.places.forEach(function (p) {
      var n = p.node, colour = namespaces.info[nsOf(n)].colour;
      els.push({ group: "nodes", position: { x: p.slot.x, y: p.slot.y }, classes: (n.external ? "external" : "workload") + " ring",
        data: { id: n.id, label: n.name, name: n.name, namespace: n.namespace, kind: n.kind, colour: colour,
          rot: p.label.rot, mx: p.label.mx, my: p.label.my } });
    });
    data.edges.forEach(function (e, i) {
      els.push({ group: "edges", classes: "ring", data: { id: "e" + i, source: e.from, target: e.to, label: e.label,
        width: 0.5 + e.width / 3, count: e.count, colour: namespaces.info[nsOf(byId[e.from])].colour } });
    });
    return els;
  }

  function namespaceElements() {
    var canvas = document.getElementById("cy").getBoundingClientRect();
    var order = namespaces.order, places = ellipseSlots(canvas.width * 0.36, canvas.height * 0.36, order.length), els = [];
    order.forEach(function (ns, i) {
      var info = namespaces.info[ns], slot = places[i];
      var size = 14 + 3 * Math.sqrt(info.members.length);
      var text = ns + "\n" + info.members.length + (info.members.length === 1 ? " workload" : " workloads") +
        (info.inside ? "\n" + fmt(info.inside) + " calls inside" : "");
      // The label sits outside the ellipse, on the side the node faces.
      var h = slot.nx > 0.35 ? "right" : slot.nx < -0.35 ? "left" : "center";
      var v = slot.ny > 0.35 ? "bottom" : slot.ny < -0.35 ? "top" : "center";
      els.push({ group: "nodes", position: { x: slot.x, y: slot.y }, classes: "nsnode",
        data: { id: "ns:" + ns, label: text, namespace: ns, size: size, colour: info.colour, halign: h, valign: v } });
    });
    var sums = {};
    data.edges.forEach(function (e) {
      var a = nsOf(byId[e.from]), b = nsOf(byId[e.to]);
      if (a !== b) sums[a + "\u0000" + b] = (sums[a + "\u0000" + b] || 0) + e.count;
    });
    var keys = Object.keys(sums), max = Math.max.apply(null, keys.map(function (k) { return sums[k]; }).concat([1]));
    // A namespace's outgoing counts, in the order of their directions, stand at staggered distances.
    var fan = {};
    keys.forEach(function (key) {
      var parts = key.split("\u0000"), from = order.indexOf(parts[0]), to = order.indexOf(parts[1]);
      var angle = Math.atan2(places[to].y - places[from].y, places[to].x - places[from].x);
      (fan[parts[0]] = fan[parts[0]] || []).push({ key: key, angle: angle });
    });
    var offsets = {};
    Object.keys(fan).forEach(function (ns) {
      fan[ns].sort(function (x, y) { return x.angle - y.angle; }).forEach(function (f, i) {
        offsets[f.key] = 40 + 36 * (i % 3);
      });
    });
    keys.forEach(function (key, i) {
      var parts = key.split("\u0000");
      els.push({ group: "edges", classes: "nsedge", data: { id: "n" + i, source: "ns:" + parts[0],
        target: "ns:" + parts[1], label: fmt(sums[key]), count: sums[key], offset: offsets[key],
        width: 0.6 + 5 * Math.sqrt(sums[key] / max), colour: namespaces.info[parts[0]].colour } });
    });
    return els;
  }

  function fmt(count) { return count >= 1e6 ? (count / 1e6).toFixed(1) + "M" : count >= 1e4 ? Math.round(count / 1e3) + "k" : String(Math.round(count)); }

  var style = [
    { selector: "node", style: { "label": "data(label)", "text-wrap": "wrap", "font-size": 10, "text-valign": "center",
      "font-family": FONT, "shape": "round-rectangle", "width": "label", "height": "label", "padding": 6,
      "background-color": "#eef3fb", "border-width": 1, "border-color": "#5b7bb5", "color": "#1d2733" } },
    { selector: "node.external", style: { "border-style": "dashed", "border-color": "#888", "background-color": "#fff" } },
    { selector: "node.namespace", style: { "label": "data(label)", "text-valign": "top", "text-halign": "center",
      "font-size": 12, "font-weight": "bold", "background-color": "#f7f8fa", "border-color": "#9aa5b1", "padding": 12 } },
    { selector: "node.ring", style: { "shape": "ellipse", "width": 7, "height": 7, "padding": 0, "border-width": 0,
      "background-color": "data(colour)", "font-size": LABEL_PX, "text-rotation": "data(rot)",
      "text-margin-x": "data(mx)", "text-margin-y": "data(my)", "text-halign": "center", "text-valign": "center",
      "min-zoomed-font-size": 0 } },
    { selector: "node.ring.external", style: { "shape": "diamond", "border-width": 0 } },
    { selector: "node.nsnode", style: { "shape": "ellipse", "width": "data(size)", "height": "data(size)", "padding": 0,
      "background-color": "data(colour)", "border-width": 0, "font-size": 12, "text-halign": "data(halign)",
      "text-valign": "data(valign)", "text-margin-x": 0, "text-margin-y": 0, "text-wrap": "wrap",
      "text-background-color": "#fff", "text-background-opacity": 0.85, "text-background-padding": 2 } },
    { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.7,
      "width": "data(width)", "line-color": "#8a96a3", "target-arrow-color": "#8a96a3", "label": "data(label)",
      "font-size": 9, "color": "#2d3843", "text-background-color": "#fff", "text-background-opacity": 0.85,
      "text-background-padding": 1, "min-zoomed-font-size": 0 } },
    { selector: "edge.ring", style: { "curve-style": "unbundled-bezier", "line-color": "data(colour)",
      "target-arrow-color": "data(colour)", "arrow-scale": 0.45, "opacity": 0.28, "label": "" } },
    { selector: "edge.ring.lit", style: { "opacity": 1, "label": "data(label)", "z-index": 10 } },
    { selector: "edge.ring.dim", style: { "opacity": 0.05 } },
    { selector: "node.ring.dim", style: { "opacity": 0.3 } },
    { selector: "edge.nsedge", style: { "curve-style": "straight", "line-color": "data(colour)",
      "target-arrow-color": "data(colour)", "opacity": 0.75, "label": "", "source-label": "data(label)",
      "source-text-offset": "data(offset)" } },
    { selector: ".match", style: { "background-color": "#ffe08a", "border-color": "#c48a00", "border-width": 2 } },
    { selector: ".focused", style: { "border-width": 3, "border-color": "#d0412f" } },
    { selector: ".faded", style: { "opacity": 0.15 } },
    { selector: ".hidden", style: { "display": "none" } }
  ];

  var cy;
  var shownView = null;
  function draw() {
    var v = view(), els;
    if (v === "ring") els = ringElements();
    else if (v === "namespaces") els = namespaceElements();
    else els = layeredElements(v === "layered-grouped");
    if (cy) cy.destroy();
    shownView = v;
    cy = cytoscape({ container: document.getElementById("cy"), elements: els, style: style,
      layout: { name: v === "ring" || v === "namespaces" ? "preset" : "null" }, wheelSensitivity: 0.3, minZoom: 0.05,
      maxZoom: 4 });
    if (v === "ring") cy.edges().forEach(function (e) { bend(e, 0.12); });
    cy.on("tap", "node.workload, node.external", function (evt) { focus(evt.target.id()); });
    cy.on("tap", "node.nsnode", function (evt) { showNamespace(evt.target.data("namespace")); });
    cy.on("mouseover", "node.ring", function (evt) { light(evt.target); });
    cy.on("mouseout", "node.ring", function () { light(null); });
    cy.on("mouseover", "node.nsnode", function (evt) { showNamespace(evt.target.data("namespace")); });
    cy.on("tap", function (evt) { if (evt.target === cy) showAll(); });
  }

  // Hovering a workload on the ring: its calls lit with their counts, the rest dimmed.
  function light(node) {
    cy.elements().removeClass("lit dim");
    state.hovered = node ? nodeName(node) : null;
    if (node) {
      var mine = node.connectedEdges();
      cy.edges().not(mine).addClass("dim");
      cy.nodes().not(mine.connectedNodes()).addClass("dim");
      mine.addClass("lit");
    }
    publish();
  }

  // Fits the ring and its radial names (cytoscape's own bounds of rotated labels are those of unrotated ones).
  function fitRing() {
    var x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    cy.nodes().forEach(function (n) {
      var p = n.position(), half = LABEL_PX * 0.7;
      var ends = [[p.x, p.y], [p.x + 2 * n.data("mx"), p.y + 2 * n.data("my")]];
      ends.forEach(function (e) {
        x1 = Math.min(x1, e[0] - half); x2 = Math.max(x2, e[0] + half);
        y1 = Math.min(y1, e[1] - half); y2 = Math.max(y2, e[1] + half);
      });
    });
    var box = document.getElementById("cy").getBoundingClientRect(), margin = 8;
    var zoom = Math.min((box.width - 2 * margin) / (x2 - x1), (box.height - 2 * margin) / (y2 - y1));
    cy.zoom(zoom);
    cy.pan({ x: box.width / 2 - zoom * (x1 + x2) / 2, y: box.height / 2 - zoom * (y1 + y2) / 2 });
  }

  function layout(eles) {
    if (shownView === "ring") return fitRing();
    if (shownView === "namespaces") return cy.fit(cy.elements(), 12);
    eles.layout({ name: "dagre", rankDir: "LR", nodeSep: 12, rankSep: 60, edgeSep: 6, fit: true, padding: 20,
      animate: false }).run();
    // A few nodes would be blown up to fill the screen: no more than 1.5 times their size.
    if (cy.zoom() > 1.5) {
      cy.zoom(1.5);
      cy.center(eles);
    }
  }

  function depth() { return parseInt(document.getElementById("depth").value, 10) || 1; }

  // Re-applies focus and search to the current drawing.
  function apply() {
    if (view() !== shownView) draw();
    cy.elements().removeClass("hidden faded match focused");
    var visible = cy.elements();
    if (state.focus && cy.getElementById(state.focus).nonempty()) {
      // The workloads up to `depth` calls away, and the calls that lead outwards from the focus (not those
      // between two neighbours, which would run behind the others).
      var distance = {}, ring = cy.getElementById(state.focus), hood = ring;
      distance[state.focus] = 0;
      for (var i = 1; i <= depth(); i++) {
        ring = ring.neighborhood("node.workload, node.external").filter(function (n) { return !(n.id() in distance); });
        ring.forEach(function (n) { distance[n.id()] = i; });
        hood = hood.union(ring);
      }
      hood = hood.union(hood.edgesWith(hood).filter(function (e) {
        return Math.abs(distance[e.source().id()] - distance[e.target().id()]) === 1;
      })).union(hood.parents());
      cy.elements().not(hood).addClass("hidden");
      cy.getElementById(state.focus).addClass("focused");
      visible = hood;
      showDetails(state.focus);
    } else {
      showOverview();
    }
    if (state.search) {
      var q = state.search.toLowerCase();
      var hits = cy.nodes("node.workload, node.external").filter(function (n) {
        return (n.data("name") + "." + (n.data("namespace") || "")).toLowerCase().indexOf(q) >= 0;
      });
      hits.addClass("match");
      visible.nodes("node.workload, node.external").not(hits).addClass("faded");
      // Grouped, a namespace is a match when one of its workloads is.
      var holding = cy.nodes("node.nsnode").filter(function (n) {
        return namespaces.info[n.data("namespace")].members.some(function (m) {
          return (m.name + "." + (m.namespace || "")).toLowerCase().indexOf(q) >= 0;
        });
      });
      holding.addClass("match");
      cy.nodes("node.nsnode").not(holding).addClass("faded");
    }
    layout(visible.filter(function (e) { return !e.hasClass("hidden"); }));
    publish();
  }

  function focus(id) { state.focus = id; apply(); }

  function showAll() { state.focus = null; apply(); }

  function text(s) { var d = document.createElement("div"); d.textContent = s; return d.innerHTML; }
  function side(html) { document.getElementById("side").innerHTML = html; }

  // The side panel of an unfocused map: the namespaces (with their colours) and the busiest calls.
  function showOverview() {
    var hint = large ? (state.grouped ? "Hover or click a namespace for its workloads; untick \"group by namespace\" for every workload." :
      "Hover a workload for its calls and their counts; click it to focus on it and its neighbours.") :
      "Click a workload to focus on it and its neighbours; click the background or \"show all\" to go back. Edge labels are observation counts.";
    var html = "<p class=\"muted\">" + text(hint) + "</p>";
    if (large) {
      html += "<b>namespaces</b> <span class=\"muted\">(workloads; calls inside, out, in)</span><ul class=\"ns\">" +
        namespaces.order.map(function (ns) {
          var i = namespaces.info[ns];
          return "<li><span class=\"swatch\" style=\"background:" + i.colour + "\"></span>" + text(ns) + " <span class=\"muted\">" +
            i.members.length + "; " + fmt(i.inside) + ", " + fmt(i.out) + ", " + fmt(i.into) + "</span></li>";
        }).join("") + "</ul>";
      var busiest = data.edges.slice().sort(function (x, y) { return y.count - x.count; }).slice(0, 12);
      html += "<b>busiest calls</b><ul>" + busiest.map(function (e) {
        return "<li>" + text(byId[e.from].name) + " → " + text(byId[e.to].name) + " (" + text(e.label) + ")</li>";
      }).join("") + "</ul>";
    }
    side(html);
  }

  function showNamespace(ns) {
    var info = namespaces.info[ns];
    side("<h2><span class=\"swatch\" style=\"background:" + info.colour + "\"></span>" + text(ns) + "</h2><p class=\"muted\">" +
      info.members.length + " workloads; calls " + fmt(info.inside) + " inside, " + fmt(info.out) + " out, " +
      fmt(info.into) + " in. Click a name to focus on it.</p><ul>" + info.members.map(function (n) {
        return "<li><a href=\"#\" data-node=\"" + text(n.id) + "\">" + text(n.name) + "</a></li>";
      }).join("") + "</ul>");
  }
  document.getElementById("side").addEventListener("click", function (e) {
    var id = e.target.getAttribute && e.target.getAttribute("data-node");
    if (id) { e.preventDefault(); focus(id); }
  });

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
    side("<h2>" + text(n.name) + "</h2><p class=\"muted\">" + text(n.namespace ? "namespace " + n.namespace : "outside the cluster") +
      (n.kind ? ", " + text(n.kind) : "") + "</p>" +
      "<b>calls</b><ul>" + calls.map(function (e) { return item(e, e.to); }).join("") + "</ul>" +
      "<b>called by</b><ul>" + callers.map(function (e) { return item(e, e.from); }).join("") + "</ul>");
  }

  function nodeName(n) { return n.data("namespace") ? n.data("name") + "." + n.data("namespace") : n.data("name"); }

  // On-screen geometry, in CSS pixels of the page: what the tests check legibility and overlaps on.
  function geometry() {
    var box = document.getElementById("cy").getBoundingClientRect(), zoom = cy.zoom(), pan = cy.pan();
    function screen(p) { return [p.x * zoom + pan.x + box.left, p.y * zoom + pan.y + box.top]; }
    var labels = [], dots = [], curves = [];
    cy.nodes().filter(function (n) { return n.visible() && n.style("label"); }).forEach(function (n) {
      var px = parseFloat(n.style("font-size")) * zoom, lines = String(n.style("label")).split("\n");
      var bb = n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true });
      var rot = n.hasClass("ring") ? n.data("rot") : 0;
      var w = Math.max.apply(null, lines.map(function (l) {
        return textWidth(l, parseFloat(n.style("font-size")), n.style("font-weight"));
      })) * zoom;
      var centre = n.hasClass("ring") ? screen({ x: n.position("x") + n.data("mx"), y: n.position("y") + n.data("my") })
        : screen({ x: (bb.x1 + bb.x2) / 2, y: (bb.y1 + bb.y2) / 2 });
      labels.push({ node: n.hasClass("nsnode") ? "ns:" + n.data("namespace") : n.isParent() ? "group:" + n.data("label") : nodeName(n),
        text: String(n.style("label")), px: px, x: centre[0], y: centre[1], w: w, h: px * 1.2 * lines.length, rot: rot });
      var p = screen(n.position());
      dots.push({ node: n.hasClass("nsnode") ? "ns:" + n.data("namespace") : nodeName(n), x: p[0], y: p[1],
        w: n.renderedWidth(), h: n.renderedHeight() });
    });
    cy.edges().filter(function (e) { return e.visible(); }).forEach(function (e) {
      var pts = [screen(e.sourceEndpoint())].concat((e.controlPoints() || []).map(screen)).concat([screen(e.targetEndpoint())]);
      curves.push({ from: e.source().hasClass("nsnode") ? "ns:" + e.source().data("namespace") : nodeName(e.source()),
        to: e.target().hasClass("nsnode") ? "ns:" + e.target().data("namespace") : nodeName(e.target()),
        points: pts, label: e.style("label") || e.style("source-label") || "",
        px: parseFloat(e.style("font-size")) * zoom });
    });
    return { viewport: [box.left, box.top, box.right, box.bottom], labels: labels, dots: dots, curves: curves };
  }

  // What the page shows, for tests and for anyone scripting the page.
  function publish() {
    var shown = cy ? cy.nodes("node.workload, node.external").filter(function (n) { return !n.hasClass("hidden"); }) : [];
    var out = {
      ready: state.ready,
      errors: state.errors,
      view: shownView,
      nodes: data.nodes.length,
      edges: data.edges.length,
      graphNodes: cy ? cy.nodes("node.workload, node.external").map(nodeName).sort() : [],
      graphEdges: cy ? cy.edges().filter(function (e) { return !e.hasClass("nsedge"); }).map(function (e) {
        return nodeName(e.source()) + " -> " + nodeName(e.target()) + " " + e.data("label"); }).sort() : [],
      namespaceGroups: cy ? cy.nodes("node.namespace, node.nsnode").length : 0,
      namespaceMembers: namespaces.order.map(function (ns) {
        return { namespace: ns, workloads: namespaces.info[ns].members.map(function (n) { return n.namespace ? n.name + "." + n.namespace : n.name; }) };
      }),
      focus: state.focus ? nodeName(cy.getElementById(state.focus)) : null,
      hovered: state.hovered || null,
      visibleNodes: cy ? shown.map(nodeName).sort() : [],
      visibleEdges: cy ? cy.edges().filter(function (e) { return !e.hasClass("hidden"); }).length : 0,
      matches: state.search ? data.nodes.filter(function (n) {
        return (n.name + "." + (n.namespace || "")).toLowerCase().indexOf(state.search.toLowerCase()) >= 0;
      }).map(function (n) { return n.namespace ? n.name + "." + n.namespace : n.name; }).sort() : [],
      geometry: cy && state.ready ? geometry() : null,
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
  document.getElementById("group").addEventListener("change", function (e) { state.grouped = e.target.checked; apply(); });
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
  apply();
  if (wanted.search) { search.value = wanted.search; search.dispatchEvent(new Event("input")); }
  var start = wanted.focus ? findNode(wanted.focus) : null;
  if (start) cy.getElementById(start).emit("tap");
  state.ready = true;
  publish();
})();
