/**
 * The filter's plugin configuration as TypeScript, and its validator built from the one shared
 * contract, schema/plugin-config.schema.json (the filter validates the same JSON at proxy_on_configure).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';

export type CodecName = 'thrift' | 'dubbo';

/** What each registered codec can carry; mirrors assembly/codecs/registry.ts (one line per codec). */
export const CODECS: Readonly<Record<CodecName, { readonly mutations: boolean }>> = {
  dubbo: { mutations: true },
  thrift: { mutations: false },
} as const;

export interface StringMatchConfig { readonly exact?: string; readonly prefix?: string; readonly regex?: string }
export interface KeyValueConfig { readonly key: string; readonly value: string }

export interface RouteConfig {
  readonly name: string;
  readonly match?: { readonly attributes: Readonly<Record<string, StringMatchConfig>> };
  readonly route: readonly { readonly cluster: string; readonly weight?: number }[];
  readonly requestMutation?: readonly KeyValueConfig[];
  readonly responseMutation?: readonly KeyValueConfig[];
}

export interface PluginConfig {
  readonly codec: CodecName;
  readonly codecOptions?: Readonly<Record<string, string>>;
  readonly statPrefix?: string;
  readonly maxFrameBytes?: number;
  readonly noRoute?: 'default' | 'reject';
  readonly defaultCluster?: string;
  readonly mismatchPolicy?: 'keep' | 'close';
  readonly accessLog?: boolean;
  readonly routes: readonly RouteConfig[];
}

export const PLUGIN_CONFIG_SCHEMA_URL = new URL('../../schema/plugin-config.schema.json', import.meta.url);

let validator: ((value: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } | undefined;

/**
 * Checks a rendered config against schema/plugin-config.schema.json. Returns the problems as
 * "<json pointer> <message>" lines; empty when valid. The schema is read once, on first use.
 */
export function pluginConfigProblems(config: unknown): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(PLUGIN_CONFIG_SCHEMA_URL, 'utf8')) as object;
    validator = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
  }
  if (validator(config)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}
