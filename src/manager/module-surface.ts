import type { ModuleSurface } from "../store/types.js";
import { WASI_MODULE } from "../kernel/syscalls.js";
import { readModuleInfo } from "../wasm/reader.js";
import { ControlError } from "./refusal.js";

/**
 * Lists a module's imports, exports and the WASI calls it uses, from its
 * structure alone: nothing is compiled on the calling (serving) thread. The
 * code is validated and compiled when a revision is prepared (off the serving
 * thread, by the runner).
 */
export function moduleSurface(bytes: Uint8Array): ModuleSurface {
  let info: ReturnType<typeof readModuleInfo>;
  try {
    info = readModuleInfo(bytes);
  } catch (err) {
    throw new ControlError("invalid_module", `The upload is not a valid WebAssembly module: ${(err as Error).message}`);
  }
  const imports = info.imports.map((i) => ({ module: i.module, name: i.name, kind: i.kind as string }));
  const exports = info.exports.map((e) => ({ name: e.name, kind: e.kind as string }));
  const wasiCalls = imports.filter((i) => i.module === WASI_MODULE || i.module === "wasi_unstable").map((i) => i.name).sort();
  return { imports, exports, wasiCalls };
}
