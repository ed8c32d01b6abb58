import type { Kernel } from "./kernel.js";
import type { SyscallSpec } from "./syscalls.js";

/** Parameters that are guest addresses: shown in hex, strace-style. */
const POINTERS = new Set(["argv", "argv_buf", "environ", "environ_buf", "buf", "iovs", "path", "old_path", "new_path", "ri_data", "si_data", "in", "out"]);
/** Input path parameters (path_* calls) are shown as the string they point to. */
const STRING_PARAMS = new Set(["path", "old_path", "new_path"]);

/** Formats a call's raw arguments for `--trace`: numbers, hex pointers, decoded paths. */
export function formatTraceArgs(k: Kernel, spec: SyscallSpec, args: readonly unknown[]): string {
  const out: string[] = [];
  for (let i = 0; i < spec.params.length; i++) {
    const [name] = spec.params[i]!;
    const v = args[i];
    if (spec.subsystem === "path" && STRING_PARAMS.has(name) && typeof v === "number" && typeof args[i + 1] === "number") {
      try {
        out.push(JSON.stringify(k.memory.string(v, args[i + 1] as number)));
      } catch {
        out.push(`0x${(v >>> 0).toString(16)} (unreadable)`);
      }
      continue;
    }
    if (typeof v === "bigint") out.push(v.toString());
    else if (typeof v === "number" && (POINTERS.has(name) || name.endsWith("_out"))) out.push(`0x${(v >>> 0).toString(16)}`);
    else out.push(String(v));
  }
  return out.join(", ");
}
