import { Errno, FileType } from "./abi.js";
import { InstanceLimitError, WasiError } from "./errors.js";
import type { DirHandle, FileHandle, FsBackend } from "./vfs.js";
import type { InputStream, OutputStream } from "./stdio.js";

interface DescriptorBase {
  rightsBase: bigint;
  rightsInheriting: bigint;
  /** WASI fdflags (APPEND, NONBLOCK, ...). */
  flags: number;
}

/** An open regular file. */
export interface FileDescriptor extends DescriptorBase {
  kind: "file";
  fs: FsBackend;
  handle: FileHandle;
  position: bigint;
  filetype: FileType;
  /** Opened below a read-only preopen: mutations are EPERM. */
  readonly: boolean;
}

/** An open directory: a capability to everything below it. */
export interface DirDescriptor extends DescriptorBase {
  kind: "dir";
  fs: FsBackend;
  /** The directory itself, held open (openat semantics: it follows renames; a preopen holds its backend's root). */
  dir: DirHandle;
  /** Guest name when this is a preopen (fd_prestat_dir_name). */
  preopenName: string | null;
  /** The preopen was granted read-only: every mutation below it is refused. */
  readonly: boolean;
  /** Entries listed on the last fd_readdir at cookie 0, so cookies stay stable while reading. */
  listing: { name: string; ino: bigint; filetype: FileType }[] | null;
}

/** stdin, stdout or stderr. */
export interface StreamDescriptor extends DescriptorBase {
  kind: "stream";
  /** CHARACTER_DEVICE when attached to a terminal, else UNKNOWN (as Wasmtime). */
  filetype: FileType;
  input: InputStream | null;
  output: OutputStream | null;
}

/** A preopened listening socket or an accepted connection (handles live in the io bridge). */
export interface SocketDescriptor extends DescriptorBase {
  kind: "listener" | "connection";
  handle: number;
}

export type Descriptor = FileDescriptor | DirDescriptor | StreamDescriptor | SocketDescriptor;

/** The default most descriptors open at once, stdio and preopens included. */
export const DEFAULT_MAX_OPEN_FILES = 1024;

/**
 * The instance's descriptor table. New descriptors take the lowest free
 * number, as POSIX does; the table is bounded by the open-files limit.
 */
export class DescriptorTable {
  private readonly slots: (Descriptor | undefined)[] = [];
  private count = 0;

  constructor(private readonly maxOpen: number = DEFAULT_MAX_OPEN_FILES) {}

  get(fd: number): Descriptor {
    const d = fd >= 0 ? this.slots[fd] : undefined;
    if (!d) throw new WasiError(Errno.BADF, `fd ${fd} is not open`);
    return d;
  }

  has(fd: number): boolean {
    return fd >= 0 && this.slots[fd] !== undefined;
  }

  /**
   * Adds a descriptor. Opening one past the open-files limit ends the instance
   * with `fd_limit` (a hard limit, like every other), rather than an EMFILE the
   * guest could spin on.
   */
  add(d: Descriptor): number {
    if (this.count >= this.maxOpen) throw new InstanceLimitError("fd_limit", `open-files limit of ${this.maxOpen} descriptors reached`);
    let fd = this.slots.indexOf(undefined);
    if (fd < 0) fd = this.slots.length;
    this.slots[fd] = d;
    this.count++;
    return fd;
  }

  /** Adds a descriptor the host grants at start; exceeding the limit there is a configuration error. */
  grant(d: Descriptor): number {
    if (this.count >= this.maxOpen) throw new RangeError(`open-files limit ${this.maxOpen} is smaller than the ${this.count + 1} granted descriptors`);
    return this.add(d);
  }

  remove(fd: number): Descriptor {
    const d = this.get(fd);
    this.slots[fd] = undefined;
    this.count--;
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
    return d;
  }

  /** Moves `from` over `to` (closing what `to` held); returns the replaced descriptor. */
  renumber(from: number, to: number): Descriptor {
    const d = this.get(from);
    const old = this.get(to);
    this.slots[to] = d;
    this.slots[from] = undefined;
    this.count--;
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
    return old;
  }

  *entries(): IterableIterator<[number, Descriptor]> {
    for (let i = 0; i < this.slots.length; i++) {
      const d = this.slots[i];
      if (d) yield [i, d];
    }
  }

  get size(): number {
    return this.count;
  }
}
