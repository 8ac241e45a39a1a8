// The Aeraki migration table of docs/controller.md against render: a fixture that uses every Aeraki
// MetaRouter and ApplicationProtocol field (test/controller/fixtures/aeraki-all-fields.yaml) is
// rendered, and each field must get what the table says: supported (programmed, no warning),
// ignored (a warning covering it) or refused (an error naming it). The table and the fixture must
// list the same fields, so neither can drift from the other or from the controller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, FIXTURES, render, readObjects, toRenderInput, DEFAULT_OPTIONS } from './helpers.mjs';

const ROUTER = 'meta-dubbo/test-metaprotocol-dubbo-route';
const FIXTURE = join(FIXTURES, 'aeraki-all-fields.yaml');
const ANY = '<any other name>';

/** The rows between the aeraki-fields markers: { resource, field, status, notes }. */
function table() {
  const doc = readFileSync(join(ROOT, 'docs/controller.md'), 'utf8');
  const start = doc.indexOf('<!-- aeraki-fields');
  const end = doc.indexOf('<!-- /aeraki-fields -->');
  assert.ok(start > 0 && end > start, 'docs/controller.md has the aeraki-fields table');
  const rows = doc.slice(start, end).split('\n').filter((l) => l.startsWith('| ')).slice(1)
    .filter((l) => !/^\|[-| ]+\|$/.test(l))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
    .map(([resource, field, status, notes]) => ({ resource, field: field.replace(/^`|`$/g, ''), status, notes }));
  for (const r of rows) assert.ok(['supported', 'ignored', 'refused'].includes(r.status), `${r.resource} ${r.field}: status "${r.status}"`);
  return rows;
}

/** Concrete leaf paths of an object: "spec.routes[0].match.attributes.method.exact", ... */
function leaves(v, path, out = []) {
  if (Array.isArray(v) && v.length > 0) v.forEach((x, i) => leaves(x, `${path}[${i}]`, out));
  else if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) for (const [k, x] of Object.entries(v)) leaves(x, `${path}.${k}`, out);
  else out.push(path);
  return out;
}

/** Whether a table field ("spec.routes[].match.attributes.<key>.exact") is, or is a parent of, a concrete path. */
function covers(field, path) {
  const re = field.split(/(\[\]|<key>)/).map((p) => p === '[]' ? '\\[\\d+\\]' : p === '<key>' ? '[^.\\[]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('');
  return new RegExp(`^${re}(?=$|[.[])`).test(path);
}
const under = (parent, path) => path === parent || path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);

const objects = () => readObjects([FIXTURE]);
const fixtureLeaves = (objs) => ({
  MetaRouter: leaves(objs.find((o) => o.kind === 'MetaRouter').spec, 'spec'),
  ApplicationProtocol: leaves(objs.find((o) => o.kind === 'ApplicationProtocol').spec, 'spec'),
});

test('the migration table and the all-fields fixture list the same Aeraki fields', () => {
  const rows = table().filter((r) => !r.field.includes(ANY));
  const got = fixtureLeaves(objects());
  for (const [resource, paths] of Object.entries(got)) {
    for (const p of paths) assert.ok(rows.some((r) => r.resource === resource && covers(r.field, p)), `${resource} ${p} is in the fixture but not in docs/controller.md's table`);
  }
  for (const r of rows) assert.ok((got[r.resource] ?? []).some((p) => covers(r.field, p)), `${r.resource} ${r.field} is in the table but the fixture does not use it`);
  assert.ok(rows.length >= 30, `${rows.length} rows`);
});

test('every Aeraki field gets what the table says: supported without a word, ignored with a warning', () => {
  const rows = table().filter((r) => !r.field.includes(ANY));
  const objs = objects();
  const out = render(toRenderInput(objs), DEFAULT_OPTIONS);
  const c = out.conditions.get(ROUTER);
  assert.equal(c.status, 'True', `the all-fields MetaRouter is accepted: ${c.message}`);
  const warnings = out.warnings.get(ROUTER) ?? [];
  const warned = warnings.map((w) => w.slice(0, w.indexOf(': ')));
  for (const [resource, paths] of Object.entries(fixtureLeaves(objs))) {
    for (const p of paths) {
      const row = rows.find((r) => r.resource === resource && covers(r.field, p));
      const by = warned.filter((w) => under(w, p));
      if (row.status === 'ignored') assert.equal(by.length, 1, `${p} (${row.field}) is "ignored" in the table: one warning must cover it; warnings: ${warnings.join(' | ')}`);
      else assert.deepEqual(by, [], `${p} (${row.field}) is "${row.status}" in the table but is warned about`);
    }
  }
  // Every warning is for a field the table calls ignored, and each says so in the condition too.
  for (const [i, w] of warned.entries()) {
    const ps = fixtureLeaves(objs).MetaRouter.filter((p) => under(w, p));
    assert.ok(ps.length > 0 && ps.every((p) => rows.find((r) => r.resource === 'MetaRouter' && covers(r.field, p))?.status === 'ignored'), `warning ${warnings[i]}`);
    assert.ok(c.message.includes(warnings[i]));
  }
  // "supported" means programmed: the plugin config carries each supported route field.
  const [wasm] = out.resources;
  const route = wasm.spec.pluginConfig.routes[0];
  assert.deepEqual(route.match.attributes, { interface: { exact: 'org.apache.dubbo.samples.basic.api.DemoService' }, method: { prefix: 'say' }, version: { regex: '1\\.[0-9]+' } });
  assert.deepEqual(route.route, [
    { cluster: 'outbound|20880|v1|dubbo-sample-provider.meta-dubbo.svc.cluster.local', weight: 20 },
    { cluster: 'outbound|20880|v2|dubbo-sample-provider.meta-dubbo.svc.cluster.local', weight: 80 },
  ]);
  assert.equal(route.name, 'v1');
  assert.equal(route.timeoutMs, 3000);
  assert.deepEqual(route.requestMutation, [{ key: 'foo', value: 'bar' }]);
  assert.deepEqual(route.responseMutation, [{ key: 'served-by', value: 'v1' }]);
  assert.equal(wasm.spec.pluginConfig.codec, 'dubbo');
  assert.equal(wasm.spec.match[0].ports[0].number, 20880);
  assert.deepEqual(Object.keys(route).sort(), ['match', 'name', 'requestMutation', 'responseMutation', 'route', 'timeoutMs'], 'ignored fields are not programmed');
});

test('fields the table says are refused are refused, with their path in the error', () => {
  const refused = table().filter((r) => r.status === 'refused');
  assert.ok(refused.length >= 3);
  for (const r of refused) {
    assert.ok(r.field.endsWith(`.${ANY}`), `${r.field}: a refused row is an "any other name" row (no Aeraki field is refused by name)`);
    const objs = objects();
    const where = r.field.slice(0, -`.${ANY}`.length);
    const target = objs.find((o) => o.kind === r.resource);
    const parent = where === 'spec' ? target.spec : where === 'spec.routes[]' ? target.spec.routes[0] : assert.fail(`no injection point for ${r.field}`);
    parent.bogusFiled = 1;
    const c = render(toRenderInput(objs), DEFAULT_OPTIONS).conditions.get(ROUTER);
    const concrete = where.replace('[]', '[0]');
    assert.equal(c.status, 'False', `${r.field}`);
    const prefix = r.resource === 'ApplicationProtocol' ? `ApplicationProtocol ${target.metadata.name}: ` : '';
    assert.ok(c.message.split('; ').includes(`${prefix}${concrete}.bogusFiled: unknown field`), `${r.field}: ${c.message}`);
  }
});
