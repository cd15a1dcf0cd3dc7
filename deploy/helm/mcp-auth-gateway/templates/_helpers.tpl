{{/* Names, labels and the decisions several templates share. */}}

{{- define "gw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gw.fullname" -}}
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

{{- define "gw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "gw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mcp-auth-gateway
{{- end -}}

{{- define "gw.redis.fullname" -}}
{{- printf "%s-redis" (include "gw.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gw.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "gw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gw.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "true" when the gateway keeps its state in the embedded store (no Redis given anywhere). */}}
{{- define "gw.embedded" -}}
{{- $store := (.Values.config | default dict).store | default dict -}}
{{- if not (or .Values.redis.enabled .Values.externalRedis.url .Values.externalRedis.existingSecret $store.url .Values.existingConfigMap) -}}
true
{{- end -}}
{{- end -}}

{{/* Replicas the release may run at once (autoscaling's maximum when it is on). */}}
{{- define "gw.maxReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{ .Values.autoscaling.maxReplicas }}{{- else -}}{{ .Values.replicaCount }}{{- end -}}
{{- end -}}

{{/* The gateway.yaml the ConfigMap holds: the user's config, with listen and store set by the chart. */}}
{{- define "gw.config" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $listen := dict "host" "0.0.0.0" "port" (int .Values.ports.http) -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $listen "metrics_port" (int .Values.metrics.port) -}}
{{- $_ := set $listen "metrics_host" "0.0.0.0" -}}
{{- else -}}
{{- $_ := set $listen "metrics_port" nil -}}
{{- end -}}
{{- $_ := set $config "listen" (mergeOverwrite (deepCopy ($config.listen | default dict)) $listen) -}}
{{- $store := deepCopy ($config.store | default dict) -}}
{{- if .Values.redis.enabled -}}
{{- $_ := set $store "key_prefix" (default .Values.redis.keyPrefix $store.key_prefix) -}}
{{- if not .Values.redis.auth.existingSecret -}}
{{- $_ := set $store "url" (printf "redis://%s:6379/0" (include "gw.redis.fullname" .)) -}}
{{- end -}}
{{- else if .Values.externalRedis.url -}}
{{- $_ := set $store "url" .Values.externalRedis.url -}}
{{- else if include "gw.embedded" . -}}
{{- $_ := set $store "data_dir" "/var/lib/mcp-auth-gateway/data" -}}
{{- end -}}
{{- if $store -}}
{{- $_ := set $config "store" $store -}}
{{- end -}}
{{- if .Values.admin.enabled -}}
{{- $admin := deepCopy ($config.admin | default dict) -}}
{{- $_ := set $admin "listen" (dict "host" "127.0.0.1" "port" (int .Values.admin.port)) -}}
{{- $_ := set $config "admin" $admin -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Refusals: combinations that cannot work, said at install time. */}}
{{- define "gw.validate" -}}
{{- if and .Values.redis.enabled (or .Values.externalRedis.url .Values.externalRedis.existingSecret) -}}
{{- fail "redis.enabled and externalRedis: choose one store" -}}
{{- end -}}
{{- if and .Values.externalRedis.url .Values.externalRedis.existingSecret -}}
{{- fail "externalRedis: url or existingSecret, not both" -}}
{{- end -}}
{{- if and (include "gw.embedded" .) (gt (int (include "gw.maxReplicas" .)) 1) -}}
{{- fail "the embedded store serves one replica: set replicaCount 1 (no autoscaling), or give a Redis (redis.enabled or externalRedis)" -}}
{{- end -}}
{{- if and .Values.sidecar.enabled (not .Values.sidecar.container.image) -}}
{{- fail "sidecar.enabled needs sidecar.container.image (the MCP server next to the gateway)" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor needs metrics.enabled" -}}
{{- end -}}
{{- if and .Values.admin.enabled (eq (int .Values.admin.port) (int .Values.ports.http)) -}}
{{- fail "admin.port must differ from ports.http" -}}
{{- end -}}
{{- if and .Values.admin.enabled .Values.metrics.enabled (eq (int .Values.admin.port) (int .Values.metrics.port)) -}}
{{- fail "admin.port must differ from metrics.port" -}}
{{- end -}}
{{- $admin := (.Values.config | default dict).admin | default dict -}}
{{- if and .Values.admin.enabled (not .Values.admin.tokenSecret.name) (not $admin.token) (not $admin.tls) -}}
{{- fail "admin.enabled needs admin.tokenSecret.name (a Secret with the admin token), or config.admin.tls for client certificates" -}}
{{- end -}}
{{- if and (not .Values.existingConfigMap) (not (.Values.config | default dict).public_url) -}}
{{- fail "config.public_url is required (the origin clients reach the gateway at)" -}}
{{- end -}}
{{- end -}}

{{/* The gateway container's env list: store URL, metrics and admin tokens from Secrets, then `env`. */}}
{{- define "gw.env" -}}
{{- if and .Values.redis.enabled .Values.redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.redis.auth.existingSecret }}, key: {{ .Values.redis.auth.key }}}
- name: MCP_GATEWAY_STORE__URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "gw.redis.fullname" .) | quote }}
{{- else if .Values.externalRedis.existingSecret }}
- name: MCP_GATEWAY_STORE__URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.externalRedis.existingSecret }}, key: {{ .Values.externalRedis.key }}}
{{- end }}
{{- if .Values.metrics.tokenSecret.name }}
- name: MCP_GATEWAY_LISTEN__METRICS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.metrics.tokenSecret.name }}, key: {{ .Values.metrics.tokenSecret.key }}}
{{- end }}
{{- if and .Values.admin.enabled .Values.admin.tokenSecret.name }}
- name: MCP_GATEWAY_ADMIN__TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.admin.tokenSecret.name }}, key: {{ .Values.admin.tokenSecret.key }}}
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}
