import type { ModuleSurface } from "../store/types.js";
import { WASI_MODULE } from "../kernel/syscalls.js";
import { ApiError } from "./errors.js";

/** Compiles the bytes once to check them and lists imports, exports and the WASI calls used. */
export function moduleSurface(bytes: Uint8Array): ModuleSurface {
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (err) {
    throw new ApiError("invalid_module", `The upload is not a valid WebAssembly module: ${(err as Error).message}`);
  }
  const imports = WebAssembly.Module.imports(module).map((i) => ({ module: i.module, name: i.name, kind: i.kind as string }));
  const exports = WebAssembly.Module.exports(module).map((e) => ({ name: e.name, kind: e.kind as string }));
  const wasiCalls = imports.filter((i) => i.module === WASI_MODULE || i.module === "wasi_unstable").map((i) => i.name).sort();
  return { imports, exports, wasiCalls };
}
