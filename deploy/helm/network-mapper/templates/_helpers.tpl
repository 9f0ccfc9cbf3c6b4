{{/* The objects' name: the release name, or <release>-network-mapper when it does not contain the chart's. */}}
{{- define "network-mapper.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object: the ones deploy/base sets, then Helm's. */}}
{{- define "network-mapper.labels" -}}
app.kubernetes.io/name: network-mapper
app.kubernetes.io/part-of: network-mapper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The exporter pods: the DaemonSet's selector, the Service's and the PodMonitor's. */}}
{{- define "network-mapper.selectorLabels" -}}
app.kubernetes.io/name: network-mapper
app.kubernetes.io/component: exporter
{{- end -}}

{{/* Labels of the Prometheus Operator objects: kube-prometheus-stack selects them by `release`. */}}
{{- define "network-mapper.monitoringLabels" -}}
{{ include "network-mapper.labels" .root }}
{{- with .root.Values.kubePrometheusStack.release }}
release: {{ . }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "network-mapper.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "network-mapper.priorityClassName" -}}
{{- if .Values.priorityClass.create -}}
{{ include "network-mapper.fullname" . }}-node-agent
{{- else -}}
{{ .Values.priorityClass.name }}
{{- end -}}
{{- end -}}

{{/* The scrape endpoint's TLS and basic auth (ServiceMonitor and PodMonitor alike). */}}
{{- define "network-mapper.scrapeAuth" -}}
{{- if .Values.webConfig.enabled }}
scheme: https
tlsConfig:
  ca:
    secret:
      name: {{ .Values.webConfig.scrapeSecretName }}
      key: ca.crt
  serverName: {{ .Values.webConfig.serverName | default (printf "%s.%s.svc" (include "network-mapper.fullname" .) .Release.Namespace) }}
basicAuth:
  username:
    name: {{ .Values.webConfig.scrapeSecretName }}
    key: username
  password:
    name: {{ .Values.webConfig.scrapeSecretName }}
    key: password
{{- end }}
{{- end -}}
