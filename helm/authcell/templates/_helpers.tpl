{{/* Chart name, overridable. */}}
{{- define "authcell.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "authcell.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "authcell.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "authcell.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authcell.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels (app.kubernetes.io conventions) plus the cell. */}}
{{- define "authcell.labels" -}}
helm.sh/chart: {{ include "authcell.chart" . }}
{{ include "authcell.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: credential-authority
app.kubernetes.io/part-of: authcell
app.kubernetes.io/managed-by: {{ .Release.Service }}
authcell/cell: {{ include "authcell.cell" . | quote }}
{{- end -}}

{{- define "authcell.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "authcell.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Required values, with the error a user sees from `helm install`. */}}
{{- define "authcell.cell" -}}
{{- required "cell.name is required: this cell's name (AUTHCELL_CELL)" .Values.cell.name -}}
{{- end -}}

{{/* redis://[USER][:$(REDIS_PASSWORD)@]HOST:PORT/DB; $(REDIS_PASSWORD) is expanded by the kubelet. */}}
{{- define "authcell.redisUrl" -}}
{{- $root := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $r := $root.Values.redis -}}
{{- $auth := "" -}}
{{- if $r.password.secretName -}}
{{- $auth = printf "%s:$(REDIS_PASSWORD)@" $r.username -}}
{{- else if $r.username -}}
{{- $auth = printf "%s@" $r.username -}}
{{- end -}}
{{- printf "redis://%s%s:%v/%v" $auth $endpoint.host (int $endpoint.port) (int $r.db) -}}
{{- end -}}

{{- define "authcell.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* TLS paths inside the container. */}}
{{- define "authcell.clientCAPath" -}}
{{- $ca := .Values.tls.clientCA -}}
{{- if or (not $ca.secretName) (eq $ca.secretName .Values.tls.secretName) -}}
/etc/authcell/tls/{{ $ca.key }}
{{- else -}}
/etc/authcell/client-ca/{{ $ca.key }}
{{- end -}}
{{- end -}}

{{- define "authcell.clientCASeparate" -}}
{{- $ca := .Values.tls.clientCA -}}
{{- if and .Values.tls.enabled $ca.enabled $ca.secretName (ne $ca.secretName .Values.tls.secretName) -}}
true
{{- end -}}
{{- end -}}

{{/* Probe action: native gRPC health check, or a TCP connect when the port speaks TLS
     (Kubernetes gRPC probes are plaintext only). */}}
{{- define "authcell.probeAction" -}}
{{- $root := index . 0 -}}
{{- $service := index . 1 -}}
{{- if $root.Values.tls.enabled -}}
tcpSocket:
  port: grpc
{{- else -}}
grpc:
  port: {{ int $root.Values.server.port }}
  service: {{ $service | quote }}
{{- end -}}
{{- end -}}
