/**
 * The one grammar for sizes and durations, wherever a person writes one: the
 * CLI's flags (`--max-memory 16M`, `--timeout 2s`), the manifest's `[limits]`
 * (`memory = "64MiB"`), node settings. A leaf module, so every layer can use it.
 *
 * Sizes: a number of bytes, optionally followed by a unit. Units are binary,
 * whatever their spelling: K, KB and KiB are 1024 bytes; M, MB, MiB 1024^2;
 * G, GB, GiB 1024^3; T, TB, TiB 1024^4; B is one byte. Case does not matter,
 * `_` may separate digits, a fraction is allowed ("1.5G") and rounded down to
 * whole bytes. ("16MB" is 16 MiB, as in `java -Xmx16m` or `docker --memory`.)
 *
 * Durations: a number of milliseconds, or a number followed by ms, s, m or h
 * ("250ms", "1.5s", "2m", "1h"), rounded to whole milliseconds.
 */

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DURATION_UNITS: Record<string, number> = { "": 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const NUMBER = String.raw`(\d[\d_]*(?:\.\d+)?)`;
const SIZE_RE = new RegExp(String.raw`^\s*${NUMBER}\s*(?:([kmgt])(?:i?b)?|(b))?\s*$`, "i");
const DURATION_RE = new RegExp(String.raw`^\s*${NUMBER}\s*(ms|s|m|h)?\s*$`, "i");

export class UnitError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

/** "64MiB" -> 67108864. Throws UnitError naming the grammar. */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text);
  if (!m || m[1]!.endsWith("_")) throw new UnitError(`not a size: ${JSON.stringify(text)} (bytes, or a number with K, M, G or T, binary: 65536, 64K, 16MiB, 1G)`);
  const unit = SIZE_UNITS[(m[2] ?? m[3] ?? "").toLowerCase()]!;
  const n = Math.floor(Number(m[1]!.replace(/_/g, "")) * unit);
  if (!Number.isSafeInteger(n)) throw new UnitError(`size too large: ${JSON.stringify(text)}`);
  return n;
}

/** "5s" -> 5000. Throws UnitError naming the grammar. */
export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text);
  if (!m || m[1]!.endsWith("_")) throw new UnitError(`not a duration: ${JSON.stringify(text)} (milliseconds, or a number with ms, s, m or h: 500, 250ms, 2s, 1m, 1h)`);
  const n = Math.round(Number(m[1]!.replace(/_/g, "")) * DURATION_UNITS[(m[2] ?? "").toLowerCase()]!);
  if (!Number.isSafeInteger(n)) throw new UnitError(`duration too long: ${JSON.stringify(text)}`);
  return n;
}

/** 16777216 -> "16 MiB"; Infinity -> "unlimited". */
export function formatSize(n: number): string {
  if (!Number.isFinite(n)) return "unlimited";
  for (const [unit, scale] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= scale && n % scale === 0) return `${n / scale} ${unit}`;
  }
  return `${n} bytes`;
}

/** 3600000 -> "1h", 1500 -> "1500ms"; Infinity -> "none". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "none";
  for (const [unit, scale] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= scale && ms % scale === 0) return `${ms / scale}${unit}`;
  }
  return `${ms}ms`;
}
