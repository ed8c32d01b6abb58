/**
 * Entry point of the preparer's worker thread (see preparer.ts): checks,
 * rewrites and compiles modules (src/wasm/prepare.ts, then V8) one at a time,
 * so that a 50 MB module never holds the thread that serves requests. The
 * compiled WebAssembly.Module travels back by postMessage (V8 shares the code).
 */
import { parentPort } from "node:worker_threads";
import { WasmError, WasmLimitError, WasmFormatError, WasmUnsupportedError, WasmCompileError } from "../wasm/errors.js";
import { prepareAndCompile } from "./modules.js";
import type { PrepareReply, PrepareRequest, SerializedError } from "./preparer.js";

if (!parentPort) throw new Error("prepare-worker.js runs only as a worker thread");
const port = parentPort;

function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  // Own fields (code, limit, actual, max, offset, section, feature, engineMessage, ...) clone as plain data.
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (v === undefined || ["string", "number", "boolean"].includes(typeof v)) fields[k] = v;
  const kind =
    e instanceof WasmLimitError ? "WasmLimitError"
    : e instanceof WasmFormatError ? "WasmFormatError"
    : e instanceof WasmUnsupportedError ? "WasmUnsupportedError"
    : e instanceof WasmCompileError ? "WasmCompileError"
    : e instanceof WasmError ? "WasmError"
    : e instanceof RangeError ? "RangeError"
    : "Error";
  return { kind, name: e.name, message: e.message, fields };
}

port.on("message", (req: PrepareRequest) => {
  let reply: PrepareReply;
  try {
    reply = { id: req.id, prepared: prepareAndCompile(req.bytes, req.key, req.rewrites, req.moduleLimits, req.keepBytes) };
  } catch (err) {
    reply = { id: req.id, error: serialize(err) };
  }
  port.postMessage(reply);
});
