import { Errno, FileType } from "./abi.js";
import { WasiError } from "./errors.js";
import type { DirEntry, DirRef, FileHandle, FsBackend, OpenFileOptions, Stat } from "./vfs.js";

/** Device number reported for in-memory files, so (dev, ino) never collides with a host file. */
const MEMORY_DEV = 0x756e6977n; // "uniw"
/** Largest in-memory file, so a guest cannot make the host allocate without bound. */
export const MAX_MEMORY_FILE_BYTES = 1 << 30;

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
  data: Uint8Array;
  size: number;
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

  constructor(seed: Readonly<Record<string, Uint8Array | string>> = {}) {
    this.root = this.newDir();
    for (const [path, contents] of Object.entries(seed)) {
      const parts = path.split("/").filter((p) => p !== "" && p !== ".");
      if (parts.some((p) => p === "..")) throw new Error(`in-memory seed path ${path} must not contain ..`);
      let dir = this.root;
      for (const part of parts.slice(0, -1)) {
        let next = dir.entries.get(part);
        if (!next) {
          next = this.newDir();
          dir.entries.set(part, next);
        }
        if (next.type !== FileType.DIRECTORY) throw new Error(`in-memory seed path ${path}: ${part} is a file`);
        dir = next;
      }
      const name = parts[parts.length - 1];
      if (name === undefined) continue;
      const bytes = typeof contents === "string" ? enc.encode(contents) : contents;
      const file = this.newFile();
      file.data = bytes.slice();
      file.size = bytes.length;
      dir.entries.set(name, file);
    }
  }

  private stamp<T extends Omit<Base, "ino" | "nlink" | "atim" | "mtim" | "ctim">>(n: T): T & Base {
    const t = now();
    return Object.assign(n, { ino: this.nextIno++, nlink: 1n, atim: t, mtim: t, ctim: t });
  }
  private newDir(): DirNode {
    return this.stamp({ type: FileType.DIRECTORY as const, entries: new Map<string, Node>() });
  }
  private newFile(): FileNode {
    return this.stamp({ type: FileType.REGULAR_FILE as const, data: new Uint8Array(0), size: 0 });
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
      dir.entries.set(name, node);
      this.touch(dir);
    }
    if (node.type === FileType.SYMBOLIC_LINK) throw new WasiError(Errno.LOOP, "final component is a symlink");
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    if (o.truncate) {
      node.size = 0;
      node.mtim = node.ctim = now();
    }
    return new MemoryFile(node);
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
    dir.entries.set(name, this.newDir());
    dir.nlink++;
    this.touch(dir);
  }

  rmdir(rel: string): void {
    const { dir, name } = this.parentOf(rel);
    const n = dir.entries.get(name);
    if (!n) throw new WasiError(Errno.NOENT);
    if (n.type !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
    if (n.entries.size > 0) throw new WasiError(Errno.NOTEMPTY);
    dir.entries.delete(name);
    dir.nlink--;
    this.touch(dir);
  }

  unlink(rel: string): void {
    const { dir, name } = this.parentOf(rel);
    const n = dir.entries.get(name);
    if (!n) throw new WasiError(Errno.NOENT);
    if (n.type === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
    dir.entries.delete(name);
    n.nlink--;
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
    src.dir.entries.delete(src.name);
    dst.dir.entries.set(dst.name, node);
    node.ctim = now();
    this.touch(src.dir);
    this.touch(dst.dir);
  }

  link(from: string, to: string): void {
    const node = this.lookup(from);
    if (node.type === FileType.DIRECTORY) throw new WasiError(Errno.PERM, "hard links to directories are not allowed");
    const dst = this.parentOf(to);
    if (dst.dir.entries.has(dst.name)) throw new WasiError(Errno.EXIST);
    dst.dir.entries.set(dst.name, node);
    node.nlink++;
    node.ctim = now();
    this.touch(dst.dir);
  }

  symlink(target: string, rel: string): void {
    const dst = this.parentOf(rel);
    if (dst.dir.entries.has(dst.name)) throw new WasiError(Errno.EXIST);
    dst.dir.entries.set(dst.name, this.stamp({ type: FileType.SYMBOLIC_LINK as const, target }));
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

class MemoryFile implements FileHandle {
  constructor(private readonly node: FileNode) {}

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
    const start = position === null ? n.size : position;
    const end = BigInt(start) + BigInt(src.length);
    if (end > BigInt(MAX_MEMORY_FILE_BYTES)) throw new WasiError(Errno.FBIG, "in-memory file too large");
    this.ensure(Number(end));
    // The bytes between the old end and a write past it read as zeros.
    if (Number(start) > n.size) n.data.fill(0, n.size, Number(start));
    n.data.set(src, Number(start));
    if (Number(end) > n.size) n.size = Number(end);
    n.mtim = n.ctim = now();
    return src.length;
  }

  private ensure(size: number): void {
    const n = this.node;
    if (size <= n.data.length) return;
    const grown = new Uint8Array(Math.min(MAX_MEMORY_FILE_BYTES, Math.max(size, n.data.length * 2, 64)));
    grown.set(n.data.subarray(0, n.size));
    n.data = grown;
  }

  stat(): Stat {
    return statOf(this.node);
  }

  setSize(size: bigint): void {
    if (size > BigInt(MAX_MEMORY_FILE_BYTES)) throw new WasiError(Errno.FBIG, "in-memory file too large");
    const n = this.node;
    const s = Number(size);
    if (s > n.size) {
      this.ensure(s);
      n.data.fill(0, n.size, s);
    }
    n.size = s;
    n.mtim = n.ctim = now();
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
  close(): void {}
}
