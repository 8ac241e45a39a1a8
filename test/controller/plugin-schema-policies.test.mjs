// schema/plugin-config.schema.json against the filter's own config reader on the route policy
// fields (fault, localRateLimit, authorization, timeoutMs): every route below that the filter
// accepts the schema accepts, and every one the filter rejects (test/unit/policy/parse.spec.ts
// asserts its message) the schema rejects too, so the controller catches it before Envoy does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';

const schema = JSON.parse(readFileSync(new URL('../../schema/plugin-config.schema.json', import.meta.url), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
const config = (fields) => ({ codec: 'thrift', routes: [{ name: 'r', route: [{ cluster: 'c' }], ...fields }] });

const accepted = [
  { fault: { abort: {} } },
  { fault: { abort: { percentage: 0.0001, message: 'no' }, delay: { percentage: 20, fixedDelayMs: 30 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 5, tokensPerFill: 2, fillIntervalMs: 1000 } } },
  { localRateLimit: { conditions: [{ match: { attributes: { method: { exact: 'sayHello' } } }, tokenBucket: { maxTokens: 1, fillIntervalMs: 60000 } }] } },
  { authorization: {} },
  {
    authorization: {
      defaultAction: 'DENY',
      rules: [
        { name: 'lo', action: 'ALLOW', match: { attributes: { method: { prefix: 'say' } } }, sources: ['127.0.0.0/8', '::1', '2001:db8::/32', '::ffff:a00:0/104'], principals: ['spiffe://a'] },
        { action: 'DENY' },
      ],
    },
  },
  { timeoutMs: 0 },
  { timeoutMs: 86400000 },
];

const rejected = [
  { fault: 1 },
  { fault: {} },
  { fault: { abort: {}, kill: {} } },
  { fault: { abort: { percent: 50 } } },
  { fault: { abort: { percentage: 101 } } },
  { fault: { abort: { percentage: -0.5 } } },
  { fault: { abort: { percentage: '50' } } },
  { fault: { abort: { message: 7 } } },
  { fault: { delay: { percentage: 50 } } },
  { fault: { delay: { fixedDelayMs: 0 } } },
  { fault: { delay: { fixedDelayMs: 1.5 } } },
  { localRateLimit: {} },
  { localRateLimit: { conditions: [] } },
  { localRateLimit: { conditions: {} } },
  { localRateLimit: { tokenBucket: { fillIntervalMs: 1000 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 5 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 0, fillIntervalMs: 1000 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 5, tokensPerFill: 0, fillIntervalMs: 1000 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 5, fillIntervalMs: 0 } } },
  { localRateLimit: { tokenBucket: { maxTokens: 5, fillIntervalMs: 1000, burst: 3 } } },
  { localRateLimit: { conditions: [{ match: { attributes: { method: { exact: 'a' } } } }] } },
  { localRateLimit: { conditions: [{ tokenBucket: { maxTokens: 1, fillIntervalMs: 1 }, match: { attributes: { method: { exakt: 'a' } } } }] } },
  { authorization: { defaultAction: 'deny' } },
  { authorization: { rules: [{ match: {} }] } },
  { authorization: { rules: [{ action: 'REJECT' }] } },
  { authorization: { rules: [{ action: 'ALLOW', users: [] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: ['10.0.0.0/33'] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: ['10.0.0.1:80'] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: ['[::1]:80'] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: ['::/129'] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: ['1::2::3'] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: [10] }] } },
  { authorization: { rules: [{ action: 'ALLOW', sources: '10.0.0.0/8' }] } },
  { authorization: { rules: [{ action: 'ALLOW', principals: [1] }] } },
  { authorization: { rules: [{ action: 'ALLOW', name: 3 }] } },
  { timeoutMs: -1 },
  { timeoutMs: 86400001 },
  { timeoutMs: '5s' },
  { timeoutMs: 1.5 },
];

test('the schema accepts the policy fields the filter accepts', () => {
  for (const fields of accepted) {
    assert.ok(validate(config(fields)), `${JSON.stringify(fields)}: ${JSON.stringify(validate.errors)}`);
  }
});

test('the schema rejects the policy fields the filter rejects', () => {
  for (const fields of rejected) assert.equal(validate(config(fields)), false, JSON.stringify(fields));
});
