// The plugin's root context: parses the config once per (re)configure, owns what connections
// share (route table, stats, random source, rate-limit buckets), and runs timed work.
//
// proxy-wasm has no per-stream timers, only a tick per root context. Timed work (a deferred
// close, the end of an injected delay, a request-timeout check) is a list of (connection, due,
// kind) entries; the tick runs while the list is not empty or the stats hold counts (settleStats),
// and stops when neither is left.
import * as abi from "./host/abi";
import { keysRead } from "./route/keys-read";
import { parseConfig, FilterConfig, DEFAULT_ROUTE_NAME } from "./route/config";
import { Stats } from "./stats";
import { Xorshift32 } from "./route/pick";
import { SharedBuckets } from "./policy/shared-bucket";
import { connection } from "./contexts";
import { TimerKind } from "./roles/role";
import { vmNumber } from "./engine/conn-label";

/**
 * The tick: the granularity of timed work, and how late, at most, a count held in the VM while
 * requests are in flight (Stats.settle) reaches Envoy. Under load the tick then runs 200 times a
 * second per worker, against the two to six counter updates per read that holding saves.
 */
const TICK_MS: u32 = 5;

/** The plugin roots of this VM, by root context id (one per plugin config: a listener's filter, a role). */
export const roots = new Map<u32, PluginRoot>();
/** The values of `roots`, for walking them on every callback without building an array. */
export const rootList: PluginRoot[] = [];

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
  /** The tick period asked of the host (0: none). */
  private tickMs: u32 = 0;
  /** The stats held counts at the end of a callback since the last tick: keep ticking. */
  private statsTicking: bool = false;

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
    const old = this.stats;
    if (old != null) old.flush();
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
    this.retick();
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
    if (stats != null) {
      // A tick that finds nothing held since the last one stops ticking for the stats.
      if (!stats.holding) this.statsTicking = false;
      stats.flush();
    }
    this.retick();
  }

  /**
   * Called as each outermost host callback ends: the stats send what they hold unless requests
   * are in flight (Stats.settle); then the next tick sends it, within TICK_MS.
   */
  settleStats(): void {
    const stats = this.stats;
    if (stats == null || !stats.settle() || this.statsTicking) return;
    this.statsTicking = true;
    this.retick();
  }

  /** The stats' counts held, sent now (the root is going away). */
  flushStats(): void {
    const stats = this.stats;
    if (stats != null) stats.flush();
  }

  /** Asks the host for the tick the root needs now; a host call only when that changes. */
  private retick(): void {
    const ms = this.statsTicking || this.timerIds.length > 0 ? TICK_MS : 0;
    if (ms == this.tickMs) return;
    this.tickMs = ms;
    abi.setTickPeriod(ms);
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
