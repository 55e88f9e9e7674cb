{{/*
The spoke is one per cluster: its objects are named after the chart, not the
release, and match the names of the generated ClusterRole and Role.
*/}}
{{- define "lifeboat-spoke.name" -}}
{{- .Chart.Name -}}
{{- end }}

{{/*
The spoke's namespace is fixed: its Role, heartbeat Lease and hub credential
live in lifeboat-system.
*/}}
{{- define "lifeboat-spoke.namespace" -}}
{{- if ne .Release.Namespace "lifeboat-system" -}}
{{- fail (printf "the spoke runs in namespace lifeboat-system (its Role, heartbeat Lease and hub credential are there), not %q: install with --namespace lifeboat-system" .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end }}

{{/* Selector labels: keep them stable, a Deployment's selector is immutable. */}}
{{- define "lifeboat-spoke.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lifeboat-spoke.name" . }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "lifeboat-spoke.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lifeboat-spoke.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lifeboat
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The manager's image: image.ref, else image.repository:image.tag. */}}
{{- define "lifeboat-spoke.image" -}}
{{- if .Values.image.ref -}}
{{- .Values.image.ref -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}
