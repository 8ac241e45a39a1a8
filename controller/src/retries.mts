/**
 * A MetaRouter route's `retries` as the per-request plugin config's `retry`. Aeraki's MetaRouter has
 * no retry field; the shape is Istio VirtualService's HTTPRetry (attempts, perTryTimeout, retryOn)
 * plus Meltemi's `idempotent`:
 *
 *   MetaRouter route                                   plugin config route
 *   retries: {attempts: 3, perTryTimeout: "2s",        retry: {attempts: 3, perTryTimeoutMs: 2000,
 *             retryOn: "connect-failure,reset",               idempotent: true}
 *             idempotent: true}
 *
 * Envoy's router retries each call on another endpoint (per-request.mts routeAction). A Dubbo or
 * Thrift call is not known to be safe to run twice, so the route retries only failures that prove
 * the server never got the call (RETRY_UNSENT) unless the route says its calls may run twice
 * (`idempotent: true`); only then may `retryOn` name a condition after which the server may have
 * run it (RETRY_SENT). Per connection there is no call to retry: a whole connection goes to one
 * cluster, so `retries` needs spec.mode perRequest.
 */
import { durationMs } from './policies.mjs';
import { RETRY_SENT, RETRY_UNSENT, retryOn, type PerRequestRoute } from './per-request.mjs';

/** The filter's bound on attempts (assembly/route/per-request.ts MAX_RETRIES). */
const MAX_ATTEMPTS = 10;

type Retry = NonNullable<PerRequestRoute['retry']>;

/**
 * The plugin config's `retry` for `retries`, or undefined; problems go onto `errors` as
 * "<where>.retries...". The route retries on every condition of its kind (retryOn(idempotent) in
 * per-request.mts), so a `retryOn` naming fewer is accepted with a warning that says which others apply.
 */
export function compileRetries(retries: unknown, where: string, perRequest: boolean, errors: string[], warnings: string[]): Retry | undefined {
  if (retries === undefined) return undefined;
  const at = `${where}.retries`;
  if (!perRequest) {
    errors.push(`${at}: needs spec.mode perRequest (per connection, a whole connection goes to one cluster: there is no call to retry)`);
    return undefined;
  }
  if (typeof retries !== 'object' || retries === null || Array.isArray(retries)) {
    errors.push(`${at}: expected an object {attempts, perTryTimeout, retryOn, idempotent}, got ${JSON.stringify(retries)}`);
    return undefined;
  }
  const r = retries as { attempts?: unknown; perTryTimeout?: unknown; retryOn?: unknown; idempotent?: unknown };
  const out: { attempts?: number; perTryTimeoutMs?: number; idempotent?: boolean } = {};
  if (r.attempts !== undefined) {
    if (!Number.isInteger(r.attempts) || (r.attempts as number) < 1 || (r.attempts as number) > MAX_ATTEMPTS) {
      errors.push(`${at}.attempts: expected an integer in [1, ${MAX_ATTEMPTS}], got ${JSON.stringify(r.attempts)}`);
    } else out.attempts = r.attempts as number;
  }
  if (r.perTryTimeout !== undefined) {
    const ms = durationMs(r.perTryTimeout);
    if (ms === undefined || ms < 1) errors.push(`${at}.perTryTimeout: expected a duration such as "500ms", got ${JSON.stringify(r.perTryTimeout)}`);
    else out.perTryTimeoutMs = ms;
  }
  if (r.idempotent !== undefined && typeof r.idempotent !== 'boolean') {
    errors.push(`${at}.idempotent: expected true or false, got ${JSON.stringify(r.idempotent)}`);
  } else if (r.idempotent) out.idempotent = true;
  if (r.retryOn !== undefined) {
    const conditions = typeof r.retryOn === 'string' ? r.retryOn.split(',').map((c) => c.trim()) : [];
    const unknown = conditions.filter((c) => !RETRY_UNSENT.includes(c) && !RETRY_SENT.includes(c));
    if (typeof r.retryOn !== 'string' || conditions.some((c) => c === '') || unknown.length > 0) {
      errors.push(`${at}.retryOn: expected a comma-separated list of ${[...RETRY_UNSENT, ...RETRY_SENT].join(', ')}, got ${JSON.stringify(r.retryOn)}`);
    } else {
      const sent = conditions.filter((c) => RETRY_SENT.includes(c));
      if (sent.length > 0 && !out.idempotent) {
        errors.push(`${at}.retryOn: ${sent.join(', ')} may run a call the server already got a second time; set retries.idempotent: true if this route's calls are safe to repeat`);
      } else {
        const also = retryOn(out.idempotent ?? false).split(',').filter((c) => !conditions.includes(c));
        if (also.length > 0) warnings.push(`${at}.retryOn: the route also retries on ${also.join(', ')} (${out.idempotent ? 'an idempotent' : 'a'} route retries on all of ${retryOn(out.idempotent ?? false)})`);
      }
    }
  }
  return out;
}
