{{/* Names and labels shared by every template. */}}

{{/* Release name, or <release>-meltemi when the release name lacks the chart's (63 chars, DNS). */}}
{{- define "meltemi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meltemi.serviceAccountName" -}}
{{- default (include "meltemi.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "meltemi.labels" -}}
app.kubernetes.io/part-of: meltemi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The controller Pod's selector (immutable once a Deployment exists: never add to it). */}}
{{- define "meltemi.selectorLabels" -}}
app.kubernetes.io/name: meltemi-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* repository@digest when a digest is given (the tag is then ignored), else repository:tag. */}}
{{- define "meltemi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "meltemi.moduleUrl" -}}
{{- default (printf "oci://ghcr.io/meltemi-dev/meltemi:%s" .Chart.AppVersion) .Values.module.url -}}
{{- end -}}

{{/* CRD metadata: part-of label, and helm's keep policy so that uninstall leaves MetaRouters alone. */}}
{{- define "meltemi.crdMetadata" -}}
labels:
  {{- include "meltemi.labels" . | nindent 2 }}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end -}}
