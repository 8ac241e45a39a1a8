// The plugin's root context: parses the config once per (re)configure, owns what connections
// share (route table, stats, random source, rate-limit buckets), and runs timed work.
//
// proxy-wasm has no per-stream timers, only a tick per root context. Timed work (a deferred
// close, the end of an injected delay, a request-timeout check) is a list of (connection, due,
// kind) entries; the tick runs while the list is not empty and stops when it is.
import * as abi from "./host/abi";
import { keysRead } from "./route/keys-read";
import { parseConfig, FilterConfig, DEFAULT_ROUTE_NAME } from "./route/config";
import { Stats } from "./stats";
import { Xorshift32 } from "./route/pick";
import { SharedBuckets } from "./policy/shared-bucket";
import { connection } from "./contexts";
import { TimerKind } from "./roles/role";
import { vmNumber } from "./engine/conn-label";

const TICK_MS: u32 = 5;

export class PluginRoot {
  config: FilterConfig | null = null;
  /** The metadata keys the config reads (route/keys-read.ts): a hint for the per-connection codecs. */
  keysRead: string[] | null = null;
  stats: Stats | null = null;
  rng: Xorshift32;
  buckets: SharedBuckets = new SharedBuckets();
  private timerIds: u32[] = [];
  private timerDue: u64[] = [];
  private timerKind: TimerKind[] = [];
  private ticking: bool = false;

  constructor(public id: u32) {
    this.rng = new Xorshift32(<u32>abi.nowNanos() ^ (id * 0x9e3779b9));
  }

  /** Parses and installs the plugin config; false (config rejected) with a log line naming the field. */
  configure(bytes: Uint8Array): bool {
    // Drawn here, not on a first log line: Envoy configures the main thread's VM before it starts
    // the workers', so that VM creates the shared counter (see engine/conn-label.ts).
    vmNumber();
    const parsed = parseConfig(bytes);
    const cfg = parsed.config;
    if (cfg == null) {
      abi.log(abi.LogLevel.Error, "meltemi: invalid plugin configuration: " + parsed.error);
      return false;
    }
    const routes = cfg.table.routes;
    this.config = cfg;
    this.keysRead = keysRead(cfg);
    const stats = new Stats(cfg.statPrefix, serviceLabel(cfg), routes, DEFAULT_ROUTE_NAME, cfg.defaultCluster);
    stats.serviceKey = cfg.codec!.serviceKey();
    stats.methodKey = cfg.codec!.methodKey();
    this.stats = stats;
    this.buckets.contendedMetric = stats.rateLimitContended;
    abi.log(abi.LogLevel.Info, "meltemi: configured codec " + cfg.codec!.name() + " with " + routes.length.toString() + " routes");
    return true;
  }

  /**
   * Runs `kind` for connection `contextId` from a tick, `delayMs` from now at the earliest. One
   * entry per (connection, kind): scheduling again keeps the earlier due time.
   */
  schedule(contextId: u32, delayMs: u32, kind: TimerKind): void {
    const due = abi.nowNanos() + <u64>delayMs * 1000000;
    for (let i = 0; i < this.timerIds.length; i++) {
      if (this.timerIds[i] == contextId && this.timerKind[i] == kind) {
        if (due < this.timerDue[i]) this.timerDue[i] = due;
        return;
      }
    }
    this.timerIds.push(contextId);
    this.timerDue.push(due);
    this.timerKind.push(kind);
    if (!this.ticking) {
      this.ticking = true;
      abi.setTickPeriod(TICK_MS);
    }
  }

  /** Shorthand: close the client connection of `contextId` from a tick. */
  closeLater(contextId: u32, delayMs: u32 = 0): void {
    this.schedule(contextId, delayMs, TimerKind.Close);
  }

  /** Drops the pending `kind` timer of a connection, if any. */
  cancel(contextId: u32, kind: TimerKind): void {
    for (let i = this.timerIds.length - 1; i >= 0; i--) {
      if (this.timerIds[i] == contextId && this.timerKind[i] == kind) {
        this.removeTimer(i);
        return;
      }
    }
  }

  /** Drops the timers of a connection that went away. */
  forget(contextId: u32): void {
    for (let i = this.timerIds.length - 1; i >= 0; i--) {
      if (this.timerIds[i] == contextId) this.removeTimer(i);
    }
  }

  onTick(): void {
    const now = abi.nowNanos();
    for (let i = this.timerIds.length - 1; i >= 0; i--) {
      if (i >= this.timerIds.length || this.timerDue[i] > now) continue;
      const id = this.timerIds[i];
      const kind = this.timerKind[i];
      this.removeTimer(i);
      if (!abi.setEffectiveContext(id)) continue;
      if (kind == TimerKind.Close) {
        abi.closeDownstream();
        continue;
      }
      const conn = connection(id);
      if (conn == null) continue;
      conn.onTimer(kind, now);
    }
    const stats = this.stats;
    if (stats != null) stats.flush(); // what timers counted (timeouts)
    if (this.timerIds.length == 0) {
      this.ticking = false;
      abi.setTickPeriod(0);
    }
  }

  private removeTimer(i: i32): void {
    this.timerIds.splice(i, 1);
    this.timerDue.splice(i, 1);
    this.timerKind.splice(i, 1);
  }
}

/** The config's service, else Envoy's name for this plugin (config.name), else "-". */
function serviceLabel(cfg: FilterConfig): string {
  if (cfg.service.length > 0) return cfg.service;
  const name = abi.getPropertyString(["plugin_name"]);
  return name != null && name.length > 0 ? name : "-";
}
