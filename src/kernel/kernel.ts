import { resolve as resolvePathOnHost } from "node:path";
import { isatty } from "node:tty";
import { Errno, FileType, Rights, RIGHTS_DIR, RIGHTS_FILE, RIGHTS_MUTATING, RIGHTS_SOCKET_LISTEN } from "./abi.js";
import { Clocks } from "./clock.js";
import { DEFAULT_MAX_OPEN_FILES, DescriptorTable, type Descriptor } from "./descriptors.js";
import { WasiError } from "./errors.js";
import { FileSystem, release } from "./fs.js";
import { HostFs } from "./fs-host.js";
import { MemoryBudget, MemoryFs } from "./fs-memory.js";
import type { BlockingIo } from "./io-bridge.js";
import type { HostWork } from "./host-work.js";
import { linkImports, type LinkReport } from "./linker.js";
import { ExtensionTable, type MemoryImportInfo } from "./extension-linker.js";
import { GuestMemory, type Buffers } from "./memory.js";
import type { KernelOptions } from "./options.js";
import { envList, StringList } from "./proc.js";
import { Sockets } from "./sock.js";
import { createInput, createOutput, type InputStream, type OutputStream } from "./stdio.js";
import { DEFAULT_CAPABILITIES, SYSCALLS, type Capability } from "./syscalls.js";
import type { FsBackend } from "./vfs.js";
import type { ImportSignature } from "./linker.js";

/** The grants implied by options when `capabilities` is not given. */
export function defaultGrants(options: KernelOptions): Set<Capability> {
  const grants = new Set<Capability>(DEFAULT_CAPABILITIES);
  if (options.preopens && options.preopens.length > 0) grants.add("fs");
  return grants;
}

/**
 * One instance's kernel: its descriptor table, filesystems, clocks, streams
 * and call counters. It holds no module-level state, so any number of
 * kernels can live in one thread.
 */
export class Kernel {
  readonly memory = new GuestMemory();
  readonly fds: DescriptorTable;
  readonly fs: FileSystem;
  readonly sockets: Sockets;
  readonly clocks = new Clocks();
  readonly args: StringList;
  readonly env: StringList;
  readonly stdin: InputStream;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly grants: ReadonlySet<Capability>;
  readonly io: BlockingIo | undefined;
  /** Where host work is charged (KernelOptions.hostWork); undefined: not charged. */
  readonly work: HostWork | undefined;
  /**
   * Calls per syscall, indexed like SYSCALLS. A plain array of small
   * integers: a kernel is made per WAGI request, and a typed array this size
   * has an off-heap backing store, slower to make and to collect.
   */
  readonly calls: number[] = new Array<number>(SYSCALLS.length).fill(0);
  /** Host extensions offered and granted, their providers and per-function counters. */
  readonly extensions: ExtensionTable;
  /** Calls to ungranted syscalls answered by a stub, indexed like SYSCALLS; allocated on the first one. */
  private deniedCalls: Float64Array | null = null;
  private readonly backends: FsBackend[] = [];
  /** What the in-memory directories this kernel made hold, against `limits.memDirBytes`. */
  readonly memDirs: MemoryBudget;
  private closed = false;

  constructor(readonly options: KernelOptions = {}) {
    this.grants = new Set(options.capabilities ?? defaultGrants(options));
    this.args = new StringList(options.args ?? []);
    this.env = new StringList(envList(options.env ?? {}));
    this.io = options.io;
    this.extensions = new ExtensionTable(options.extensions);
    this.work = options.hostWork;
    const limits = options.limits ?? {};
    this.fds = new DescriptorTable(limits.openFiles ?? DEFAULT_MAX_OPEN_FILES);
    this.fs = new FileSystem(this.fds, options.hostWork);
    this.sockets = new Sockets(this.fds, this.io);
    this.stdin = createInput(options.stdin);
    this.stdout = createOutput("stdout", options.stdout, limits.stdoutBytes, 1);
    this.stderr = createOutput("stderr", options.stderr, limits.stderrBytes, 2);
    this.memDirs = new MemoryBudget(limits.memDirBytes);

    const streamRights = Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE;
    const kind = (spec: unknown, hostFd: number): FileType => {
      const fd = spec === "inherit" ? hostFd : typeof spec === "object" && spec !== null && "fd" in spec ? (spec as { fd: number }).fd : -1;
      return fd >= 0 && isatty(fd) ? FileType.CHARACTER_DEVICE : FileType.UNKNOWN;
    };
    this.fds.grant({ kind: "stream", filetype: kind(options.stdin, 0), input: this.stdin, output: null, rightsBase: streamRights | Rights.FD_READ, rightsInheriting: 0n, flags: 0 });
    this.fds.grant({ kind: "stream", filetype: kind(options.stdout, 1), input: null, output: this.stdout, rightsBase: streamRights | Rights.FD_WRITE, rightsInheriting: 0n, flags: 0 });
    this.fds.grant({ kind: "stream", filetype: kind(options.stderr, 2), input: null, output: this.stderr, rightsBase: streamRights | Rights.FD_WRITE, rightsInheriting: 0n, flags: 0 });

    // Listening sockets come first, from fd 3, as with wasmtime --tcplisten; then the directories.
    for (const l of options.listeners ?? []) {
      if (!this.io) throw new Error("listeners need an io bridge (KernelOptions.io)");
      this.fds.grant({ kind: "listener", handle: l.id, rightsBase: RIGHTS_SOCKET_LISTEN, rightsInheriting: 0n, flags: 0 });
    }
    for (const p of options.preopens ?? []) {
      if (!p.guest) throw new Error("a preopen needs a guest path");
      const fs: FsBackend = "host" in p ? new HostFs(resolvePathOnHost(p.host)) : p.memory instanceof MemoryFs ? p.memory : new MemoryFs(p.memory, this.memDirs);
      this.backends.push(fs);
      const ro = p.readonly === true;
      this.fds.grant({
        kind: "dir",
        fs,
        dir: fs.root,
        preopenName: p.guest,
        readonly: ro,
        listing: null,
        rightsBase: ro ? RIGHTS_DIR & ~RIGHTS_MUTATING : RIGHTS_DIR,
        rightsInheriting: ro ? (RIGHTS_DIR | RIGHTS_FILE) & ~RIGHTS_MUTATING : RIGHTS_DIR | RIGHTS_FILE,
        flags: 0,
      });
    }
  }

  /**
   * The imports for `module`: exactly its WASI imports that are granted; an
   * ungranted one gets a stub returning ENOTCAPABLE (or, strict, the module is
   * refused). `signatures` (from the wasm reader) enables signature checks;
   * `memories` (the module's memory imports) lets a granted extension provide them.
   */
  link(module: WebAssembly.Module, signatures?: ReadonlyMap<string, ImportSignature>, memories?: readonly MemoryImportInfo[]): { imports: WebAssembly.Imports; report: LinkReport } {
    return linkImports(this, module, signatures, memories);
  }

  /** Attaches the instance's exported memory; host calls before this get EFAULT. */
  bind(memory: WebAssembly.Memory): void {
    this.memory.bind(memory);
  }

  readFd(fd: number, bufs: Buffers): number {
    const d = this.fds.get(fd);
    switch (d.kind) {
      case "file": return this.fs.read(fd, bufs);
      case "stream": {
        if (!d.input) throw new WasiError(Errno.BADF, `fd ${fd} is not readable`);
        // Rights on stdio are enforced as on files: without FD_READ, reading is EBADF.
        if ((d.rightsBase & Rights.FD_READ) === 0n) throw new WasiError(Errno.BADF, `fd ${fd} lacks the FD_READ right`);
        let total = 0;
        for (let i = 0; i < bufs.length; i++) {
          const b = bufs.at(i)!;
          if (b.length === 0) continue;
          const n = d.input.read(b);
          total += n;
          if (n < b.length) break;
        }
        return total;
      }
      case "connection": return this.sockets.recv(fd, bufs, 0).n;
      default: throw new WasiError(Errno.BADF, `fd ${fd} cannot be read`);
    }
  }

  writeFd(fd: number, bufs: Buffers): number {
    const d = this.fds.get(fd);
    switch (d.kind) {
      case "file": return this.fs.write(fd, bufs);
      case "stream": {
        if (!d.output) throw new WasiError(Errno.BADF, `fd ${fd} is not writable`);
        if ((d.rightsBase & Rights.FD_WRITE) === 0n) throw new WasiError(Errno.BADF, `fd ${fd} lacks the FD_WRITE right`);
        let total = 0;
        for (let i = 0; i < bufs.length; i++) {
          const b = bufs.at(i)!;
          if (b.length > 0) total += d.output.write(b);
        }
        return total;
      }
      case "connection": return this.sockets.send(fd, bufs, 0);
      default: throw new WasiError(Errno.BADF, `fd ${fd} cannot be written`);
    }
  }

  closeFd(fd: number): void {
    const d = this.fds.get(fd);
    if (d.kind === "listener" || d.kind === "connection") {
      this.fds.remove(fd);
      this.sockets.close(d);
      return;
    }
    this.fs.close(fd);
  }

  renumberFd(from: number, to: number): void {
    const target: Descriptor = this.fds.get(to);
    this.fds.get(from);
    if (from !== to && (target.kind === "listener" || target.kind === "connection")) {
      this.sockets.close(target);
    }
    this.fs.renumber(from, to);
  }

  /** Calls made, by name (only the non-zero ones); extension functions as `module.name`. */
  callCounts(): Record<string, number> {
    const out = countsByName(this.calls);
    return this.extensions.names.length > 0 ? Object.assign(out, this.extensions.counts("calls")) : out;
  }

  deniedCounts(): Record<string, number> {
    const out = this.deniedCalls ? countsByName(this.deniedCalls) : {};
    return this.extensions.denied ? Object.assign(out, this.extensions.counts("denied")) : out;
  }

  /** Counts a call answered by an ENOTCAPABLE stub. */
  countDenied(index: number): void {
    (this.deniedCalls ??= new Float64Array(SYSCALLS.length))[index]!++;
  }

  /** Releases host files and sockets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, d] of this.fds.entries()) {
      try {
        if (d.kind === "connection") this.sockets.close(d);
        else release(d);
      } catch {
        // best effort: the instance is gone
      }
    }
    for (const b of this.backends) b.close();
  }
}

function countsByName(arr: ArrayLike<number>): Record<string, number> {
  const out: Record<string, number> = {};
  SYSCALLS.forEach((s, i) => {
    if (arr[i]! > 0) out[s.name] = arr[i]!;
  });
  return out;
}
