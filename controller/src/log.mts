/** Structured logs: one JSON object per line on stdout ({time, level, msg, ...fields}). */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;

/** The lowest level written: $MELTEMI_LOG_LEVEL (debug, info, warn, error), default info. */
const threshold: number = LEVELS[(process.env.MELTEMI_LOG_LEVEL as Level) ?? 'info'] ?? LEVELS.info;

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold) return;
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
}
