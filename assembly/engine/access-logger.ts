// One connection's access lines (engine/access-log.ts writes them; this takes the facts the
// connection knows and hands the line to Envoy's log). Only used with the access log on.
import * as abi from "../host/abi";
import { CodecFactory } from "../core/codec";
import { Metadata } from "../core/metadata";
import { ByteWriter } from "../core/bytes";
import { AccessEntry, writeRequestPart } from "./access-log";

/** Where access lines are built: one VM runs one callback at a time, so one writer serves every connection. */
const LINE = new ByteWriter(1024);
const ENTRY = new AccessEntry();

export class AccessLogger {
  /** The client's `ip:port`: fetched on the first line; a role may preset it (server role). */
  clientAddress: string | null = null;

  constructor(private readonly label: string, private readonly factory: CodecFactory) {}

  /** The request's half of its line, kept until the answer (responses of some protocols, Dubbo's, do not repeat the metadata). */
  note(meta: Metadata, requestBytes: i32): Uint8Array {
    const w = LINE;
    w.clear();
    writeRequestPart(w, meta, this.factory.serviceKey(), this.factory.methodKey(), requestBytes);
    return w.toBytes();
  }

  /** Writes one line: the request's note, then how and when it was answered. */
  write(request: Uint8Array, route: string, cluster: string, startMs: i64, status: string, ms: u64, responseBytes: i32, reason: string | null): void {
    let address = this.clientAddress;
    if (address == null) {
      address = abi.getPropertyString(["source", "address"]);
      this.clientAddress = address != null ? address : "";
    }
    const e = ENTRY;
    e.conn = this.label;
    e.peer = this.clientAddress!;
    e.route = route;
    e.cluster = cluster;
    e.request = request;
    e.status = status;
    e.startMs = startMs;
    e.durationMs = ms;
    e.responseBytes = responseBytes;
    e.reason = reason;
    const w = LINE;
    w.clear();
    e.write(w);
    abi.logBytes(abi.LogLevel.Info, w.buf, w.len);
  }
}
