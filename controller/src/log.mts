/** Structured logs: one JSON object per line on stdout ({time, level, msg, ...fields}). */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;

let threshold: number = LEVELS[(process.env.MELTEMI_LOG_LEVEL as Level) ?? 'info'] ?? LEVELS.info;
let sink: (line: string) => void = (line) => process.stdout.write(line + '\n');

export function setLogLevel(level: Level): void { threshold = LEVELS[level]; }
export function setLogSink(s: (line: string) => void): void { sink = s; }

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  sink(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
}
