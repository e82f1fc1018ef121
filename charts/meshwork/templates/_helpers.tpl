{{/* The chart's name, shortened to a DNS label. */}}
{{- define "meshwork.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for the operator's objects. */}}
{{- define "meshwork.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object; selectors use only meshwork.selectorLabels (never the version). */}}
{{- define "meshwork.labels" -}}
{{ include "meshwork.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meshwork
{{- end }}

{{- define "meshwork.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshwork.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "meshwork.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meshwork.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "meshwork.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespace whose MeshPartitions a namespaced operator reconciles. */}}
{{- define "meshwork.watchNamespace" -}}
{{- default .Release.Namespace .Values.operator.watchNamespace }}
{{- end }}

{{/*
Relabelings that give every scraped Meshwork series the labels the dashboards and alerts read
(observability/scrape.ts holds the same for the local stack): role from
app.kubernetes.io/component, partition and mesh from Meshwork's labels, namespace and pod.
*/}}
{{- define "meshwork.metricsRelabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
  targetLabel: role
- sourceLabels: [__meta_kubernetes_pod_label_meshwork_io_partition]
  targetLabel: partition
- sourceLabels: [__meta_kubernetes_pod_label_meshwork_io_mesh]
  targetLabel: mesh
- sourceLabels: [__meta_kubernetes_namespace]
  targetLabel: namespace
- sourceLabels: [__meta_kubernetes_pod_name]
  targetLabel: pod
{{- end }}
