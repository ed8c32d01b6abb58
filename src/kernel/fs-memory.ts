import { Errno, FileType } from "./abi.js";
import { WasiError } from "./errors.js";
import type { DirEntry, DirHandle, FileHandle, FsBackend, Lookup, OpenFileOptions, Stat } from "./vfs.js";
import type { TimeSpec } from "./file-times.js";

/** Device number reported for in-memory files, so (dev, ino) never collides with a host file. */
const MEMORY_DEV = 0x756e6977n; // "uniw"
/** Largest in-memory file (EFBIG past it); the instance's total is bounded by its MemoryBudget. */
export const MAX_MEMORY_FILE_BYTES = 1 << 30;
/** Default total of an instance's in-memory directories (`memDirBytes` in Limits). */
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
  /** Where ".." leads (null for the root, whose parent the guest never sees). */
  parent: DirNode | null;
  /** Removed (rmdir, or replaced by a rename) while a descriptor may still hold it. */
  removed: boolean;
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
  readonly root: DirNode;

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
          this.mkdir(dir, part);
          next = dir.entries.get(part)!;
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
    return this.stamp({ type: FileType.DIRECTORY as const, entries: new Map<string, Node>(), parent: null as DirNode | null, removed: false });
  }
  private newFile(): FileNode {
    return this.stamp({ type: FileType.REGULAR_FILE as const, data: new Uint8Array(0), size: 0, owned: true, handles: 0 });
  }

  private node(dir: DirHandle, name: string): Node {
    const n = (dir as DirNode).entries.get(name);
    if (!n) throw new WasiError(Errno.NOENT, `${name} does not exist`);
    return n;
  }

  /** A directory that can take a new entry: one removed since it was opened cannot (ENOENT, as on a disk). */
  private live(dir: DirHandle): DirNode {
    const d = dir as DirNode;
    if (d.removed) throw new WasiError(Errno.NOENT, "the directory was removed");
    return d;
  }

  private touch(dir: DirNode): void {
    dir.mtim = dir.ctim = now();
  }

  lookup(dir: DirHandle, name: string, _open: boolean): Lookup {
    const n = (dir as DirNode).entries.get(name);
    if (!n) return { kind: "missing" };
    if (n.type === FileType.DIRECTORY) return { kind: "dir", dir: n };
    if (n.type === FileType.SYMBOLIC_LINK) return { kind: "symlink", target: n.target };
    return { kind: "other" };
  }

  // A directory node is its own handle: it follows renames by identity.
  dup(dir: DirHandle): DirHandle {
    return dir;
  }

  release(_dir: DirHandle): void {}

  statDir(dir: DirHandle): Stat {
    return statOf(dir as DirNode);
  }

  parentIno(dir: DirHandle): bigint {
    const d = dir as DirNode;
    return (d.parent ?? d).ino;
  }

  readdir(dir: DirHandle): DirEntry[] {
    return [...(dir as DirNode).entries.entries()]
      .map(([name, child]) => ({ name, ino: child.ino, filetype: child.type }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  setTimesDir(dir: DirHandle, atim: TimeSpec, mtim: TimeSpec): void {
    setTimesOf(dir as DirNode, atim, mtim);
  }

  stat(dir: DirHandle, name: string): Stat {
    return statOf(this.node(dir, name));
  }

  readlink(dir: DirHandle, name: string): string {
    const n = this.node(dir, name);
    if (n.type !== FileType.SYMBOLIC_LINK) throw new WasiError(Errno.INVAL, "not a symbolic link");
    return n.target;
  }

  openFile(dir: DirHandle, name: string, o: OpenFileOptions): FileHandle {
    const d = dir as DirNode;
    let node = d.entries.get(name);
    if (node && o.create && o.exclusive) throw new WasiError(Errno.EXIST);
    if (!node) {
      if (!o.create) throw new WasiError(Errno.NOENT);
      node = this.newFile();
      this.addEntry(this.live(d), name, node, "path_open");
      this.touch(d);
    }
    if (node.type === FileType.SYMBOLIC_LINK) throw new WasiError(Errno.LOOP, "final component is a symlink");
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    if (o.truncate) {
      resize(node, 0, this.budget);
      node.mtim = node.ctim = now();
    }
    return new MemoryFile(node, this.budget);
  }

  mkdir(dir: DirHandle, name: string): void {
    const d = this.live(dir);
    if (d.entries.has(name)) throw new WasiError(Errno.EXIST);
    const child = this.newDir();
    this.addEntry(d, name, child, "path_create_directory");
    child.parent = d;
    d.nlink++;
    this.touch(d);
  }

  rmdir(dir: DirHandle, name: string): void {
    const d = dir as DirNode;
    const n = this.node(d, name);
    if (n.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    if (n.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
    this.removeEntry(d, name, n);
    n.removed = true;
    d.nlink--;
    this.touch(d);
  }

  unlink(dir: DirHandle, name: string): void {
    const d = dir as DirNode;
    const n = this.node(d, name);
    if (n.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    this.removeEntry(d, name, n);
    n.ctim = now();
    this.touch(d);
  }

  rename(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void {
    const src = fromDir as DirNode;
    const dst = this.live(toDir);
    const node = this.node(src, from);
    const existing = dst.entries.get(to);
    if (existing === node) return;
    if (node.type === FileType.DIRECTORY) {
      // A directory cannot move inside itself.
      for (let d: DirNode | null = dst; d; d = d.parent) if (d === node) throw new WasiError(Errno.INVAL, "cannot move a directory inside itself");
      if (existing) {
        if (existing.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
        if (existing.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
      }
    } else if (existing?.type === FileType.DIRECTORY) {
      throw new WasiError(Errno.ISDIR);
    }
    // The new name is charged before anything moves, so ENOSPC leaves the tree as it was.
    this.budget.charge(ENTRY_COST_BYTES + Buffer.byteLength(to), "path_rename");
    if (existing) {
      this.removeEntry(dst, to, existing);
      if (existing.type === FileType.DIRECTORY) {
        existing.removed = true;
        dst.nlink--;
      }
    }
    src.entries.delete(from);
    this.budget.release(ENTRY_COST_BYTES + Buffer.byteLength(from));
    dst.entries.set(to, node);
    if (node.type === FileType.DIRECTORY) {
      node.parent = dst;
      if (src !== dst) {
        src.nlink--;
        dst.nlink++;
      }
    }
    node.ctim = now();
    this.touch(src);
    this.touch(dst);
  }

  link(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void {
    const node = this.node(fromDir, from);
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.PERM, "hard links to directories are not allowed");
    const dst = this.live(toDir);
    if (dst.entries.has(to)) throw new WasiError(Errno.EXIST);
    this.addEntry(dst, to, node, "path_link");
    node.ctim = now();
    this.touch(dst);
  }

  symlink(target: string, dir: DirHandle, name: string): void {
    const d = this.live(dir);
    if (d.entries.has(name)) throw new WasiError(Errno.EXIST);
    this.addEntry(d, name, this.stamp({ type: FileType.SYMBOLIC_LINK as const, target }), "path_symlink");
    this.touch(d);
  }

  setTimes(dir: DirHandle, name: string, atim: TimeSpec, mtim: TimeSpec): void {
    setTimesOf(this.node(dir, name), atim, mtim);
  }

  close(): void {
    // Nothing to release: the tree is garbage-collected with the instance.
  }

  // ---- host-side conveniences (seeding, inspecting in tests); trusted relative paths, no symlinks ----

  private walkRel(rel: string, create: boolean): { dir: DirNode; name: string } {
    const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.length === 0 || parts.includes("..")) throw new RangeError(`not a plain relative path: ${JSON.stringify(rel)}`);
    let dir = this.root;
    for (const part of parts.slice(0, -1)) {
      let next = dir.entries.get(part);
      if (!next && create) {
        this.mkdir(dir, part);
        next = dir.entries.get(part)!;
      }
      if (!next) throw new WasiError(Errno.NOENT, `${part} does not exist`);
      if (next.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR, `${part} is not a directory`);
      dir = next;
    }
    return { dir, name: parts[parts.length - 1]! };
  }

  /** Writes (creating parents) a file at a relative path. */
  writeFile(rel: string, contents: Uint8Array | string): void {
    const { dir, name } = this.walkRel(rel, true);
    const h = this.openFile(dir, name, { read: false, write: true, create: true, exclusive: false, truncate: true, append: false });
    h.write(typeof contents === "string" ? enc.encode(contents) : contents, 0n);
    h.close();
  }

  /** A file's contents, or undefined when there is no such file. */
  readFile(rel: string): Uint8Array | undefined {
    let n: Node | undefined;
    try {
      const { dir, name } = this.walkRel(rel, false);
      n = dir.entries.get(name);
    } catch (err) {
      if (err instanceof WasiError) return undefined;
      throw err;
    }
    return n?.type === FileType.REGULAR_FILE ? n.data.slice(0, n.size) : undefined;
  }

  /** Creates a directory and its parents. */
  mkdirp(rel: string): void {
    const { dir, name } = this.walkRel(rel, true);
    if (!dir.entries.has(name)) this.mkdir(dir, name);
  }

  /** Creates a symlink (creating parents). */
  symlinkAt(target: string, rel: string): void {
    const { dir, name } = this.walkRel(rel, true);
    this.symlink(target, dir, name);
  }

  /** Whether something exists at a relative path (a final symlink is not followed). */
  exists(rel: string): boolean {
    try {
      const { dir, name } = this.walkRel(rel, false);
      return dir.entries.has(name);
    } catch (err) {
      if (err instanceof WasiError) return false;
      throw err;
    }
  }
}

function setTimesOf(n: Node, atim: TimeSpec, mtim: TimeSpec): void {
  const t = now();
  if (atim !== null) n.atim = atim === "now" ? t : atim;
  if (mtim !== null) n.mtim = mtim === "now" ? t : mtim;
  n.ctim = t;
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
 * then takes the room left. Bytes past `n.size` read as zeros. The old copy is
 * garbage until collected: the copies made while growing to a capacity C sum
 * to less than C, so the host holds at most about twice the budget meanwhile.
 */
function reserve(n: FileNode, size: number, budget: MemoryBudget, what: string): void {
  if (size > MAX_MEMORY_FILE_BYTES) throw new WasiError(Errno.FBIG, `${what}: an in-memory file can hold at most ${MAX_MEMORY_FILE_BYTES} bytes`);
  const held = n.owned ? n.data.length : 0;
  if (n.owned && size <= held) return;
  let capacity = Math.max(size, n.owned ? Math.min(MAX_MEMORY_FILE_BYTES, Math.max(held * 2, 64)) : size);
  // Near the limit, take what room is left rather than exactly `size`: growing by a few bytes at a
  // time would copy the file again on every write (and leave each old copy for the collector).
  if (capacity > size && budget.used + (capacity - held) > budget.limit) capacity = Math.max(size, held + (budget.limit - budget.used));
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

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    setTimesOf(this.node, atim, mtim);
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
