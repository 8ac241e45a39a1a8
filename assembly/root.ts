// The plugin's root context: parses the config once per (re)configure, owns what connections
// share (route table, stats, random source), and runs deferred work from the timer tick.
import * as abi from "./host/abi";
import { parseConfig, FilterConfig } from "./route/config";
import { Stats } from "./stats";
import { Xorshift32 } from "./route/pick";

/** Name of the pseudo-route that counts connections sent to defaultCluster. */
export const DEFAULT_ROUTE_NAME = "_default";
const TICK_MS: u32 = 10;

export class PluginRoot {
  config: FilterConfig | null = null;
  stats: Stats | null = null;
  rng: Xorshift32;
  /** Stream contexts to close from a tick, and when (host clock, ns). */
  private closeIds: u32[] = [];
  private closeDue: u64[] = [];
  private ticking: bool = false;

  constructor(public id: u32) {
    this.rng = new Xorshift32(<u32>abi.nowNanos() ^ (id * 0x9e3779b9));
  }

  /** Parses and installs the plugin config; false (config rejected) with a log line naming the field. */
  configure(bytes: Uint8Array): bool {
    const parsed = parseConfig(bytes);
    const cfg = parsed.config;
    if (cfg == null) {
      abi.log(abi.LogLevel.Error, "meltemi: invalid plugin configuration: " + parsed.error);
      return false;
    }
    const names: string[] = [];
    const routes = cfg.table.routes;
    for (let i = 0; i < routes.length; i++) names.push(routes[i].name);
    names.push(DEFAULT_ROUTE_NAME);
    this.config = cfg;
    this.stats = new Stats(cfg.statPrefix, names);
    abi.log(abi.LogLevel.Info, "meltemi: configured codec " + (<string>(cfg.codec!.name())) + " with " + routes.length.toString() + " routes");
    return true;
  }

  /**
   * Closes the client connection of `contextId` from a tick, `delayMs` from now at the earliest.
   * Closing inside a data callback would drop the bytes that callback is forwarding.
   */
  closeLater(contextId: u32, delayMs: u32 = 0): void {
    const due = abi.nowNanos() + <u64>delayMs * 1000000;
    const i = this.closeIds.indexOf(contextId);
    if (i >= 0) {
      if (due < this.closeDue[i]) this.closeDue[i] = due;
    } else {
      this.closeIds.push(contextId);
      this.closeDue.push(due);
    }
    if (!this.ticking) {
      this.ticking = true;
      abi.setTickPeriod(TICK_MS);
    }
  }

  /** Removes a connection that went away from deferred work. */
  forget(contextId: u32): void {
    const i = this.closeIds.indexOf(contextId);
    if (i >= 0) {
      this.closeIds.splice(i, 1);
      this.closeDue.splice(i, 1);
    }
  }

  onTick(): void {
    const now = abi.nowNanos();
    for (let i = this.closeIds.length - 1; i >= 0; i--) {
      if (this.closeDue[i] > now) continue;
      const id = this.closeIds[i];
      this.closeIds.splice(i, 1);
      this.closeDue.splice(i, 1);
      if (abi.setEffectiveContext(id)) abi.closeDownstream();
    }
    if (this.closeIds.length == 0) {
      this.ticking = false;
      abi.setTickPeriod(0);
    }
  }
}
