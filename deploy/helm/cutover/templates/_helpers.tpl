{{/*
Names. A StatefulSet's pods carry a controller-revision-hash label built
from its name, so names stay well under Kubernetes' 63 characters.
*/}}
{{- define "cutover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "cutover.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "cutover.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "cutover.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "cutover.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "cutover.selectorLabels" . }}
{{- end }}

{{- define "cutover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cutover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cutover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cutover.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cutover.secretName" -}}
{{- default (include "cutover.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "cutover.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The flags the chart owns, because the volumes and probes depend on them:
where the source's checkpoints go, and the port of /metrics, /healthz and
/readyz. Flags win over the pipeline file.
*/}}
{{- define "cutover.ownedArgs" -}}
- --checkpoint-dir
- /var/lib/cutover/checkpoints
- --metrics-addr
- {{ printf ":%d" (int .Values.metrics.port) | quote }}
{{- end }}

{{/*
The environment both workloads get: the pipeline's ${VAR}s must all be set
in every process that reads the file, the sink's too.
*/}}
{{- define "cutover.env" -}}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $_ := .Values.secrets }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "cutover.secretName" $ }}
      key: {{ $name }}
{{- end }}
{{- end }}

{{/* Pod annotations: restart pods when their configuration changes. */}}
{{- define "cutover.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The parts of a cutover container that the source and the sinks share. */}}
{{- define "cutover.containerCommon" -}}
image: {{ include "cutover.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
ports:
  - name: metrics
    containerPort: {{ .Values.metrics.port }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Scheduling settings both workloads take. */}}
{{- define "cutover.podCommon" -}}
serviceAccountName: {{ include "cutover.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
