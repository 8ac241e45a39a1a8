/**
 * A MetaRouter's spec.accessLog (Meltemi's field: Aeraki's MetaRouter has none, Aeraki logs by
 * the mesh's accessLogFile), and Envoy's own access log of per-request calls.
 *
 *   accessLog: {}                            on: per request, Envoy's log to /dev/stdout (Istio's convention)
 *   accessLog: { path: /var/log/calls.log }  on, Envoy's log to that file
 *   accessLog: { enabled: false }            off, as when the field is absent
 *
 * On, the plugin config gets `accessLog: true`: the filter writes one JSON line per request in
 * Envoy's `wasm` logger (assembly/engine/access-log.ts; the only way a network filter can log per
 * request when tcp_proxy logs per connection). Per request, the call crosses Envoy's HTTP
 * connection manager, which also writes one line per call to `path` (callAccessLog).
 */
export interface AccessLogSpec {
  /** Where Envoy's access log of per-request calls writes. */
  readonly path: string;
}

export const DEFAULT_ACCESS_LOG_PATH = '/dev/stdout';

/**
 * Checks spec.accessLog and returns what it asks for, or undefined when logging is off. Problems
 * are pushed onto `errors` naming the field; a path per connection, where the lines go to Envoy's
 * application log and no file is written, onto `warnings`.
 */
export function compileAccessLog(value: unknown, perRequest: boolean, errors: string[], warnings: string[]): AccessLogSpec | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`spec.accessLog: expected an object such as {} or { path: /dev/stdout }, got ${JSON.stringify(value)}`);
    return undefined;
  }
  const { enabled, path } = value as { enabled?: unknown; path?: unknown };
  if (enabled !== undefined && typeof enabled !== 'boolean') errors.push(`spec.accessLog.enabled: expected true or false, got ${JSON.stringify(enabled)}`);
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/') || /[\0\n]/.test(path))) {
    errors.push(`spec.accessLog.path: expected an absolute file path such as /dev/stdout, got ${JSON.stringify(path)}`);
  }
  if (enabled === false) return undefined;
  if (path !== undefined && !perRequest) {
    warnings.push('spec.accessLog.path: not used per connection (the filter\'s lines go to Envoy\'s application log, wasm logger, '
      + '"meltemi access {...}"); it is where Envoy\'s own access log writes in per-request mode');
  }
  return { path: typeof path === 'string' ? path : DEFAULT_ACCESS_LOG_PATH };
}

/**
 * One JSON object per call, from what Envoy's connection manager knows of it: the route Envoy
 * chose (the Meltemi route's name), the cluster (Istio's outbound|<port>|<subset>|<host>) and endpoint, the client, the HTTP status Envoy
 * or the server role answered with, how the protocol answered (x-meltemi-status, from the server
 * role: reply, exception, local_reply, oneway; null when Envoy answered itself), the operation
 * (`/<service>/<method>`, call-headers.ts) and the time and bytes.
 */
export const CALL_LOG_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route: '%ROUTE_NAME%',
  // The cluster's own name: %UPSTREAM_CLUSTER% is its alt_stat_name, which Istio sets to the name plus ';'.
  cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_host: '%UPSTREAM_HOST%',
  peer: '%DOWNSTREAM_REMOTE_ADDRESS%',
  operation: '%REQ(:PATH)%',
  response_code: '%RESPONSE_CODE%',
  status: '%RESP(X-MELTEMI-STATUS)%',
  response_flags: '%RESPONSE_FLAGS%',
  details: '%RESPONSE_CODE_DETAILS%',
  duration_ms: '%DURATION%',
  request_bytes: '%BYTES_RECEIVED%',
  response_bytes: '%BYTES_SENT%',
};

/** The connection manager's access_log entry: Envoy's file logger writing CALL_LOG_FORMAT lines to `spec.path`. */
export function callAccessLog(spec: AccessLogSpec): object {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: spec.path,
      log_format: { json_format: CALL_LOG_FORMAT },
    },
  };
}
