// Writes OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// without Docker: content-addressed blobs, one manifest, an index naming it. Layers are reproducible
// tar.gz files: GNU tar with sorted names, one fixed mtime, uid/gid 0 and no atime/ctime, then gzip -n
// (no name or timestamp in the gzip header), so the same inputs give the same digests.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MEDIA = /** @type {const} */ ({
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
});

const sha256 = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * The tar of everything under `dir` (paths relative to it, as "./..."), as bytes. `mtime` is seconds
 * since the epoch, applied to every entry; modes are kept as staged (the callers set them).
 */
export function reproducibleTar(dir, mtime) {
  return execFileSync('tar', [
    '--sort=name', `--mtime=@${mtime}`, '--owner=0', '--group=0', '--numeric-owner',
    '--format=pax', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '-C', dir, '-cf', '-', '.',
  ], { maxBuffer: 1 << 30 });
}

/** gzip -n: the compressed stream depends on the bytes only (no file name, no timestamp). */
export const gzip = (bytes) => execFileSync('gzip', ['-n', '-6', '-c'], { input: bytes, maxBuffer: 1 << 30 });

/** An OCI layout under `dir` (replaced if present): blobs written as they are added, then the index. */
export class Layout {
  constructor(dir) {
    this.dir = dir;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  /** Stores `bytes` and returns their descriptor. */
  blob(mediaType, bytes) {
    const digest = sha256(bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /**
   * Stores a gzipped layer from its tar, and returns the manifest descriptor plus the diff_id (digest
   * of the uncompressed tar) that the image config lists.
   */
  layer(tar) {
    return { descriptor: this.blob(MEDIA.layer, gzip(tar)), diffId: sha256(tar) };
  }

  /**
   * Stores config and manifest, writes index.json naming the manifest `ref` (a tag, e.g. "0.1.0"), and
   * returns the manifest descriptor (its digest is the image digest a registry reports).
   */
  image({ config, layers, annotations, ref }) {
    const configDesc = this.blob(MEDIA.config, Buffer.from(JSON.stringify(config)));
    const manifest = {
      schemaVersion: 2, mediaType: MEDIA.manifest, config: configDesc,
      layers: layers.map((l) => l.descriptor), ...(annotations ? { annotations } : {}),
    };
    const desc = this.blob(MEDIA.manifest, Buffer.from(JSON.stringify(manifest)));
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA.index,
      manifests: [{ ...desc, annotations: { 'org.opencontainers.image.ref.name': ref } }],
    }));
    return desc;
  }
}

/** The manifest and config of the single image in the layout at `dir` (for checks and reports). */
export function readImage(dir) {
  const blob = (d) => readFileSync(join(dir, 'blobs', 'sha256', d.digest.slice(7)));
  const [desc] = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests;
  const manifest = JSON.parse(blob(desc));
  return { desc, manifest, config: JSON.parse(blob(manifest.config)), blob };
}
