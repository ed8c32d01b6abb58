/**
 * Manifest grants vs module imports, and the manifest -> KernelOptions map.
 *
 * The manifest controls the capabilities that reach outside the instance:
 * `fs` (dirs), `sockets` (listen), `clocks`, `random` and host extensions.
 * `args`, `env`, `fd`, `poll` and `proc` are always granted: their authority
 * is exactly what the manifest lists (argv, the declared variables, the
 * descriptors the instance was given), so granting the calls leaks nothing,
 * and wasi-libc aborts at startup when environ_* fails.
 */
import { SYSCALL_BY_NAME, WASI_MODULE, WASI_UNSTABLE_ALIASES, type Capability } from "../kernel/syscalls.js";
import type { KernelOptions, PreopenSpec } from "../kernel/options.js";
import type { Manifest } from "./manifest.js";
import type { ModuleImport } from "./module-info.js";

const ALWAYS_GRANTED: readonly Capability[] = ["args", "env", "fd", "poll", "proc"];

/** How to grant each capability in uniwasm.toml, for messages. */
export const HOW_TO_GRANT: Readonly<Record<Capability, string>> = {
  args: "always granted",
  env: "always granted",
  fd: "always granted",
  poll: "always granted",
  proc: "always granted",
  fs: "add a [[capabilities.dirs]] entry",
  sockets: "add capabilities.listen = [\"127.0.0.1:PORT\"]",
  clocks: "set capabilities.clocks = true",
  random: "set capabilities.random = true",
};

/** The kernel capabilities a manifest grants. */
export function grantedCapabilities(m: Manifest): Capability[] {
  const caps = new Set<Capability>(ALWAYS_GRANTED);
  if (m.capabilities.dirs.length > 0) caps.add("fs");
  if (m.capabilities.listen.length > 0) caps.add("sockets");
  if (m.capabilities.clocks) caps.add("clocks");
  if (m.capabilities.random) caps.add("random");
  return [...caps].sort();
}

export interface UngrantedImport {
  module: string;
  name: string;
  /** The capability it needs, for a WASI call. */
  capability?: Capability;
  reason: string;
}

export interface GrantReport {
  /** Capabilities the manifest grants. */
  granted: Capability[];
  /** Capabilities the module's WASI imports need. */
  needed: Capability[];
  /** Grants the module cannot use: `field: why` lines, for a warning. */
  unusedGrants: string[];
  /** Imports the linker would stub with ENOTCAPABLE (or refuse under --strict). */
  ungrantedImports: UngrantedImport[];
}

function isWasiModule(name: string): boolean {
  return name === WASI_MODULE || WASI_UNSTABLE_ALIASES.includes(name);
}

/** Compares what the manifest grants with what the module imports. */
export function checkGrants(m: Manifest, imports: readonly ModuleImport[]): GrantReport {
  const granted = grantedCapabilities(m);
  const needed = new Set<Capability>();
  const wasiNames = new Set<string>();
  const ungranted: UngrantedImport[] = [];
  const extensionsUsed = new Set<string>();
  for (const imp of imports) {
    if (imp.kind !== "function") {
      if (imp.kind !== "memory") ungranted.push({ module: imp.module, name: imp.name, reason: `imports a ${imp.kind}; only functions and a memory can be imported` });
      continue;
    }
    if (isWasiModule(imp.module)) {
      const spec = SYSCALL_BY_NAME.get(imp.name);
      if (!spec) {
        ungranted.push({ module: imp.module, name: imp.name, reason: "is not a WASI preview 1 function" });
        continue;
      }
      wasiNames.add(imp.name);
      needed.add(spec.capability);
      if (!granted.includes(spec.capability)) {
        ungranted.push({ module: imp.module, name: imp.name, capability: spec.capability, reason: `needs the ${spec.capability} capability: ${HOW_TO_GRANT[spec.capability]}` });
      }
      continue;
    }
    if (m.capabilities.extensions.includes(imp.module)) {
      extensionsUsed.add(imp.module);
      continue;
    }
    ungranted.push({ module: imp.module, name: imp.name, reason: `import module "${imp.module}" is not granted; add it to capabilities.extensions if the host provides it` });
  }

  const unused: string[] = [];
  const c = m.capabilities;
  if (!needed.has("fs")) {
    c.dirs.forEach((d, i) => unused.push(`capabilities.dirs[${i}] (${d.guest}): the module imports no path_* call, so it cannot open anything there`));
  }
  if (c.listen.length > 0 && !needed.has("sockets")) unused.push(`capabilities.listen (${c.listen.join(", ")}): the module imports no sock_* call`);
  if (c.clocks && !needed.has("clocks")) unused.push("capabilities.clocks: the module imports no clock_* call");
  if (c.random && !needed.has("random")) unused.push("capabilities.random: the module does not import random_get");
  if (Object.keys(c.env).length > 0 && !wasiNames.has("environ_get")) unused.push("capabilities.environment: the module does not import environ_get, so it cannot read them");
  if (c.args.length > 0 && !wasiNames.has("args_get")) unused.push("capabilities.args: the module does not import args_get, so it cannot read them");
  for (const e of c.extensions) if (!extensionsUsed.has(e)) unused.push(`capabilities.extensions (${e}): the module imports nothing from it`);
  return { granted, needed: [...needed].sort(), unusedGrants: unused, ungrantedImports: ungranted };
}

/** Files bundled in an image, per `files` dir: guest dir -> (relative path -> bytes). */
export type ImageFiles = ReadonlyMap<string, Readonly<Record<string, Uint8Array>>>;

export interface KernelOptionsExtras {
  /** Appended to argv after the manifest's args (`uniwasm run IMAGE -- ARGS`). */
  args?: readonly string[];
}

/**
 * The kernel options that run `m`: argv = [name, ...args], env as declared,
 * preopens in manifest order (image files from memory, host dirs as given),
 * capabilities as granted. Listening sockets need the runner to open them:
 * `sockets` is granted here and the addresses are in `m.capabilities.listen`.
 * The manifest's limits (`m.limits`, the one limits type) go to the sandbox
 * whole, from the runner.
 */
export function manifestToKernelOptions(m: Manifest, imageFiles: ImageFiles, extras: KernelOptionsExtras = {}): KernelOptions {
  const preopens: PreopenSpec[] = m.capabilities.dirs.map((d) => {
    const readonly = d.mode === "ro";
    if (d.host !== undefined) return { guest: d.guest, host: d.host, readonly };
    const seed = imageFiles.get(d.guest) ?? {};
    // A writable dir gets private copies, so one instance's writes never reach the image or another instance.
    const memory = readonly ? seed : Object.fromEntries(Object.entries(seed).map(([p, b]) => [p, b.slice()]));
    return { guest: d.guest, memory, readonly };
  });
  const options: KernelOptions = {
    args: [m.name, ...m.capabilities.args, ...(extras.args ?? [])],
    env: { ...m.capabilities.env },
    preopens,
    capabilities: grantedCapabilities(m),
  };
  // Extension grants only: their providers (and the allow-lists that configure them) come from the runner.
  if (m.capabilities.extensions.length > 0) options.extensions = { grants: [...m.capabilities.extensions] };
  return options;
}
