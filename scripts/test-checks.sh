#!/usr/bin/env bash
# shellcheck disable=SC2016  # the sed scripts in this file match literal $ signs
# Tests the checkers themselves: each case copies the repository's ops files to a temp dir,
# breaks one promise, and expects the matching check to fail with a specific message. A checker
# that passes a broken file is worse than none.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
source scripts/tools.sh
src=$PWD
# check-grafana.py reads the metric names from the exporter's table; the copies below have no sources to build.
cargo build --quiet --locked --bin network-mapper || exit 2
export NETMAP_EXPORTER=${CARGO_TARGET_DIR:-$src/target}/debug/network-mapper
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
    judge "$name" "$check" "$expected" "$rc" "$out"
    rm -rf "$tmp"
}

# judge NAME CHECK EXPECTED-MESSAGE EXIT-STATUS OUTPUT: the check must have failed (1) with that message.
judge() {
    local name=$1 check=$2 expected=$3 rc=$4 out=$5
    if [[ $rc -eq 1 && $out == *"$expected"* ]]; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $check exited $rc without '$expected'"
        echo "$out" | tail -5 | sed 's/^/     /'
        failed=$((failed + 1))
    fi
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

chart=deploy/helm/network-mapper
case_ "chart drifts from kustomize: base changed alone" check-helm.sh "differs from kubectl kustomize deploy" \
    sed -i 's/terminationGracePeriodSeconds: 10/terminationGracePeriodSeconds: 30/' $ds
case_ "chart drifts from kustomize: chart changed alone" check-helm.sh "differs from kubectl kustomize deploy" \
    sed -i 's/add: \[NET_RAW\]/add: [NET_RAW, NET_ADMIN]/' $chart/templates/daemonset.yaml
case_ "chart: extra capability" check-deploy.sh "capabilities.add is" \
    sed -i 's/add: \[NET_RAW\]/add: [NET_RAW, NET_ADMIN]/' $chart/templates/daemonset.yaml
case_ "an overlay the chart cannot render" check-helm.sh "has no values file" \
    cp -r deploy/overlays/prometheus-operator deploy/overlays/my-operator
case_ "values schema accepts a string for a boolean" check-helm.sh "was accepted" \
    sed -i 's/"enabled": {"type": "boolean"},/"enabled": {},/' $chart/values.schema.json
case_ "chart version is not the crate's" check-helm.sh "appVersion is" \
    sed -i 's/^appVersion: .*/appVersion: "0.0.9"/' $chart/Chart.yaml
case_ "runbook's first step not in the description" check-alerts.sh "does not end with the runbook's first line" \
    sed -i 's/^First step: `kubectl -n network-mapper get pods/First step: `kubectl get pods/' docs/runbooks.md
case_ "chart: runbook_url without the heading's anchor" check-alerts.sh "runbook_url" \
    sed -i 's/(lower $rule.alert)/$rule.alert/' $chart/templates/prometheusrule.yaml
case_ "kustomize: runbook_url patch not regenerated" check-alerts.sh "is not what scripts/gen-prometheusrule.py generates" \
    sed -i '0,/networkmappernewedge/s//newedge/' deploy/components/runbook-url/runbook-urls.yaml
case_ "dashboard ConfigMap without the sidecar's label" check-grafana.py "is not labelled grafana_dashboard" \
    bash -c "sed -i 's/\"grafana_dashboard\": \"1\"/\"grafana_dashboard\": \"0\"/' scripts/gen-dashboard.py && python3 scripts/gen-dashboard.py"
case_ "dashboard ConfigMap: chart copy stale" check-grafana.py "is not what scripts/gen-dashboard.py generates" \
    sed -i 's/"title": "Edges vs. cap"/"title": "Edges vs cap"/' $chart/files/network-mapper.json

# The tool check reads the whole repository, so it runs here against a broken copy of the set-up script only.
broken=$(mktemp)
sed 's/^  dnsutils  /  #dnsutils /' scripts/setup.sh >"$broken"
out=$(python3 scripts/check-tools.py --setup "$broken" 2>&1)
judge "set-up without dnsutils" check-tools.py "/usr/bin/dig (/usr/bin/dig: bind9-dnsutils) is not installed" $? "$out"
rm -f "$broken"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
