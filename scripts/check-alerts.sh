#!/usr/bin/env bash
# Validates alerts/:
#   - promtool check rules on every rule file (syntax, PromQL, templates);
#   - promtool test rules on every unit test in alerts/tests/;
#   - every alert has a severity, a summary, a description, at least one unit test in which it
#     fires, and a runbook section (a `### <AlertName>` heading) in docs/runbooks.md;
#   - the PrometheusRule in deploy/ is exactly what scripts/gen-prometheusrule.py makes of alerts/,
#     and its groups pass promtool too.
# Needs: promtool (Debian package prometheus), python3 with PyYAML.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

failed=0
fail() { echo "FAIL $*" >&2; failed=1; }
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

# Every alert needs a runbook section (`### <Alert>`) in docs/runbooks.md.
runbooks=${RUNBOOKS:-docs/runbooks.md}
grep -q '^# Alert runbooks' "$runbooks" 2>/dev/null || fail "$runbooks has no '# Alert runbooks' heading"
python3 - "$runbooks" <<'PY' || failed=1
import pathlib, re, sys, yaml
runbooks = pathlib.Path(sys.argv[1]).read_text() if pathlib.Path(sys.argv[1]).exists() else ""
headings = set(re.findall(r"^### (\w+)", runbooks, re.M))
fired = set()
for test_file in pathlib.Path("alerts/tests").glob("*.test.yml"):
    for test in yaml.safe_load(test_file.read_text())["tests"]:
        fired |= {t["alertname"] for t in test.get("alert_rule_test", []) if t.get("exp_alerts")}
bad = False
for rule_file in sorted(pathlib.Path("alerts").glob("*.yml")):
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if not name:
                continue
            problems = []
            if rule.get("labels", {}).get("severity") not in {"info", "warning", "critical"}:
                problems.append("no severity label (info|warning|critical)")
            for key in ("summary", "description"):
                if not rule.get("annotations", {}).get(key):
                    problems.append(f"no {key} annotation")
            if name not in fired:
                problems.append("no unit test in alerts/tests/ in which it fires")
            if name not in headings:
                problems.append(f"no '### {name}' runbook section in {sys.argv[1]}")
            for p in problems:
                print(f"FAIL {rule_file} {name}: {p}", file=sys.stderr)
                bad = True
            if not problems:
                print(f"ok   {name}: severity, summary, description, fires in a test, runbook")
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

if [[ $failed -ne 0 ]]; then
    echo "check-alerts: FAILED" >&2
    exit 1
fi
echo "check-alerts: all checks passed"
