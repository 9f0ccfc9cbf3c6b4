#!/usr/bin/env bash
# shellcheck disable=SC2016  # the sed scripts in this file match literal $ signs
# Tests the checkers themselves: each case copies the repository's ops files to a temp dir,
# breaks one promise, and expects the matching check to fail with a specific message. A checker
# that passes a broken file is worse than none.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
src=$PWD
passed=0
failed=0

# copy_tree DEST: the files the checkers read, with the npm validator's modules linked.
copy_tree() {
    mkdir -p "$1/scripts"
    cp -a alerts deploy grafana Cargo.toml docs "$1/"
    cp -a scripts/*.sh scripts/*.py "$1/scripts/"
    mkdir -p "$1/scripts/crd-validate"
    cp scripts/crd-validate/*.json scripts/crd-validate/*.mjs "$1/scripts/crd-validate/"
    ln -s "$src/scripts/crd-validate/node_modules" "$1/scripts/crd-validate/node_modules"
}

# case NAME CHECK EXPECTED-MESSAGE MUTATION...: the mutation runs inside the copy.
case_() {
    local name=$1 check=$2 expected=$3
    shift 3
    local tmp
    tmp=$(mktemp -d)
    copy_tree "$tmp"
    (cd "$tmp" && "$@") || { echo "FAIL $name: the mutation itself failed"; failed=$((failed + 1)); rm -rf "$tmp"; return; }
    local out rc
    out=$(cd "$tmp" && "scripts/$check" 2>&1)
    rc=$?
    if [[ $rc -eq 1 && $out == *"$expected"* ]]; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $check exited $rc without '$expected'"
        echo "$out" | tail -5 | sed 's/^/     /'
        failed=$((failed + 1))
    fi
    rm -rf "$tmp"
}

ds=deploy/base/daemonset.yaml
case_ "extra capability" check-deploy.sh "capabilities.add is" \
    sed -i 's/add: \[NET_RAW\]/add: [NET_RAW, SYS_ADMIN]/' $ds
case_ "privilege escalation" check-deploy.sh "allowPrivilegeEscalation must be False" \
    sed -i 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' $ds
case_ "writable /proc" check-deploy.sh "read-only at /host/proc" \
    sed -i '/mountPath: \/host\/proc/{n;s/readOnly: true/readOnly: false/}' $ds
case_ "unknown DaemonSet field" check-deploy.sh "Additional properties are not allowed" \
    sed -i 's/      hostNetwork: true/      hostNetwork: true\n      hostNetwrk: true/' $ds
case_ "write verb in RBAC" check-deploy.sh "verbs must be exactly get, list, watch" \
    sed -i '0,/verbs: \[get, list, watch\]/s//verbs: [get, list, watch, create]/' deploy/base/clusterrole.yaml
case_ "secrets in RBAC" check-deploy.sh "expected exactly" \
    sed -i 's/resources: \[pods, services\]/resources: [pods, services, secrets]/' deploy/base/clusterrole.yaml
case_ "image not the one make image builds" check-deploy.sh "is not what \`make image\` builds" \
    sed -i '0,/^version = "\(.*\)"$/s//version = "\1.1"/' Cargo.toml
case_ "honorLabels off" check-deploy.sh "honorLabels: true" \
    sed -i 's/honorLabels: true/honorLabels: false/' deploy/components/servicemonitor/servicemonitor.yaml
case_ "ServiceMonitor type error" check-deploy.sh "must be boolean" \
    sed -i 's/honorLabels: true/honorLabels: "yes"/' deploy/components/servicemonitor/servicemonitor.yaml
case_ "scrape config without honor_labels" check-deploy.sh "honor_labels: true" \
    sed -i 's/honor_labels: true/honor_labels: false/' deploy/prometheus/prometheus.yml
case_ "kube-prometheus-stack: PrometheusRule without release label" check-deploy.sh "disagree on the \`release\` label" \
    sed -i 's/kind: PrometheusRule/kind: PrometheusRuleX/' deploy/components/kube-prometheus-stack/kustomization.yaml
case_ "web config: plain-HTTP ServiceMonitor" check-deploy.sh "every endpoint needs scheme: https" \
    sed -i 's/value: https/value: http/' deploy/components/web-config/kustomization.yaml
case_ "listen address: HOST_IP not from the downward API" check-deploy.sh "must come from the downward API (status.hostIP)" \
    sed -i 's/fieldPath: status.hostIP/fieldPath: status.podIP/' deploy/base/daemonset.yaml
case_ "PrometheusRule not regenerated" check-alerts.sh "is not what alerts/ generates" \
    sed -i 's/for: 15m/for: 20m/' alerts/health-alerts.yml
case_ "no warm-up guard" check-alerts.sh "warm-up after a fresh install" \
    bash -c "sed -i '/and on ()\$/{N;/present_over_time/d}' alerts/edge-alerts.yml && python3 scripts/gen-prometheusrule.py"
case_ "new-edge alert keyed on the exporter pod" check-alerts.sh "no alert after a DaemonSet rollout" \
    bash -c "sed -i 's/unless on (client, namespace, server, server_namespace)\$/unless on (client, namespace, server, server_namespace, pod)/; s/group by (client, namespace, server, server_namespace) (network_mapper_edge_total)/group by (client, namespace, server, server_namespace, pod) (network_mapper_edge_total)/' alerts/*.yml && python3 scripts/gen-prometheusrule.py"
case_ "alert without runbook" check-alerts.sh "runbook section" \
    sed -i 's/^### NetworkMapperDown/### Down/' docs/runbooks.md
case_ "dashboard: unknown metric" check-grafana.py "is not exported by network-mapper" \
    sed -i 's/network_mapper_capture_packets_total/network_mapper_packets_total/' grafana/network-mapper.json
case_ "dashboard: per-pod series" check-grafana.py "is not aggregated" \
    sed -i 's/max by (node) (network_mapper_socket_namespaces{node=~\\"$node\\"})/network_mapper_socket_namespaces/' grafana/network-mapper.json
case_ "dashboard: broken PromQL" check-grafana.py "promtool rejects the query" \
    sed -i 's/count by (version) (network_mapper_build_info)/count by (version) (network_mapper_build_info/' grafana/network-mapper.json
case_ "dashboard: node graph ids" check-grafana.py "does not shape" \
    sed -i 's/\\"id\\", \\" -> \\", \\"source\\", \\"target\\"/\\"id\\", \\" -> \\", \\"target\\", \\"source\\"/' grafana/network-mapper.json
case_ "dashboard: panel id nodegraph (Grafana's is nodeGraph)" check-grafana.py "is not a Grafana panel plugin id" \
    sed -i 's/"type": "nodeGraph"/"type": "nodegraph"/' grafana/network-mapper.json
case_ "dashboard: query only a non-installed rule answers" check-grafana.py "does not install" \
    sed -i 's/label_values(network_mapper_edge_total, namespace)/label_values(network_mapper:edge:present, namespace)/' grafana/network-mapper.json
case_ "dashboard: hand-edited JSON" check-grafana.py "is not what scripts/gen-dashboard.py generates" \
    sed -i 's/"title": "Edges vs. cap"/"title": "Edges vs cap"/' grafana/network-mapper.json

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
