/** Reads Kubernetes YAML (files, folders, or "-" for stdin) into the inputs of render. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, type ApplicationProtocol, type KubeObject, type MetaRouter, type RenderInput, type Service, type ServiceEntry, type DestinationRule } from './model.mjs';

/** Aeraki's group: accepted on input so that existing manifests render unchanged. */
const AERAKI_API_VERSION = 'metaprotocol.aeraki.io/v1alpha1';

export function yamlFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (p === '-') { out.push(p); continue; }
    if (statSync(p).isDirectory()) {
      out.push(...yamlFiles(readdirSync(p).filter((f) => /\.ya?ml$|\.json$/.test(f) || statSync(join(p, f)).isDirectory()).sort().map((f) => join(p, f))));
    } else out.push(p);
  }
  return out;
}

/** Every object in the given files (List kinds are flattened); throws with the file name on bad YAML. */
export function readObjects(paths: readonly string[]): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const file of yamlFiles(paths)) {
    const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as KubeObject | null;
      if (!value || typeof value !== 'object') continue;
      const items = (value as { items?: KubeObject[] }).items;
      if (value.kind?.endsWith('List') && Array.isArray(items)) objects.push(...items);
      else objects.push(value);
    }
  }
  return objects;
}

const ISTIO_NETWORKING = /^networking\.istio\.io\/v1(alpha3|beta1)?$/;
const ours = (o: KubeObject) => o.apiVersion === API_VERSION || o.apiVersion === AERAKI_API_VERSION;

export function toRenderInput(objects: readonly KubeObject[]): RenderInput {
  const withNs = <T extends KubeObject>(o: T): T => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } });
  return {
    services: objects.filter((o): o is Service => o.apiVersion === 'v1' && o.kind === 'Service').map(withNs),
    protocols: objects.filter((o): o is ApplicationProtocol => ours(o) && o.kind === 'ApplicationProtocol'),
    routers: objects.filter((o): o is MetaRouter => ours(o) && o.kind === 'MetaRouter').map(withNs),
    serviceEntries: objects.filter((o): o is ServiceEntry => ISTIO_NETWORKING.test(o.apiVersion ?? '') && o.kind === 'ServiceEntry').map(withNs),
    destinationRules: objects.filter((o): o is DestinationRule => ISTIO_NETWORKING.test(o.apiVersion ?? '') && o.kind === 'DestinationRule').map(withNs),
  };
}
