// Validates Prometheus Operator objects (ServiceMonitor, PodMonitor, PrometheusRule) read as a
// JSON array from stdin against the operator's CRD schemas, as compiled by
// @kubernetes-models/prometheus-operator. kubernetes-validate only knows built-in kinds.
// The CRD schemas allow unknown fields (the API server prunes them silently), so this also
// rejects any field the schema does not declare: a typo such as `honorLabel` would otherwise
// pass here and be dropped in the cluster.
import { PodMonitor, PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = { PodMonitor, PrometheusRule, ServiceMonitor };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString());

let failed = 0;
for (const obj of objects) {
  const where = `${obj.kind}/${obj.metadata?.name}`;
  const Model = models[obj.kind];
  if (!Model || obj.apiVersion !== Model.apiVersion) {
    console.error(`FAIL ${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok   ${where} (${Model.apiVersion})`);
  } catch (err) {
    console.error(`FAIL ${where}: ${err.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
