#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/network-mapper (scripts/check-deploy.sh validates its renderings' objects):
#   - `helm lint --strict` with the default values and with each values file of its ci/ folder;
#   - the chart and kustomize cannot drift: the default rendering equals `kubectl kustomize deploy/`, and
#     ci/<overlay>-values.yaml renders what deploy/overlays/<overlay> renders (scripts/compare_renderings.py);
#     every overlay has such a values file;
#   - values.schema.json rejects wrong types and unknown keys, and two scrape objects at once fail;
#   - the chart's version and appVersion are the exporter's (Cargo.toml).
# Needs: helm and kubectl (.tools/bin, from scripts/setup.sh), python3 with PyYAML (.tools/venv).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
source scripts/tools.sh

chart=deploy/helm/network-mapper
failed=0
fail() { echo "FAIL $*" >&2; failed=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for tool in helm kubectl python3; do
    command -v "$tool" >/dev/null || { echo "check-helm: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
done
render() { helm template network-mapper "$chart" --namespace network-mapper "$@"; }

if helm lint --strict "$chart" >"$tmp/lint" 2>&1; then echo "ok   helm lint --strict $chart"; else fail "helm lint --strict $chart: $(cat "$tmp/lint")"; fi
for values in "$chart"/ci/*-values.yaml; do
    if helm lint --strict "$chart" -f "$values" >"$tmp/lint" 2>&1; then
        echo "ok   helm lint --strict -f $values"
    else
        fail "helm lint --strict -f $values: $(cat "$tmp/lint")"
    fi
done

# compare NAME KUSTOMIZATION [helm arguments]
compare() {
    local name=$1 kustomization=$2
    shift 2
    if ! kubectl kustomize "$kustomization" >"$tmp/kustomize.yaml" 2>"$tmp/err"; then
        fail "kubectl kustomize $kustomization: $(cat "$tmp/err")"; return
    fi
    if ! render "$@" >"$tmp/helm.yaml" 2>"$tmp/err"; then
        fail "helm template ($name): $(cat "$tmp/err")"; return
    fi
    if python3 scripts/compare_renderings.py "$tmp/kustomize.yaml" "$tmp/helm.yaml"; then
        echo "ok   the chart ($name) renders what kubectl kustomize $kustomization renders"
    else
        fail "the chart ($name) differs from kubectl kustomize $kustomization (above)"
    fi
}
compare "default values" deploy
for overlay in deploy/overlays/*/; do
    overlay=$(basename "$overlay")
    values=$chart/ci/$overlay-values.yaml
    if [[ -f $values ]]; then
        compare "$values" "deploy/overlays/$overlay" -f "$values"
    else
        fail "deploy/overlays/$overlay has no values file $values that renders the same with the chart"
    fi
done
for values in "$chart"/ci/*-values.yaml; do
    overlay=$(basename "$values" -values.yaml)
    [[ -d deploy/overlays/$overlay ]] || fail "$values: no overlay deploy/overlays/$overlay to compare it with"
done

# rejects EXPECTED-MESSAGE HELM-ARGUMENTS...: the chart must refuse these values with that message.
rejects() {
    local expected=$1
    shift
    if render "$@" >/dev/null 2>"$tmp/err"; then
        fail "helm template $* was accepted"
    elif grep -qF -- "$expected" "$tmp/err"; then
        echo "ok   helm template $* is refused: $expected"
    else
        fail "helm template $* failed without '$expected': $(cat "$tmp/err")"
    fi
}
rejects "at '/serviceMonitor/enabled': got string, want boolean" --set-string serviceMonitor.enabled=yes
rejects "at '/priorityClass/value': got string, want integer" --set-string priorityClass.value=high
rejects "at '/extraArgs': got string, want array" --set-string extraArgs=--max-edges=5
rejects "additional properties 'enable' not allowed" --set serviceMonitor.enable=true
rejects "at '/image/pullPolicy'" --set image.pullPolicy=Sometimes
rejects "at '/prometheusRule/runbookBaseURL'" --set prometheusRule.runbookBaseURL=docs/runbooks.md
rejects "choose one" --set serviceMonitor.enabled=true --set podMonitor.enabled=true

crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
for field in version appVersion; do
    value=$(sed -n "s/^$field: \"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$chart/Chart.yaml")
    [[ $value == "$crate" ]] && echo "ok   Chart.yaml $field $value is the crate's" ||
        fail "$chart/Chart.yaml $field is '$value', the crate (Cargo.toml) is $crate"
done

if [[ $failed -ne 0 ]]; then
    echo "check-helm: FAILED" >&2
    exit 1
fi
echo "check-helm: all checks passed"
