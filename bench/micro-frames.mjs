// Frames for bench/micro.mjs: Thrift built as Apache Thrift writes them (framed, binary), Dubbo
// from the frames captured off the real Apache Dubbo 3.3.5 peers (test/fixtures/dubbo/), with the
// request id patched per call.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { thriftCall } from '../test/e2e/lib/faults.mjs';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/dubbo');
const hex = (name) => Buffer.from(readFileSync(path.join(FIXTURES, name), 'utf8').replace(/\s+/g, ''), 'hex');

export const encodeThriftCall = (method, seqid, arg) => thriftCall(method, arg, seqid);

/** A framed binary REPLY to `method` whose result is field 0, a string. */
export function encodeThriftReply(method, seqid, value) {
  const m = Buffer.from(method);
  const v = Buffer.from(value);
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
  const body = Buffer.concat([Buffer.from([0x80, 0x01, 0x00, 0x02]), u32(m.length), m, u32(seqid), Buffer.from([0x0b, 0x00, 0x00]), u32(v.length), v, Buffer.from([0x00])]);
  return Buffer.concat([u32(body.length), body]);
}

const withId = (frame, id) => { const f = Buffer.from(frame); f.writeBigUInt64BE(BigInt(id), 4); return f; };
let dubboRequest; let dubboResponse;

/** The captured sayHello("alice") call with attachments, as request `id` (--payload does not apply). */
export function encodeDubboRequest(id) {
  dubboRequest ??= hex('request-attachments.hex');
  return withId(dubboRequest, id);
}

/** The captured reply to it, for request `id`. */
export function encodeDubboResponse(id) {
  dubboResponse ??= hex('response-value.hex');
  return withId(dubboResponse, id);
}

/** One HTTP/2 frame (RFC 9113 section 4.1), as HCM writes them to the client role. */
export function h2frame(type, flags, stream, payload) {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}
