#!/usr/bin/env bash
# Validates alerts/:
#   - promtool check rules on every rule file (syntax, PromQL, templates);
#   - promtool test rules on every unit test in alerts/tests/;
#   - every alert has a severity, a summary, a description, at least one unit test in which it
#     fires, and a runbook section (a `### <AlertName>` heading) in docs/runbooks.md whose first line
#     (the first step) ends the alert's description, so an alert without a link still says what to do;
#   - runbook links: with a base URL set (the runbook-url-example overlay, the chart's
#     prometheusRule.runbookBaseURL) every alert's runbook_url is <base>#<its heading's anchor>; without
#     one (alerts/, the other overlays, the chart's defaults) no alert has a runbook_url;
#   - the PrometheusRule in deploy/ is exactly what scripts/gen-prometheusrule.py makes of alerts/,
#     and its groups pass promtool too.
# Needs: promtool (Debian package prometheus), python3 with PyYAML, kubectl, helm (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
source scripts/tools.sh

source scripts/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v promtool >/dev/null || { echo "check-alerts: promtool is not installed (apt-get install prometheus)" >&2; exit 2; }

for file in alerts/*.yml; do
    if promtool check rules "$file" >"$tmp/out" 2>&1; then
        echo "ok   promtool check rules $file"
    else
        fail "promtool check rules $file: $(cat "$tmp/out")"
    fi
done

for file in alerts/tests/*.test.yml; do
    if promtool test rules "$file" >"$tmp/out" 2>&1; then
        echo "ok   promtool test rules $file"
    else
        fail "promtool test rules $file:"; cat "$tmp/out" >&2
    fi
done

# Every alert needs a runbook section (`### <Alert>`) in docs/runbooks.md, whose first line ends its
# description; runbook_url exactly where a base URL is set. Renderings: FILE=BASE ("" for none).
runbooks=${RUNBOOKS:-docs/runbooks.md}
grep -q '^# Alert runbooks' "$runbooks" 2>/dev/null || fail "$runbooks has no '# Alert runbooks' heading"
base=https://git.example.com/platform/network-mapper/-/blob/main/docs/runbooks.md
kubectl kustomize deploy/overlays/runbook-url-example >"$tmp/kustomize-linked.yaml" 2>&1 || fail "kubectl kustomize runbook-url-example: $(cat "$tmp/kustomize-linked.yaml")"
kubectl kustomize deploy/overlays/prometheus-operator >"$tmp/kustomize-unlinked.yaml" 2>&1 || fail "kubectl kustomize prometheus-operator: $(cat "$tmp/kustomize-unlinked.yaml")"
chart=deploy/helm/network-mapper
helm template network-mapper $chart -f $chart/ci/runbook-url-example-values.yaml >"$tmp/helm-linked.yaml" 2>&1 || fail "helm template (runbook URL): $(cat "$tmp/helm-linked.yaml")"
helm template network-mapper $chart --set prometheusRule.enabled=true >"$tmp/helm-unlinked.yaml" 2>&1 || fail "helm template (no runbook URL): $(cat "$tmp/helm-unlinked.yaml")"
python3 - "$runbooks" "$tmp/kustomize-linked.yaml=$base" "$tmp/helm-linked.yaml=$base" \
    "$tmp/kustomize-unlinked.yaml=" "$tmp/helm-unlinked.yaml=" <<'PY' || failed=1
import pathlib, re, sys, yaml
runbooks = pathlib.Path(sys.argv[1]).read_text() if pathlib.Path(sys.argv[1]).exists() else ""
# heading -> the section's first line, whitespace folded as YAML folds a description
first_lines = {m[1]: " ".join(m[2].split()) for m in re.finditer(r"^### (\w+)\n+(.*)$", runbooks, re.M)}
fired = set()
for test_file in pathlib.Path("alerts/tests").glob("*.test.yml"):
    for test in yaml.safe_load(test_file.read_text())["tests"]:
        fired |= {t["alertname"] for t in test.get("alert_rule_test", []) if t.get("exp_alerts")}
bad = False


def alerts(groups):
    return [rule for group in groups for rule in group["rules"] if rule.get("alert")]


for rule_file in sorted(pathlib.Path("alerts").glob("*.yml")):
    for rule in alerts(yaml.safe_load(rule_file.read_text())["groups"]):
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        problems = []
        if rule.get("labels", {}).get("severity") not in {"info", "warning", "critical"}:
            problems.append("no severity label (info|warning|critical)")
        for key in ("summary", "description"):
            if not annotations.get(key):
                problems.append(f"no {key} annotation")
        if name not in fired:
            problems.append("no unit test in alerts/tests/ in which it fires")
        if name not in first_lines:
            problems.append(f"no '### {name}' runbook section in {sys.argv[1]}")
        elif not " ".join(annotations.get("description", "").split()).endswith(first_lines[name]):
            problems.append(f"its description does not end with the runbook's first line: {first_lines[name]!r}")
        if "runbook_url" in annotations:
            problems.append("runbook_url in alerts/: the base URL is the operator's (runbook-url component, Helm value)")
        for p in problems:
            print(f"FAIL {rule_file} {name}: {p}", file=sys.stderr)
            bad = True
        if not problems:
            print(f"ok   {name}: severity, summary, description, fires in a test, runbook and its first step")

for argument in sys.argv[2:]:
    path, base = argument.split("=", 1)
    rules = [d for d in yaml.safe_load_all(open(path)) if d and d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        print(f"FAIL {path}: expected one PrometheusRule, found {len(rules)}", file=sys.stderr)
        bad = True
        continue
    wrong = []
    for rule in alerts(rules[0]["spec"]["groups"]):
        url = rule.get("annotations", {}).get("runbook_url")
        want = f"{base}#{rule['alert'].lower()}" if base else None
        if url != want:
            wrong.append(f"{rule['alert']}: runbook_url {url!r}, expected {want!r}")
    for w in wrong:
        print(f"FAIL runbook links ({'base ' + base if base else 'no base URL'}): {w}", file=sys.stderr)
    bad |= bool(wrong)
    if not wrong:
        print(f"ok   runbook links {'to ' + base + '#<alert>' if base else 'absent'} in every alert of a rendering")
sys.exit(1 if bad else 0)
PY

if python3 scripts/gen-prometheusrule.py --check; then
    echo "ok   deploy/components/prometheusrule/prometheusrule.yaml matches alerts/"
    python3 -c '
import sys, yaml
rule = yaml.safe_load(open("deploy/components/prometheusrule/prometheusrule.yaml"))
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(sys.argv[1], "w"))' "$tmp/prometheusrule-groups.yml"
    if promtool check rules "$tmp/prometheusrule-groups.yml" >"$tmp/out" 2>&1; then
        echo "ok   promtool check rules on the PrometheusRule's groups"
    else
        fail "promtool check rules on the PrometheusRule's groups: $(cat "$tmp/out")"
    fi
else
    fail "deploy/components/prometheusrule/prometheusrule.yaml is not what alerts/ generates"
fi

verdict check-alerts
