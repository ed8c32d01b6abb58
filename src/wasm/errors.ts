/**
 * Errors of the wasm layer. Every failure to read, bound, rewrite or compile a
 * module is one of these classes, so a caller can tell a bad module (the
 * tenant's problem, report it) from a bug (anything else, surface it).
 */

/** Base class: `code` is stable and meant for programs; `message` is for people. */
export class WasmError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Formats a byte offset the way wasm tools print them (wasm-objdump, V8 frames). */
export function hex(offset: number): string {
  return "0x" + offset.toString(16);
}

/**
 * The bytes are not a well-formed module: truncated, bad LEB128, counts that
 * cannot fit, unknown section or kind. `offset` is where reading failed and
 * `section` names the section being read ("import", "code", "header", ...).
 */
export class WasmFormatError extends WasmError {
  readonly offset: number;
  readonly section: string;
  readonly truncated: boolean;
  constructor(section: string, offset: number, detail: string, truncated = false) {
    const where = section === "header" ? "module header" : `${section} section`;
    super(
      truncated ? "WASM_TRUNCATED" : "WASM_MALFORMED",
      `${truncated ? "truncated" : "malformed"} ${where} at offset ${hex(offset)}: ${detail}`,
    );
    this.offset = offset;
    this.section = section;
    this.truncated = truncated;
  }
}

/**
 * The module is well-formed but uses something this layer does not decode
 * (a proposal such as GC or exception handling). Rewrites refuse instead of
 * guessing instruction lengths.
 */
export class WasmUnsupportedError extends WasmError {
  readonly offset: number;
  readonly feature: string;
  constructor(feature: string, offset: number, detail: string) {
    super("WASM_UNSUPPORTED", `${detail} at offset ${hex(offset)} (${feature} is not supported)`);
    this.offset = offset;
    this.feature = feature;
  }
}

/**
 * The module exceeds a host bound (module size, functions, locals, nesting,
 * memory pages, ...). `limit` names the option that would allow it.
 */
export class WasmLimitError extends WasmError {
  readonly limit: string;
  readonly actual: number;
  readonly max: number;
  constructor(limit: string, actual: number, max: number, detail: string) {
    super("WASM_LIMIT", `${detail}: ${actual} exceeds the limit of ${max} (${limit})`);
    this.limit = limit;
    this.actual = actual;
    this.max = max;
  }
}

/** V8 refused the module (type errors and other validation failures). */
export class WasmCompileError extends WasmError {
  /** The engine's own message, unchanged. */
  readonly engineMessage: string;
  /** Byte offset V8 reported (`@+123`), when it gave one. */
  readonly offset: number | undefined;
  constructor(engineMessage: string, offset: number | undefined, message: string) {
    super("WASM_INVALID", message);
    this.engineMessage = engineMessage;
    this.offset = offset;
  }
}
