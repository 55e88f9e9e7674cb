{{/*
The hub is one per backup cluster: its objects are named after the chart, not
the release, and match the name of the generated ClusterRole.
*/}}
{{- define "lifeboat-hub.name" -}}
{{- .Chart.Name -}}
{{- end }}

{{/* Selector labels: keep them stable, a Deployment's selector is immutable. */}}
{{- define "lifeboat-hub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lifeboat-hub.name" . }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "lifeboat-hub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lifeboat-hub.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lifeboat
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The manager's image: image.ref, else image.repository:image.tag. */}}
{{- define "lifeboat-hub.image" -}}
{{- if .Values.image.ref -}}
{{- .Values.image.ref -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}
