// The Wasm filter as the image Istio's agent pulls for `WasmPlugin.url: oci://...`: the "compat"
// variant of the Wasm image spec (github.com/solo-io/wasm, spec/spec-compat.md), the one Istio's
// pkg/wasm/imagefetcher.go tries first for an OCI manifest: exactly one
// application/vnd.oci.image.layer.v1.tar+gzip layer holding `plugin.wasm`, and the manifest
// annotation module.wasm.image/variant=compat. Chosen over the "oci" variant (custom media types)
// because every registry and tool (crane, skopeo, docker) handles it.
import { copyFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Layout, reproducibleTar } from './oci-layout.mjs';

/** Writes the layout of `wasm` (a file) to `dir`; returns { digest, size, layer } of what it wrote. */
export function buildWasmImage({ wasm, dir, ref, mtime, version }) {
  const stage = mkdtempSync(join(tmpdir(), 'meltemi-wasm-image-'));
  try {
    copyFileSync(wasm, join(stage, 'plugin.wasm'));
    chmodSync(stage, 0o755);
    chmodSync(join(stage, 'plugin.wasm'), 0o644);
    const layout = new Layout(dir);
    const layer = layout.layer(reproducibleTar(stage, mtime));
    const created = new Date(mtime * 1000).toISOString();
    const desc = layout.image({
      ref,
      // No platform value is standard for proxy-wasm modules; Istio reads only the layer.
      config: {
        created, architecture: 'wasm', os: 'proxy-wasm', config: {},
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created, created_by: 'make images: build/meltemi.wasm as /plugin.wasm' }],
      },
      layers: [layer],
      annotations: {
        'module.wasm.image/variant': 'compat',
        'org.opencontainers.image.title': 'meltemi',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.created': created,
      },
    });
    return { digest: desc.digest, size: desc.size, layer: layer.descriptor };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
