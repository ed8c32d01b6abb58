/**
 * `uniwasm:log`: structured log lines from the guest into its app's logs.
 *
 *   write(level: i32, msg_ptr: i32, msg_len: i32) -> errno
 *
 * level: 0 debug, 1 info, 2 warn, 3 error (else EINVAL). The message is
 * UTF-8 (invalid bytes become U+FFFD); control characters are escaped so a
 * guest cannot forge a second line; more than LOG_LIMITS.lineBytes bytes are
 * cut and marked. Flood bound: a token bucket per instance (burst, then a
 * steady rate); a line beyond it is dropped, counted as denied, and the call
 * returns EDQUOT (a flood leaves one warning line, at most one per 10 s).
 * EFAULT for a message outside memory.
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import { defineExtension, type ExtensionContext } from "../extensions.js";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where guest log lines go (the app's logs on a node, stderr for `uniwasm run`/`call`). */
export interface LogProvider {
  log(level: LogLevel, message: string): void;
}

export const LOG_LIMITS = Object.freeze({
  /** Longest line kept, in bytes of the guest's message; the rest is cut. */
  lineBytes: 4096,
  /** Lines an instance may write at once before the rate applies. */
  burstLines: 1000,
  /** Lines per second an instance may write in the long run. */
  linesPerSecond: 100,
});

/** Per-instance flood budget (a token bucket). */
export class LogBudget {
  private tokens: number = LOG_LIMITS.burstLines;
  private last = performance.now();
  private warnedAt = -Infinity;

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(LOG_LIMITS.burstLines, this.tokens + ((now - this.last) / 1000) * LOG_LIMITS.linesPerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a dropped line should leave a warning: at most one per flood (per 10 s). */
  warnNow(): boolean {
    const now = performance.now();
    if (now - this.warnedAt < 10_000) return false;
    this.warnedAt = now;
    return true;
  }
}

const lenient = new TextDecoder("utf-8", { fatal: false });
const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r" };

/** The guest's bytes as one safe log line: decoded leniently, cut at the cap, control characters escaped. */
export function logLine(bytes: Uint8Array): string {
  const cut = bytes.length > LOG_LIMITS.lineBytes;
  // eslint-disable-next-line no-control-regex
  let text = lenient.decode(cut ? bytes.subarray(0, LOG_LIMITS.lineBytes) : bytes).replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  if (cut) text += ` …[${bytes.length - LOG_LIMITS.lineBytes} bytes cut]`;
  return text;
}

/**
 * Writes one guest line through the flood budget: false when it was dropped
 * (counted as denied; the first drop of a flood leaves one warning line).
 */
export function writeLogLine(ctx: ExtensionContext<LogBudget, LogProvider>, level: LogLevel, bytes: Uint8Array): boolean {
  if (!ctx.state.take()) {
    ctx.countDenied();
    if (ctx.state.warnNow()) {
      ctx.provider.log("warn", `log flood: dropping lines beyond ${LOG_LIMITS.burstLines} at once or ${LOG_LIMITS.linesPerSecond}/s`);
    }
    return false;
  }
  ctx.provider.log(level, logLine(bytes));
  return true;
}

export const logExtension = defineExtension<LogBudget, LogProvider>({
  name: "uniwasm:log",
  summary: "Structured log lines (debug, info, warn, error) into the app's logs, size-capped and flood-bounded.",
  needsProvider: true,
  state: () => new LogBudget(),
  functions: {
    write: {
      params: [["level", "i32"], ["msg_ptr", "i32"], ["msg_len", "i32"]],
      result: "errno",
      summary: "Write one log line at a level (0 debug, 1 info, 2 warn, 3 error).",
      handler: (ctx, level: number, ptr: number, len: number) => {
        const name = LOG_LEVELS[level];
        if (name === undefined) throw new WasiError(Errno.INVAL, `log level ${level} is not 0-3`);
        const bytes = ctx.memory.bytes(ptr, len);
        if (!writeLogLine(ctx, name, bytes)) throw new WasiError(Errno.DQUOT, "log flood: line dropped");
        return Errno.SUCCESS;
      },
    },
  },
});
