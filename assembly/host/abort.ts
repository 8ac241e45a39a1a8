// Wired in with `--use abort=assembly/host/abort/abortToLog` (see Makefile).
import * as abi from "./abi";

/** The last line of defence: an AssemblyScript abort (a bug, never bad input) is logged, then traps. */
export function abortToLog(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const m = message != null ? message : "abort";
  const f = fileName != null ? fileName : "?";
  abi.log(abi.LogLevel.Critical, "meltemi: abort: " + m + " at " + f + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
