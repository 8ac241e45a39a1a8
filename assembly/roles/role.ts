// What the filter does with one connection, chosen once per connection from the plugin config
// (`mode`, `role`): route the whole connection by its first request (per-connection), or, in
// per-request mode, translate each call to an HTTP/2 stream for Envoy's router (client role) and
// back from the router's HTTP/1.1 request to the server's protocol (server role).
// The exported callbacks and the root's timers talk to a connection only through this class.
import { FilterStatus } from "../host/abi";

/** Timed work a role asks its plugin root for (PluginRoot.schedule); one pending entry per kind. */
export const enum TimerKind {
  /** Close the client connection (closing inside a data callback would lose its bytes). */
  Close = 0,
  /** Release a read held by an injected delay. */
  Resume = 1,
  /** Check the oldest in-flight request against the route's timeout. */
  Timeout = 2,
  /** Write bytes that could not be written inside a data callback (flow control, replies). */
  Flush = 3,
  /** Close a connection whose first request has not come within firstRequestTimeoutMs. */
  FirstRequest = 4,
}

export abstract class Role {
  constructor(public readonly id: u32) {}

  abstract onNewConnection(): FilterStatus;
  /** Client-to-server bytes (`size` in the host buffer). */
  abstract onDownstreamData(size: i32, end: bool): FilterStatus;
  /** Server-to-client bytes; the write path cannot pause, so this always continues. */
  abstract onUpstreamData(size: i32, end: bool): FilterStatus;
  /**
   * The client connection closed (either side closing it). Called before onDelete, while the
   * connection's stream info (response flags, addresses) can still be read.
   */
  onClose(): void {}
  abstract onDelete(): void;
  /** A timer of `kind` other than Close is due; the host's effective context is this connection. */
  abstract onTimer(kind: TimerKind, now: u64): void;
}
