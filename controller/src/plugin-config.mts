/**
 * The filter's plugin configuration as TypeScript, and its validator built from the one shared
 * contract, schema/plugin-config.schema.json (the filter validates the same JSON at proxy_on_configure).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** A codec name from the schema's `codec` enum (the filter's assembly/codecs/registry.ts). */
export type CodecName = string;

/**
 * What a codec can carry beyond routing, as the filter's Codec.canMutate says: always, never, or
 * under one codecOptions value (Thrift: THeader key/values only). Codecs not listed carry no
 * key/values: a new codec in the schema's enum works at once, and gains mutations with one line here.
 */
export const CODEC_CAPABILITIES: Readonly<Record<string, { readonly mutations: boolean | { readonly option: string; readonly value: string } }>> = {
  dubbo: { mutations: true },
  thrift: { mutations: { option: 'transport', value: 'header' } },
} as const;

export const canMutate = (codec: CodecName, codecOptions: Readonly<Record<string, string>> = {}): boolean => {
  const m = CODEC_CAPABILITIES[codec]?.mutations ?? false;
  return typeof m === 'boolean' ? m : codecOptions[m.option] === m.value;
};

/** How a codec could carry key/values when these options do not let it (the tail of the error). */
export const mutationHint = (codec: CodecName): string => {
  const m = CODEC_CAPABILITIES[codec]?.mutations;
  return m && typeof m !== 'boolean' ? ` unless codecOptions.${m.option} is ${m.value}` : '';
};

export interface StringMatchConfig { readonly exact?: string; readonly prefix?: string; readonly regex?: string }
export interface KeyValueConfig { readonly key: string; readonly value: string }

/** Route policies (docs/policies.md); their shapes are checked against the schema, not typed here. */
export interface PolicyConfig {
  readonly timeoutMs?: number;
  readonly fault?: unknown;
  readonly localRateLimit?: unknown;
  readonly authorization?: unknown;
}

export interface RouteConfig extends PolicyConfig {
  readonly name: string;
  readonly match?: { readonly attributes: Readonly<Record<string, StringMatchConfig>> };
  readonly route: readonly { readonly cluster: string; readonly weight?: number }[];
  readonly requestMutation?: readonly KeyValueConfig[];
  readonly responseMutation?: readonly KeyValueConfig[];
}

export interface PluginConfig {
  readonly codec: CodecName;
  readonly mode?: 'perConnection' | 'perRequest';
  readonly role?: 'client' | 'server';
  readonly codecOptions?: Readonly<Record<string, string>>;
  readonly statPrefix?: string;
  /** The meltemi_service label of the filter's metrics: the routed Service's host. */
  readonly service?: string;
  readonly maxFrameBytes?: number;
  readonly firstRequestTimeoutMs?: number;
  readonly noRoute?: 'default' | 'reject';
  readonly defaultCluster?: string;
  readonly mismatchPolicy?: 'keep' | 'close';
  readonly accessLog?: boolean;
  readonly scope?: { readonly destinations?: readonly string[]; readonly filterChains?: readonly string[] };
  readonly routes: readonly RouteConfig[];
}

export const PLUGIN_CONFIG_SCHEMA_URL = new URL('../../schema/plugin-config.schema.json', import.meta.url);

let schemaCache: { properties: { codec: { enum: string[] } } } | undefined;
const schema = () => (schemaCache ??= JSON.parse(readFileSync(PLUGIN_CONFIG_SCHEMA_URL, 'utf8')));

/** The codecs the filter registers, as the shared schema lists them. */
export function registeredCodecs(): readonly string[] {
  return schema().properties.codec.enum;
}

let validator: ((value: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } | undefined;

/**
 * Checks a rendered config against schema/plugin-config.schema.json. Returns the problems as
 * "<json pointer> <message>" lines; empty when valid. The schema is read once, on first use.
 */
export function pluginConfigProblems(config: unknown): string[] {
  if (!validator) {
    validator = new Ajv2020({ allErrors: true, strictSchema: true, strictRequired: false, strictTypes: false, strictTuples: false }).compile(schema());
  }
  if (validator(config)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}
