// Shared e2e test harness: import everything from here.
export { freePort, freePorts } from './ports.mjs';
export { waitFor, withTimeout, delay } from './wait.mjs';
export {
  startEnvoy, envoyPath, repoRoot, repoPath, EnvoyStartError,
  parseStatsJson, parseStatsText, lookupStat, requireStat, statsDelta,
} from './envoy.mjs';
export {
  meltemiFilterConfig, meltemiBootstrap, perRequestBootstrap, tcpProxyBootstrap, thriftProxyBootstrap, redisProxyBootstrap,
  staticClusters, tcpProxyFilter, stdoutAccessLog, socketAddress, statsConfig,
} from './bootstrap.mjs';
export { tcpExchange, tcpConnect } from './tcp.mjs';
export { parsePrometheus, Metrics } from './prometheus.mjs';
export { killAllSync } from './cleanup.mjs';
export { WasmHost, BUFFER, STATUS } from './wasm-host.mjs';
