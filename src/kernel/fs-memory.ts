import { Errno, FileType } from "./abi.js";
import { WasiError } from "./errors.js";
import type { DirEntry, DirRef, FileHandle, FsBackend, OpenFileOptions, Stat } from "./vfs.js";

/** Device number reported for in-memory files, so (dev, ino) never collides with a host file. */
const MEMORY_DEV = 0x756e6977n; // "uniw"
/** Largest in-memory file (EFBIG past it); the instance's total is bounded by its MemoryBudget. */
export const MAX_MEMORY_FILE_BYTES = 1 << 30;
/** Default total of an instance's in-memory directories (`memDirBytes` in SandboxLimits). */
export const DEFAULT_MEM_DIR_BYTES = 64 * 1024 * 1024;
/**
 * What one directory entry or link costs against the budget besides its name
 * and contents: the host objects behind it (node, map entry). A guest making
 * millions of empty files runs out of budget, not the host out of memory.
 */
export const ENTRY_COST_BYTES = 256;

/**
 * The bytes an instance's in-memory directories hold on the host, against
 * their limit. One budget is shared by all the in-memory preopens of a kernel.
 * Charged: file contents (the capacity allocated, which is what the host
 * holds), entries (ENTRY_COST_BYTES + name) and symlink targets. Seeded file
 * contents are shared with the seed until first written (copy on write), so
 * they are charged only when the instance makes its own copy. Past the limit a
 * call fails with ENOSPC (a file past MAX_MEMORY_FILE_BYTES with EFBIG).
 */
export class MemoryBudget {
  private usedBytes = 0;
  private peakBytes = 0;
  constructor(readonly limit: number = DEFAULT_MEM_DIR_BYTES) {
    if (!(limit > 0)) throw new RangeError(`memDirBytes must be positive, got ${limit}`);
  }
  /** Bytes held now. */
  get used(): number {
    return this.usedBytes;
  }
  /** Most bytes held at once since the budget was made. */
  get peak(): number {
    return this.peakBytes;
  }
  charge(n: number, what: string): void {
    if (n <= 0) return;
    if (this.usedBytes + n > this.limit) {
      throw new WasiError(Errno.NOSPC, `${what}: the instance's in-memory directories would hold ${this.usedBytes + n} bytes, over their limit of ${this.limit} (memDirBytes)`);
    }
    this.usedBytes += n;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
  }
  release(n: number): void {
    this.usedBytes -= n;
  }
}

type Node = FileNode | DirNode | LinkNode;
interface Base {
  ino: bigint;
  nlink: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}
interface FileNode extends Base {
  type: FileType.REGULAR_FILE;
  /** Capacity >= size; shared with the seed (not charged) until `owned`. */
  data: Uint8Array;
  size: number;
  /** `data` is this instance's own copy, charged to the budget. */
  owned: boolean;
  /** Open handles: the contents are released when the last link and the last handle are gone. */
  handles: number;
}
interface DirNode extends Base {
  type: FileType.DIRECTORY;
  entries: Map<string, Node>;
}
interface LinkNode extends Base {
  type: FileType.SYMBOLIC_LINK;
  target: string;
}

const now = (): bigint => BigInt(Date.now()) * 1_000_000n;
const enc = new TextEncoder();

/**
 * An in-memory directory tree: the image's read-only files, and scratch
 * directories that vanish with the instance. Same contract as HostFs.
 */
export class MemoryFs implements FsBackend {
  readonly kind = "memory" as const;
  private nextIno = 1n;
  private readonly root: DirNode;

  /**
   * `budget` bounds what the tree may hold (shared between the in-memory
   * preopens of one kernel). Seed entries are charged; seed contents are not
   * until written. A seed over the budget is a configuration error (RangeError).
   */
  constructor(seed: Readonly<Record<string, Uint8Array | string>> = {}, readonly budget: MemoryBudget = new MemoryBudget()) {
    this.root = this.newDir();
    try {
      this.seed(seed);
    } catch (err) {
      if (err instanceof WasiError) throw new RangeError(`in-memory directory seed: ${err.message}`);
      throw err;
    }
  }

  private seed(seed: Readonly<Record<string, Uint8Array | string>>): void {
    for (const [path, contents] of Object.entries(seed)) {
      const parts = path.split("/").filter((p) => p !== "" && p !== ".");
      if (parts.some((p) => p === "..")) throw new Error(`in-memory seed path ${path} must not contain ..`);
      let dir = this.root;
      for (const part of parts.slice(0, -1)) {
        let next = dir.entries.get(part);
        if (!next) {
          next = this.newDir();
          this.addEntry(dir, part, next, "seed");
        }
        if (next.type !== FileType.DIRECTORY) throw new Error(`in-memory seed path ${path}: ${part} is a file`);
        dir = next;
      }
      const name = parts[parts.length - 1];
      if (name === undefined) continue;
      const bytes = typeof contents === "string" ? enc.encode(contents) : contents;
      const file = this.newFile();
      file.data = bytes;
      file.size = bytes.length;
      file.owned = false;
      const old = dir.entries.get(name);
      if (old) this.removeEntry(dir, name, old);
      this.addEntry(dir, name, file, "seed");
    }
  }

  /** Bytes this tree's budget holds now (shared with the other in-memory preopens of its kernel). */
  get bytesUsed(): number {
    return this.budget.used;
  }

  /** Links `node` under `name`, charging the entry (and a symlink's target on its first link). */
  private addEntry(dir: DirNode, name: string, node: Node, what: string): void {
    let cost = ENTRY_COST_BYTES + Buffer.byteLength(name);
    if (node.type === FileType.SYMBOLIC_LINK && node.nlink === 0n) cost += Buffer.byteLength(node.target);
    this.budget.charge(cost, what);
    dir.entries.set(name, node);
    if (node.type !== FileType.DIRECTORY) node.nlink++;
  }

  /** Unlinks `name`, releasing its entry, and the node's contents once nothing refers to it. */
  private removeEntry(dir: DirNode, name: string, node: Node): void {
    dir.entries.delete(name);
    this.budget.release(ENTRY_COST_BYTES + Buffer.byteLength(name));
    if (node.type === FileType.DIRECTORY) return;
    node.nlink--;
    if (node.nlink > 0n) return;
    if (node.type === FileType.SYMBOLIC_LINK) this.budget.release(Buffer.byteLength(node.target));
    else if (node.handles === 0) releaseContents(node, this.budget);
  }

  private stamp<T extends { type: FileType }>(n: T): T & Base {
    const t = now();
    // Files and links count their entries (addEntry); a directory has one.
    return Object.assign(n, { ino: this.nextIno++, nlink: n.type === FileType.DIRECTORY ? 1n : 0n, atim: t, mtim: t, ctim: t });
  }
  private newDir(): DirNode {
    return this.stamp({ type: FileType.DIRECTORY as const, entries: new Map<string, Node>() });
  }
  private newFile(): FileNode {
    return this.stamp({ type: FileType.REGULAR_FILE as const, data: new Uint8Array(0), size: 0, owned: true, handles: 0 });
  }

  private lookup(rel: string): Node {
    let node: Node = this.root;
    if (rel === "") return node;
    for (const part of rel.split("/")) {
      if (node.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
      const next: Node | undefined = node.entries.get(part);
      if (!next) throw new WasiError(Errno.NOENT);
      node = next;
    }
    return node;
  }

  private parentOf(rel: string): { dir: DirNode; name: string } {
    const i = rel.lastIndexOf("/");
    const parent = this.lookup(i < 0 ? "" : rel.slice(0, i));
    if (parent.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    const name = i < 0 ? rel : rel.slice(i + 1);
    if (name === "") throw new WasiError(Errno.EXIST); // the root itself
    return { dir: parent, name };
  }

  private touch(dir: DirNode): void {
    dir.mtim = dir.ctim = now();
  }

  stat(rel: string): Stat {
    return statOf(this.lookup(rel));
  }

  readlink(rel: string): string {
    const n = this.lookup(rel);
    if (n.type !== FileType.SYMBOLIC_LINK) throw new WasiError(Errno.INVAL, "not a symbolic link");
    return n.target;
  }

  openFile(rel: string, o: OpenFileOptions): FileHandle {
    const { dir, name } = this.parentOf(rel);
    let node = dir.entries.get(name);
    if (node && o.create && o.exclusive) throw new WasiError(Errno.EXIST);
    if (!node) {
      if (!o.create) throw new WasiError(Errno.NOENT);
      node = this.newFile();
      this.addEntry(dir, name, node, "path_open");
      this.touch(dir);
    }
    if (node.type === FileType.SYMBOLIC_LINK) throw new WasiError(Errno.LOOP, "final component is a symlink");
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    if (o.truncate) {
      resize(node, 0, this.budget);
      node.mtim = node.ctim = now();
    }
    return new MemoryFile(node, this.budget);
  }

  openDir(rel: string): DirRef {
    const node = this.lookup(rel);
    if (node.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    return {
      locate: (lastKnown) => {
        try {
          if (this.lookup(lastKnown) === node) return lastKnown;
        } catch {
          // moved: search below
        }
        return findPath(this.root, node, "");
      },
      close: () => {},
    };
  }

  readdir(rel: string): DirEntry[] {
    const n = this.lookup(rel);
    if (n.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    return [...n.entries.entries()]
      .map(([name, child]) => ({ name, ino: child.ino, filetype: child.type }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  mkdir(rel: string): void {
    const { dir, name } = this.parentOf(rel);
    if (dir.entries.has(name)) throw new WasiError(Errno.EXIST);
    this.addEntry(dir, name, this.newDir(), "path_create_directory");
    dir.nlink++;
    this.touch(dir);
  }

  rmdir(rel: string): void {
    const { dir, name } = this.parentOf(rel);
    const n = dir.entries.get(name);
    if (!n) throw new WasiError(Errno.NOENT);
    if (n.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    if (n.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
    this.removeEntry(dir, name, n);
    dir.nlink--;
    this.touch(dir);
  }

  unlink(rel: string): void {
    const { dir, name } = this.parentOf(rel);
    const n = dir.entries.get(name);
    if (!n) throw new WasiError(Errno.NOENT);
    if (n.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    this.removeEntry(dir, name, n);
    n.ctim = now();
    this.touch(dir);
  }

  rename(from: string, to: string): void {
    const src = this.parentOf(from);
    const node = src.dir.entries.get(src.name);
    if (!node) throw new WasiError(Errno.NOENT);
    const dst = this.parentOf(to);
    const existing = dst.dir.entries.get(dst.name);
    if (existing === node) return;
    if (node.type === FileType.DIRECTORY) {
      // A directory cannot move inside itself.
      if (to === from || to.startsWith(from + "/")) throw new WasiError(Errno.INVAL);
      if (existing) {
        if (existing.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
        if (existing.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
      }
    } else if (existing?.type === FileType.DIRECTORY) {
      throw new WasiError(Errno.ISDIR);
    }
    // The new name is charged before anything moves, so ENOSPC leaves the tree as it was.
    this.budget.charge(ENTRY_COST_BYTES + Buffer.byteLength(dst.name), "path_rename");
    if (existing) {
      this.removeEntry(dst.dir, dst.name, existing);
      if (existing.type === FileType.DIRECTORY) dst.dir.nlink--;
    }
    src.dir.entries.delete(src.name);
    this.budget.release(ENTRY_COST_BYTES + Buffer.byteLength(src.name));
    dst.dir.entries.set(dst.name, node);
    if (node.type === FileType.DIRECTORY && src.dir !== dst.dir) {
      src.dir.nlink--;
      dst.dir.nlink++;
    }
    node.ctim = now();
    this.touch(src.dir);
    this.touch(dst.dir);
  }

  link(from: string, to: string): void {
    const node = this.lookup(from);
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.PERM, "hard links to directories are not allowed");
    const dst = this.parentOf(to);
    if (dst.dir.entries.has(dst.name)) throw new WasiError(Errno.EXIST);
    this.addEntry(dst.dir, dst.name, node, "path_link");
    node.ctim = now();
    this.touch(dst.dir);
  }

  symlink(target: string, rel: string): void {
    const dst = this.parentOf(rel);
    if (dst.dir.entries.has(dst.name)) throw new WasiError(Errno.EXIST);
    this.addEntry(dst.dir, dst.name, this.stamp({ type: FileType.SYMBOLIC_LINK as const, target }), "path_symlink");
    this.touch(dst.dir);
  }

  setTimes(rel: string, atim: bigint | null, mtim: bigint | null): void {
    const n = this.lookup(rel);
    if (atim !== null) n.atim = atim;
    if (mtim !== null) n.mtim = mtim;
    n.ctim = now();
  }

  close(): void {
    // Nothing to release: the tree is garbage-collected with the instance.
  }
}

/** Where `target` now sits below `dir`, or null when it was removed. */
function findPath(dir: DirNode, target: Node, prefix: string): string | null {
  for (const [name, child] of dir.entries) {
    const path = prefix ? `${prefix}/${name}` : name;
    if (child === target) return path;
    if (child.type === FileType.DIRECTORY) {
      const found = findPath(child, target, path);
      if (found !== null) return found;
    }
  }
  return null;
}

function statOf(n: Node): Stat {
  return {
    dev: MEMORY_DEV,
    ino: n.ino,
    filetype: n.type,
    nlink: n.nlink,
    size: n.type === FileType.REGULAR_FILE ? BigInt(n.size) : n.type === FileType.SYMBOLIC_LINK ? BigInt(enc.encode(n.target).length) : 4096n,
    atim: n.atim,
    mtim: n.mtim,
    ctim: n.ctim,
  };
}

/**
 * Makes `n.data` this instance's own copy with room for `size` bytes, charging
 * the growth. Capacity doubles (amortised appends) while the budget allows,
 * and is exactly `size` when it does not. Bytes past `n.size` read as zeros.
 */
function reserve(n: FileNode, size: number, budget: MemoryBudget, what: string): void {
  if (size > MAX_MEMORY_FILE_BYTES) throw new WasiError(Errno.FBIG, `${what}: an in-memory file can hold at most ${MAX_MEMORY_FILE_BYTES} bytes`);
  const held = n.owned ? n.data.length : 0;
  if (n.owned && size <= held) return;
  let capacity = Math.max(size, n.owned ? Math.min(MAX_MEMORY_FILE_BYTES, Math.max(held * 2, 64)) : size);
  if (capacity > size && budget.used + (capacity - held) > budget.limit) capacity = size;
  budget.charge(capacity - held, what);
  const grown = new Uint8Array(capacity);
  grown.set(n.data.subarray(0, Math.min(n.size, capacity)));
  n.data = grown;
  n.owned = true;
}

/** Sets a file's size: growth reads as zeros; a file shrunk to under half its capacity gives the rest back. */
function resize(n: FileNode, size: number, budget: MemoryBudget, what = "fd_filestat_set_size"): void {
  if (size > n.size) {
    reserve(n, size, budget, what);
    n.data.fill(0, n.size, size);
  } else if (n.owned && size < n.data.length / 2) {
    budget.release(n.data.length - size);
    n.data = n.data.slice(0, size);
  }
  n.size = size;
}

function releaseContents(n: FileNode, budget: MemoryBudget): void {
  if (n.owned) budget.release(n.data.length);
  n.data = new Uint8Array(0);
  n.owned = true;
  n.size = 0;
}

class MemoryFile implements FileHandle {
  private closed = false;
  constructor(private readonly node: FileNode, private readonly budget: MemoryBudget) {
    node.handles++;
  }

  read(dst: Uint8Array, position: bigint): number {
    const n = this.node;
    if (position >= BigInt(n.size)) return 0;
    const start = Number(position);
    const count = Math.min(dst.length, n.size - start);
    dst.set(n.data.subarray(start, start + count));
    return count;
  }

  write(src: Uint8Array, position: bigint | null): number {
    const n = this.node;
    const start = position === null ? n.size : Number(position);
    const end = start + src.length;
    if (position !== null && position > BigInt(MAX_MEMORY_FILE_BYTES)) throw new WasiError(Errno.FBIG, `fd_write: an in-memory file can hold at most ${MAX_MEMORY_FILE_BYTES} bytes`);
    reserve(n, Math.max(end, n.size), this.budget, "fd_write");
    // The bytes between the old end and a write past it read as zeros.
    if (start > n.size) n.data.fill(0, n.size, start);
    n.data.set(src, start);
    if (end > n.size) n.size = end;
    n.mtim = n.ctim = now();
    return src.length;
  }

  stat(): Stat {
    return statOf(this.node);
  }

  setSize(size: bigint): void {
    if (size > BigInt(MAX_MEMORY_FILE_BYTES)) throw new WasiError(Errno.FBIG, `fd_filestat_set_size: an in-memory file can hold at most ${MAX_MEMORY_FILE_BYTES} bytes`);
    resize(this.node, Number(size), this.budget);
    this.node.mtim = this.node.ctim = now();
  }

  setTimes(atim: bigint | null, mtim: bigint | null): void {
    if (atim !== null) this.node.atim = atim;
    if (mtim !== null) this.node.mtim = mtim;
    this.node.ctim = now();
  }

  allocate(offset: bigint, len: bigint): void {
    const end = offset + len;
    if (end > BigInt(this.node.size)) this.setSize(end);
  }

  sync(): void {}
  datasync(): void {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // An unlinked file's contents live until its last handle closes, as on a disk.
    if (--this.node.handles === 0 && this.node.nlink === 0n) releaseContents(this.node, this.budget);
  }
}
