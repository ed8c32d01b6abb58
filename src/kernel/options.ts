import type { Capability } from "./syscalls.js";
import type { ResolvedLimits } from "../limits.js";

/**
 * What an instance is granted. Everything is deny-by-default: an instance sees
 * only the args, env vars, directories and sockets listed here.
 */
export interface KernelOptions {
  /** argv as the guest sees it, argv[0] included. Default: `[]`. */
  args?: readonly string[];
  /** Environment variables, exactly as granted. Default: none. */
  env?: Readonly<Record<string, string>>;
  /** Preopened directories, in fd order after the listeners. */
  preopens?: readonly PreopenSpec[];
  /** Preopened listening TCP sockets (wasmtime's `--tcplisten`), from fd 3, before the directories. */
  listeners?: readonly ListenerSpec[];
  stdin?: InputSpec;
  stdout?: OutputSpec;
  stderr?: OutputSpec;
  /**
   * Grants. Default: DEFAULT_CAPABILITIES, plus `fs` when there are preopens
   * and `sockets` when there are listeners.
   */
  capabilities?: readonly Capability[];
  /** Refuse a module that imports an ungranted call instead of linking a stub. */
  strict?: boolean;
  /** Receives one strace-style line per host call when set. */
  trace?: (line: string) => void;
  /**
   * The limits the kernel enforces, read from the one limits type
   * (src/limits.ts), unset ones at the kernel's own defaults: openFiles
   * (1024), stdoutBytes and stderrBytes (unlimited; past them the instance
   * ends with `output_limit`), memDirBytes (64 MiB, ENOSPC past it).
   */
  limits?: Partial<Pick<ResolvedLimits, "openFiles" | "stdoutBytes" | "stderrBytes" | "memDirBytes">>;
  /**
   * Charged for host work the kernel does on the guest's behalf, in fuel units
   * (see host-work.ts): path resolution, bytes moved, poll subscriptions,
   * directory entries. The sandbox sets it to draw from the instance's fuel
   * when the run is metered; it throws (InstanceLimitError "fuel_exhausted")
   * to end the instance. Default: not charged.
   */
  hostWork?: import("./host-work.js").HostWork;
  /** Socket I/O for `listeners`; required when listeners are given. */
  io?: import("./io-bridge.js").BlockingIo;
  /** Host extensions beyond WASI (extensions.ts): what is granted, and who provides it. Default: none granted. */
  extensions?: ExtensionOptions;
}

/**
 * Host extensions of one instance. The built-in extensions (kernel/ext) are
 * always known to the linker, as every WASI call is; nothing is granted by default.
 */
export interface ExtensionOptions {
  /** Grants: extension names ("uniwasm:kv": all its functions) or single capabilities ("uniwasm:kv/read"). */
  grants?: readonly string[];
  /** Providers by extension name: the typed objects the extensions' handlers call (see each extension). */
  providers?: Readonly<Record<string, object>>;
  /** Embedder-defined extensions offered beside the built-ins; one named like a built-in replaces it. */
  define?: readonly import("./extensions.js").Extension<any, any>[];
  /** The providers live on another thread (remoteProviders) and may do asynchronous work there. */
  remote?: boolean;
}

export type PreopenSpec =
  /** A host directory the guest can never leave. */
  | { guest: string; host: string; readonly?: boolean }
  /**
   * An in-memory directory, seeded with files (path relative to the dir ->
   * contents). Seed contents are shared, not copied, until the guest writes a
   * file (copy on write), so do not change them while the kernel lives. A
   * MemoryFs given here keeps its own budget instead of the kernel's.
   */
  | { guest: string; memory: MemoryDirSeed; readonly?: boolean };

export type MemoryDirSeed = Readonly<Record<string, Uint8Array | string>> | import("./fs-memory.js").MemoryFs;

export interface ListenerSpec {
  /** A listening socket handle id known to `io` (see io-bridge). */
  id: number;
  /** For display and `fd_prestat`-like introspection, e.g. "127.0.0.1:8080". */
  address: string;
}

/**
 * Where stdin comes from: bytes, a host file descriptor read synchronously
 * (`"inherit"` is fd 0), or nothing (reads return end of file).
 */
export type InputSpec = Uint8Array | string | { fd: number } | "inherit" | "null";

/**
 * Where output goes: collected into the result (`"buffer"`), a host descriptor
 * (`"inherit"` is the process's own), a callback receiving each chunk, or dropped.
 */
export type OutputSpec = "buffer" | "inherit" | "null" | { fd: number } | ((chunk: Uint8Array) => void);
