// The reconcile's diff: what counts as "already applied" (fields the API server adds do not).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, renderFiles } from './helpers.mjs';

const { upToDate } = await import(new URL('../../dist/controller/controller.mjs', import.meta.url).href);

const [want] = renderFiles([join(ROOT, 'examples')]).resources;
const live = (patch = {}) => ({
  ...structuredClone(want),
  metadata: { ...structuredClone(want.metadata), uid: 'u', resourceVersion: '7', generation: 1, managedFields: [{ manager: 'meltemi' }], labels: { ...want.metadata.labels, team: 'a' } },
  status: { validationMessages: [] },
  ...patch,
});

test('an object the server decorated (uid, managedFields, extra labels, status) is up to date', () => {
  assert.equal(upToDate(want, live()), true);
});

test('key order does not matter, values do', () => {
  const reordered = live({ spec: Object.fromEntries(Object.entries(want.spec).reverse()) });
  assert.equal(upToDate(want, reordered), true);
  assert.equal(upToDate(want, live({ spec: { ...want.spec, failStrategy: 'FAIL_OPEN' } })), false);
});

test('a missing object, a lost label or annotation is not up to date', () => {
  assert.equal(upToDate(want, undefined), false);
  const l = live();
  delete l.metadata.labels['app.kubernetes.io/managed-by'];
  assert.equal(upToDate(want, l), false);
  const a = live();
  a.metadata.annotations = {};
  assert.equal(upToDate(want, a), false);
});
