/**
 * The few Kubernetes REST calls the controller makes, over the credentials of a client-node
 * KubeConfig: list, server-side apply (with a field manager), delete. Informers come from client-node.
 * Not-found on delete is success; every other failure is an ApiError carrying the HTTP status and the
 * API server's own message.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from './model.mjs';

export class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) { super(message); this.name = 'ApiError'; }
  /** Conflicts, throttling, server errors and connection failures heal by themselves; the rest do not. */
  get retryable(): boolean { return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500; }
}

export interface Resource { readonly group: string; readonly version: string; readonly plural: string; readonly namespaced: boolean }

export const RESOURCES = {
  Service: { group: '', version: 'v1', plural: 'services', namespaced: true },
  ApplicationProtocol: { group: 'meltemi.dev', version: 'v1alpha1', plural: 'applicationprotocols', namespaced: false },
  MetaRouter: { group: 'meltemi.dev', version: 'v1alpha1', plural: 'metarouters', namespaced: true },
  ServiceEntry: { group: 'networking.istio.io', version: 'v1', plural: 'serviceentries', namespaced: true },
  DestinationRule: { group: 'networking.istio.io', version: 'v1', plural: 'destinationrules', namespaced: true },
  WasmPlugin: { group: 'extensions.istio.io', version: 'v1alpha1', plural: 'wasmplugins', namespaced: true },
  EnvoyFilter: { group: 'networking.istio.io', version: 'v1alpha3', plural: 'envoyfilters', namespaced: true },
} as const satisfies Record<string, Resource>;
export type Kind = keyof typeof RESOURCES;

/** Collection path; with a namespace, the namespaced collection; with a name, the object. */
export function resourcePath(r: Resource, namespace?: string, name?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export class Kube {
  constructor(private readonly kc: KubeConfig, readonly fieldManager = 'meltemi', private readonly timeoutMs = 15000) {}

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new ApiError(0, 'NoCluster', 'kubeconfig has no current cluster');
    const url = new URL(path, server);
    const opts: https.RequestOptions = { method, headers: { Accept: 'application/json' }, timeout: this.timeoutMs };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) Object.assign(opts.headers!, { 'Content-Type': contentType, 'Content-Length': payload.length });
    const lib = url.protocol === 'http:' ? http : https;
    return new Promise<T>((resolve, reject) => {
      const req = lib.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any;
          try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { message: text }; }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(parsed as T);
          else reject(new ApiError(status, parsed?.reason ?? 'Unknown', `${method} ${url.pathname}: ${status} ${parsed?.message ?? text}`));
        });
        res.on('error', (e) => reject(new ApiError(0, 'ConnectionError', `${method} ${url.pathname}: ${e.message}`)));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => reject(new ApiError(0, 'ConnectionError', `${method} ${url.pathname}: ${e.message}`)));
      req.end(payload);
    });
  }

  list<T extends KubeObject>(r: Resource, labelSelector?: string): Promise<{ metadata: { resourceVersion?: string }; items: T[] }> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
    return this.request('GET', resourcePath(r) + q);
  }

  /** Server-side apply: the object becomes what this field manager says, taking over conflicting fields. */
  apply<T extends KubeObject>(r: Resource, obj: KubeObject, subresource = ''): Promise<T> {
    const q = `?fieldManager=${encodeURIComponent(this.fieldManager)}&force=true&fieldValidation=Strict`;
    const path = resourcePath(r, obj.metadata.namespace, obj.metadata.name) + (subresource ? `/${subresource}` : '') + q;
    return this.request('PATCH', path, obj, 'application/apply-patch+yaml');
  }

  /** Deletes; returns false when the object was already gone (not an error). */
  async delete(r: Resource, namespace: string | undefined, name: string): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(r, namespace, name), { propagationPolicy: 'Background' });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return false;
      throw e;
    }
  }
}
