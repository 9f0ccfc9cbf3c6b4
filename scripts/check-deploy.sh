#!/usr/bin/env bash
# Validates deploy/: every kustomization and the Helm chart render, every object passes schema validation,
# and the manifests keep their promises (scripts/check_deploy_policy.py).
#   - `kubectl kustomize` (kustomize v5 built into kubectl) renders deploy/ and each overlay; `helm template`
#     renders the chart with its default values and with every feature on (scripts/check-helm.sh compares
#     the chart with kustomize).
#   - kubernetes-validate --strict (rejects unknown fields) for built-in kinds, against the
#     Kubernetes version the binary is built for (k8s-openapi feature v1_33) and the newest
#     schema the validator ships.
#   - Prometheus Operator kinds against the operator's CRD schemas (scripts/crd-validate).
#   - deploy/prometheus/prometheus.yml with promtool check config.
# Needs: kubectl, helm, python3 with PyYAML and kubernetes-validate, node, promtool (scripts/setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
source scripts/tools.sh

K8S_VERSIONS=${K8S_VERSIONS:-"1.33.0 1.37.0"}
source scripts/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for tool in kubectl helm kubernetes-validate node promtool python3; do
    command -v "$tool" >/dev/null || { echo "check-deploy: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
done
[[ -d scripts/crd-validate/node_modules ]] ||
    { echo "check-deploy: scripts/crd-validate/node_modules is missing (scripts/setup.sh installs it)" >&2; exit 2; }

rendered=()
for dir in deploy deploy/overlays/*/; do
    dir=${dir%/}
    out="$tmp/$(echo "$dir" | tr / _).yaml"
    if kubectl kustomize "$dir" >"$out" 2>"$tmp/err"; then
        echo "ok   kubectl kustomize $dir ($(grep -c '^kind:' "$out") objects)"
        rendered+=("$out")
    else
        fail "kubectl kustomize $dir: $(cat "$tmp/err")"
    fi
done
# The chart with its defaults, and with every feature on at once (scripts/check-helm.sh proves each ci/ values
# file renders what its overlay renders, so those objects are validated above already).
chart=deploy/helm/network-mapper
everything=(-f "$chart/ci/kube-prometheus-stack-values.yaml" -f "$chart/ci/prometheus-operator-tls-values.yaml"
    -f "$chart/ci/runbook-url-example-values.yaml")
for variant in defaults everything; do
    out="$tmp/helm-$variant.yaml"
    args=()
    [[ $variant == everything ]] && args=("${everything[@]}")
    if helm template network-mapper "$chart" --namespace network-mapper "${args[@]}" >"$out" 2>"$tmp/err"; then
        echo "ok   helm template $chart, $variant ($(grep -c '^kind:' "$out") objects)"
        rendered+=("$out")
    else
        fail "helm template $chart, $variant: $(cat "$tmp/err")"
    fi
done

# Built-in kinds only; the validator warns (and does not fail) on CRD kinds, which are checked
# below against their own schemas. One run per version for all renderings (each line names its file).
for version in $K8S_VERSIONS; do
    kubernetes-validate --strict --quiet -k "$version" "${rendered[@]}" >"$tmp/kv.raw" 2>&1
    rc=$?
    grep -v "Couldn't find schema for kind" "$tmp/kv.raw" >"$tmp/kv"
    if [[ $rc -ne 0 || -s $tmp/kv ]]; then
        fail "kubernetes-validate --strict -k $version: $(cat "$tmp/kv")"
    else
        echo "ok   kubernetes-validate --strict -k $version, ${#rendered[@]} renderings"
    fi
done
for out in "${rendered[@]}"; do
    python3 -c '
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["apiVersion"].startswith("monitoring.coreos.com/")]
print(json.dumps(docs))' "$out" >"$tmp/crd.json"
    if [[ $(cat "$tmp/crd.json") != "[]" ]]; then
        node scripts/crd-validate/validate.mjs <"$tmp/crd.json" || fail "CRD schema validation of $(basename "$out")"
    fi
done

if python3 scripts/check_deploy_policy.py "${rendered[@]}"; then
    echo "ok   policy checks on ${#rendered[@]} renderings"
else
    fail "policy checks"
fi

# The plain scrape config. Debian's promtool is built without Kubernetes service discovery, so
# it checks a copy whose kubernetes_sd_configs block is swapped for static_configs (everything
# else, relabelling and rule files included, is checked as shipped); the SD block itself is
# checked by key in check_deploy_policy.py.
config=deploy/prometheus/prometheus.yml
if python3 scripts/check_deploy_policy.py --scrape-config "$config"; then
    mkdir -p "$tmp/tree/deploy/prometheus"
    ln -s "$PWD/alerts" "$tmp/tree/alerts"
    python3 - "$config" "$tmp/tree/$config" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["127.0.0.1:9953"]}]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
    if promtool check config "$tmp/tree/$config" >"$tmp/promtool" 2>&1; then
        echo "ok   promtool check config $config"
    else
        fail "promtool check config $config: $(cat "$tmp/promtool")"
    fi
else
    fail "$config"
fi

verdict check-deploy
