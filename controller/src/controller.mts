/**
 * The reconcile loop. Level-triggered: any event (or the periodic resync) schedules one pass that
 * re-reads every cache, renders the whole desired state with the pure render(), and applies only the
 * difference: server-side apply of objects whose spec, labels or owners differ, deletion of owned
 * objects nothing renders any more, and MetaRouter status conditions that changed. A pass that finds
 * nothing to do logs nothing.
 *
 * Fail static: when a MetaRouter becomes invalid, its Accepted condition says why and the objects of
 * its last accepted spec stay in place (traffic keeps flowing as before) until it is fixed or deleted.
 *
 * Informers stop on any watch or list error (API server restart, CRD not installed yet); each one is
 * restarted with backoff, and the loop does not act until every cache has synced once.
 */
import { startRdsServer, type RdsServer } from './rds-server.mjs';
import http from 'node:http';
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import { ApiError, Kube, RESOURCES, resourcePath, type Kind } from './kube.mjs';
import { log } from './log.mjs';
import {
  API_VERSION, MANAGED_BY, MANAGED_BY_LABEL, OWNER_ANNOTATION,
  type Condition, type KubeObject, type MetaRouter, type RenderOptions,
} from './model.mjs';
import { render, routerKey } from './render.mjs';
import { fetchSyncz, programmedCondition, type ProxySync } from './status.mjs';

export interface ControllerOptions {
  readonly render: RenderOptions;
  /** Full resync period in ms (a reconcile pass even without events). Default 5 minutes. */
  readonly resyncMs: number;
  /** Port of /healthz and /readyz; 0 picks a free port; undefined: no server. */
  readonly healthPort?: number;
  readonly healthAddress?: string;
  /**
   * Port of the route discovery service (REST RDS) that per-request MetaRouters' sidecars poll
   * (their bootstrap's meltemi-rds cluster); 0 picks a free port; undefined: none.
   */
  readonly rdsPort?: number;
  readonly rdsAddress?: string;
  /**
   * istiod's HTTP debug address (http://istiod.istio-system:15014), or several separated by commas
   * (one per istiod replica): when set, Programmed also says whether the proxies took the config
   * (status.mts), checked every `istiodPollMs` (default 5 s).
   */
  readonly istiodUrl?: string;
  readonly istiodPollMs?: number;
  /** A bearer token file for istiod's debug endpoints (status.mts fetchSyncz). */
  readonly istiodTokenFile?: string;
}

type Cache = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

const IN_FLIGHT_MS = 5000;
const OWNED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
const WATCHED: readonly Kind[] = ['Service', 'ServiceEntry', 'DestinationRule', 'ApplicationProtocol', 'MetaRouter', 'WasmPlugin', 'EnvoyFilter'];

/** JSON with sorted keys: equal objects give equal strings whatever the key order the server chose. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const subsetOf = (want: Readonly<Record<string, string>> | undefined, have: Readonly<Record<string, string>> | undefined) =>
  Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);

/** Whether the live object already is what render wants (fields the server adds are ignored). */
export function upToDate(want: KubeObject, have: KubeObject | undefined): boolean {
  if (!have) return false;
  return canonical(want.spec) === canonical(have.spec)
    && subsetOf(want.metadata.labels, have.metadata.labels)
    && subsetOf(want.metadata.annotations, have.metadata.annotations)
    && (want.metadata.ownerReferences ?? []).every((o) => have.metadata.ownerReferences?.some((h) => h.uid === o.uid && h.controller === o.controller));
}

const sameCondition = (a: Condition, b: Partial<Condition> | undefined) =>
  !!b && a.status === b.status && a.reason === b.reason && a.message === b.message && a.observedGeneration === b.observedGeneration;

export class Controller {
  private readonly kube: Kube;
  private readonly caches = new Map<Kind, Cache>();
  private readonly synced = new Set<Kind>();
  private readonly backoff = new Map<Kind, number>();
  private readonly lastError = new Map<Kind, string>();
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private lastSynczError: string | undefined;
  private running = false;
  private dirty = false;
  private stopped = false;
  private failures = 0;
  private health: http.Server | undefined;
  /** Our last write per object: what we wrote and the version the cache showed before it. */
  private readonly written = new Map<string, { want: string; staleVersion: string | undefined; at: number }>();
  /** Completed reconcile passes (served on /statusz, so tests can wait for a pass instead of sleeping). */
  passes = 0;

  private rds: RdsServer | undefined;

  constructor(private readonly kc: KubeConfig, private readonly opts: ControllerOptions) {
    this.kube = new Kube(kc);
  }

  get ready(): boolean { return this.synced.size === WATCHED.length; }
  get healthAddress(): { address: string; port: number } | undefined {
    const a = this.health?.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  /** Where the RDS server listens, once started. */
  get rdsPort(): number | undefined { return this.rds?.port; }

  async start(): Promise<void> {
    if (this.opts.healthPort !== undefined) await this.startHealth(this.opts.healthPort, this.opts.healthAddress ?? '0.0.0.0');
    if (this.opts.rdsPort !== undefined) this.rds = await startRdsServer({ port: this.opts.rdsPort, host: this.opts.rdsAddress ?? '0.0.0.0' });
    for (const kind of WATCHED) this.startInformer(kind);
    this.resyncTimer = setInterval(() => this.schedule(0), this.opts.resyncMs);
    if (this.opts.istiodUrl) this.pollTimer = setInterval(() => this.schedule(0), this.opts.istiodPollMs ?? 5000);
    log('info', 'controller started', { resyncMs: this.opts.resyncMs, moduleUrl: this.opts.render.moduleUrl, configNamespace: this.opts.render.configNamespace || '(MetaRouter namespace)' });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.resyncTimer);
    clearInterval(this.pollTimer);
    await Promise.all([...this.caches.values()].map((c) => c.stop().catch(() => undefined)));
    await new Promise<void>((r) => (this.health ? this.health.close(() => r()) : r()));
    await this.rds?.close();
  }

  /**
   * Lists and watches one kind. On any list or watch error (API server restart, CRD not installed yet)
   * the kind counts as unsynced, so no pass acts on a stale or half-filled cache, and a fresh informer
   * relists after a backoff. (client-node's start() resolves even when its list fails; failures only
   * arrive as 'error' events, and a restarted ListWatch would resume a watch without relisting.)
   */
  private startInformer(kind: Kind): void {
    if (this.stopped) return;
    const r = RESOURCES[kind];
    const selector = kind === 'WasmPlugin' || kind === 'EnvoyFilter' ? OWNED_SELECTOR : undefined;
    let informer: Cache;
    informer = makeInformer<KubernetesObject>(this.kc, resourcePath(r), async () => {
      const list = await this.kube.list(r, selector);
      if (this.caches.get(kind) === informer) this.listed(kind);
      return { ...list, apiVersion: 'v1', kind: 'List', items: list.items as KubernetesObject[] } as never;
    }, selector) as Cache;
    const changed = (obj: KubernetesObject) => {
      // Any event for an object we wrote means the cache has moved past the version we overwrote.
      this.written.delete(`${kind}/${obj.metadata?.namespace}/${obj.metadata?.name}`);
      this.schedule(100);
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => {
      if (this.stopped || this.caches.get(kind) !== informer) return;
      this.synced.delete(kind);
      void informer.stop().catch(() => undefined);
      const wait = Math.min((this.backoff.get(kind) ?? 250) * 2, 30000);
      this.backoff.set(kind, wait);
      const message = err instanceof Error ? err.message : String((err as { message?: string })?.message ?? err);
      // Quiet: the same error repeating (API server down for a while) is logged once.
      if (this.lastError.get(kind) !== message) log('warn', 'watch failed, restarting', { kind, error: message, retryInMs: wait });
      this.lastError.set(kind, message);
      setTimeout(() => this.startInformer(kind), wait).unref();
    });
    this.caches.set(kind, informer);
    informer.start().catch((e: unknown) => informer.stop().then(() => {
      log('warn', 'watch start failed', { kind, error: (e as Error).message });
      setTimeout(() => this.startInformer(kind), 5000).unref();
    }));
  }

  /** A list succeeded: the kind's cache is (again) in sync. */
  private listed(kind: Kind): void {
    if (this.lastError.has(kind)) log('info', 'watch resumed', { kind });
    this.lastError.delete(kind);
    this.backoff.delete(kind);
    this.synced.add(kind);
    this.schedule(0);
  }

  /**
   * Whether the cache still shows the version this controller just overwrote with the same content:
   * the watch event of our own write has not arrived yet, so writing again would only repeat it (and
   * log it twice). The memo is dropped on the object's next watch event, or after IN_FLIGHT_MS.
   */
  private inFlight(key: string, want: string, version: string | undefined): boolean {
    const w = this.written.get(key);
    if (!w) return false;
    if (Date.now() - w.at > IN_FLIGHT_MS) { this.written.delete(key); return false; }
    return w.want === want && w.staleVersion === version;
  }

  /** Asks for a pass in `delayMs` (coalescing: one pending timer, one pass at a time). */
  schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.running) { this.dirty = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.pass(); }, delayMs);
  }

  private items<T extends KubeObject>(kind: Kind): T[] {
    return (this.caches.get(kind)?.list() ?? []) as unknown as T[];
  }

  private async pass(): Promise<void> {
    if (!this.ready || this.stopped) return;
    this.running = true;
    this.dirty = false;
    let ok = true;
    try {
      ok = await this.reconcile();
    } catch (e) {
      ok = false;
      log('error', 'reconcile failed', { error: (e as Error).message });
    } finally {
      this.running = false;
      this.passes++;
    }
    if (ok) { this.failures = 0; if (this.dirty) this.schedule(0); return; }
    this.failures++;
    this.schedule(Math.min(1000 * 2 ** (this.failures - 1), 60000));
  }

  /** One level-triggered pass. Returns false when something should be retried. */
  async reconcile(): Promise<boolean> {
    const routers = this.items<MetaRouter>('MetaRouter');
    const out = render({ services: this.items('Service'), serviceEntries: this.items('ServiceEntry'), destinationRules: this.items('DestinationRule'), protocols: this.items('ApplicationProtocol'), routers }, this.opts.render);
    // Route tables first: a new per-request EnvoyFilter's connection manager asks for its table at once.
    this.rds?.replace(out.routes);
    const live = new Map<string, KubeObject>();
    for (const kind of ['WasmPlugin', 'EnvoyFilter'] as const) {
      for (const o of this.items(kind)) live.set(`${kind}/${o.metadata.namespace}/${o.metadata.name}`, o);
    }
    let ok = true;
    const applyErrors = new Map<string, string>();   // router key -> first error
    const desired = new Set<string>();
    for (const want of out.resources) {
      const key = `${want.kind}/${want.metadata.namespace}/${want.metadata.name}`;
      desired.add(key);
      const have = live.get(key);
      if (upToDate(want, have) || this.inFlight(key, canonical(want), have?.metadata.resourceVersion)) continue;
      const owner = want.metadata.annotations?.[OWNER_ANNOTATION] ?? '';
      try {
        await this.kube.apply(RESOURCES[want.kind as Kind], want);
        this.written.set(key, { want: canonical(want), staleVersion: have?.metadata.resourceVersion, at: Date.now() });
        log('info', live.has(key) ? 'updated' : 'created', { kind: want.kind, namespace: want.metadata.namespace, name: want.metadata.name, metarouter: owner });
      } catch (e) {
        ok = false;
        const message = (e as Error).message;
        if (!applyErrors.has(owner)) applyErrors.set(owner, message);
        log('error', 'apply failed', { kind: want.kind, namespace: want.metadata.namespace, name: want.metadata.name, metarouter: owner, error: message });
      }
    }
    const kept = new Map<string, number>();
    for (const [key, have] of live) {
      if (desired.has(key)) continue;
      const owner = have.metadata.annotations?.[OWNER_ANNOTATION] ?? '';
      if (out.conditions.get(owner)?.status === 'False') { kept.set(owner, (kept.get(owner) ?? 0) + 1); continue; }
      if (this.inFlight(key, 'deleted', have.metadata.resourceVersion)) continue;
      try {
        const gone = await this.kube.delete(RESOURCES[have.kind as Kind], have.metadata.namespace, have.metadata.name);
        this.written.set(key, { want: 'deleted', staleVersion: have.metadata.resourceVersion, at: Date.now() });
        if (gone) log('info', 'deleted', { kind: have.kind, namespace: have.metadata.namespace, name: have.metadata.name, metarouter: owner });
      } catch (e) {
        ok = false;
        log('error', 'delete failed', { kind: have.kind, namespace: have.metadata.namespace, name: have.metadata.name, error: (e as Error).message });
      }
    }
    const proxies = await this.proxies();
    for (const router of routers) {
      const key = routerKey(router);
      const acceptedCond = out.conditions.get(key);
      if (!acceptedCond) continue;
      const gen = router.metadata.generation !== undefined ? { observedGeneration: router.metadata.generation } : {};
      const programmed: Condition = acceptedCond.status === 'False'
        ? { type: 'Programmed', status: 'False', reason: 'NotAccepted', message: kept.has(key) ? `kept ${kept.get(key)} objects of the last accepted spec` : 'nothing programmed', ...gen }
        : applyErrors.has(key)
          ? { type: 'Programmed', status: 'False', reason: 'ApplyFailed', message: applyErrors.get(key)!, ...gen }
          : { ...this.proxyCondition(key, out.resources, proxies), ...gen };
      ok = (await this.writeStatus(router, [acceptedCond, programmed])) && ok;
    }
    return ok;
  }

  /** istiod's syncz, when configured: the proxies' ACKs and NACKs; a string says why it is unknown. */
  private async proxies(): Promise<readonly ProxySync[] | string | undefined> {
    if (!this.opts.istiodUrl) return undefined;
    try {
      // Each istiod replica knows only the proxies connected to it: ask every one listed.
      const lists = await Promise.all(this.opts.istiodUrl.split(',').map((u) => fetchSyncz(u.trim(), this.opts.istiodTokenFile)));
      const list = lists.flat();
      if (this.lastSynczError) log('info', 'istiod reachable again', { istiodUrl: this.opts.istiodUrl });
      this.lastSynczError = undefined;
      return list;
    } catch (e) {
      const message = (e as Error).message;
      if (this.lastSynczError !== message) log('warn', 'cannot read proxy status from istiod', { error: message });
      this.lastSynczError = message;
      return message;
    }
  }

  /** Programmed for an accepted, applied MetaRouter: from the proxies when istiod is configured. */
  private proxyCondition(key: string, resources: readonly KubeObject[], proxies: readonly ProxySync[] | string | undefined): Omit<Condition, 'observedGeneration'> {
    if (proxies === undefined) return { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'WasmPlugin and EnvoyFilter are applied' };
    if (typeof proxies === 'string') return { type: 'Programmed', status: 'Unknown', reason: 'IstiodUnreachable', message: `WasmPlugin and EnvoyFilter are applied; proxy status unknown: ${proxies}` };
    const plugins = resources.filter((r) => r.kind === 'WasmPlugin' && r.metadata.annotations?.[OWNER_ANNOTATION] === key)
      .map((r) => ({ namespace: r.metadata.namespace!, name: r.metadata.name }));
    return programmedCondition(plugins, proxies);
  }

  /** Server-side applies the conditions that changed; keeps lastTransitionTime while a status holds. */
  private async writeStatus(router: MetaRouter, conds: readonly Condition[]): Promise<boolean> {
    const current = ((router.status as { conditions?: (Condition & { lastTransitionTime?: string })[] } | undefined)?.conditions) ?? [];
    if (conds.every((c) => sameCondition(c, current.find((x) => x.type === c.type)))) return true;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const conditions = conds.map((c) => {
      const prev = current.find((x) => x.type === c.type);
      return { ...c, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now };
    });
    try {
      await this.kube.apply(RESOURCES.MetaRouter, {
        apiVersion: API_VERSION, kind: 'MetaRouter',
        metadata: { name: router.metadata.name, namespace: router.metadata.namespace },
        status: { conditions },
      }, 'status');
      const a = conds[0]!;
      log(a.status === 'True' ? 'info' : 'warn', 'metarouter status', { metarouter: routerKey(router), accepted: a.status, reason: a.reason, message: a.message, programmed: conds[1]?.status });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return true;   // deleted meanwhile
      log('error', 'status update failed', { metarouter: routerKey(router), error: (e as Error).message });
      return false;
    }
  }

  private startHealth(port: number, address: string): Promise<void> {
    this.health = http.createServer((req, res) => {
      if (req.url === '/statusz') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ready: this.ready, passes: this.passes, synced: [...this.synced] }));
        return;
      }
      const ok = req.url === '/healthz' || (req.url === '/readyz' && this.ready);
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not synced\n');
    });
    return new Promise((resolve) => this.health!.listen(port, address, resolve));
  }
}
