// Shared helpers of the controller tests: the compiled controller modules and the validators every
// rendered object must pass (Istio's schemas from @kubernetes-models/istio, the filter's plugin-config
// schema compiled here independently of the controller's own check).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { WasmPlugin } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const dist = (m) => import(new URL(`../../dist/controller/${m}.mjs`, import.meta.url).href);
export const { render } = await dist('render');
export const { readObjects, toRenderInput } = await dist('load');
export const { DEFAULT_OPTIONS } = await dist('model');
export const { envoyBootstrap, DEFAULT_ENVOY_OPTIONS } = await dist('envoy');

const schema = JSON.parse(readFileSync(new URL('../../schema/plugin-config.schema.json', import.meta.url), 'utf8'));
const validatePluginConfig = new Ajv2020({ allErrors: true, strictSchema: true, strictRequired: false, strictTypes: false, strictTuples: false }).compile(schema);

/** Throws with every problem when the plugin config breaks schema/plugin-config.schema.json. */
export function assertPluginConfig(config) {
  if (!validatePluginConfig(config)) {
    throw new Error(`plugin config breaks the schema: ${JSON.stringify(validatePluginConfig.errors)}`);
  }
}

/** Validates a rendered Istio object with its typed model (throws the model's message). */
export function assertIstio(obj) {
  const Model = { WasmPlugin, EnvoyFilter }[obj.kind];
  if (!Model) throw new Error(`unexpected kind ${obj.kind}`);
  new Model(structuredClone(obj)).validate();
}

export const renderFiles = (files, options = {}) =>
  render(toRenderInput(readObjects(files)), { ...DEFAULT_OPTIONS, ...options });
