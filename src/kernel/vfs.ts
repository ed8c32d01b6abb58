import { Errno, FileType } from "./abi.js";
import { WasiError } from "./errors.js";
import { HOST_FUEL, type HostWork } from "./host-work.js";
import type { TimeSpec } from "./file-times.js";

/** File attributes as WASI's `filestat` carries them (times in ns since the epoch). */
export interface Stat {
  dev: bigint;
  ino: bigint;
  filetype: FileType;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

export interface DirEntry {
  name: string;
  ino: bigint;
  filetype: FileType;
}

export interface OpenFileOptions {
  read: boolean;
  write: boolean;
  create: boolean;
  exclusive: boolean;
  truncate: boolean;
  append: boolean;
}

/** An open regular file (or other non-directory node) of a backend. */
export interface FileHandle {
  /** Reads at `position` into `dst`; returns bytes read (0 at end of file). */
  read(dst: Uint8Array, position: bigint): number;
  /** Writes at `position`, or at the end when `position` is null (append). */
  write(src: Uint8Array, position: bigint | null): number;
  stat(): Stat;
  setSize(size: bigint): void;
  /** `null` leaves a time unchanged; "now" takes the host's clock. */
  setTimes(atim: TimeSpec, mtim: TimeSpec): void;
  allocate(offset: bigint, len: bigint): void;
  sync(): void;
  datasync(): void;
  close(): void;
}

/**
 * An open directory of a backend, like the fd behind openat(2): it is the
 * directory itself, not a path, so it follows the directory when it is
 * renamed and a symlink planted under its old name does not redirect it.
 * Opaque outside its backend; only the backend that made it may be given it.
 */
export type DirHandle = object;

/** What one name in a directory is, as the resolver needs to know it. */
export type Lookup =
  /** A directory, opened as a new handle (when asked to open it): the caller releases it. */
  | { kind: "dir"; dir: DirHandle | null }
  | { kind: "symlink"; target: string }
  /** Anything else: a regular file, a device, a socket. */
  | { kind: "other" }
  | { kind: "missing" };

/**
 * A filesystem behind a preopen, addressed by directory handle and one name:
 * every call names an entry `name` directly inside the directory `dir` (never
 * a path, never ".", ".." or "": `resolve` below has walked the path one
 * component at a time, holding each directory by handle). Nothing ever
 * re-joins a checked path string, so a directory swapped for a symlink while
 * a call runs cannot redirect it. Operations on a final name do not follow a
 * symlink there (O_NOFOLLOW). Errors are thrown as WasiError.
 */
export interface FsBackend {
  readonly kind: "host" | "memory";
  /** The preopen's own directory. Owned by the backend: never released by callers. */
  readonly root: DirHandle;
  /**
   * What `name` in `dir` is, without following a symlink. With `open`, a
   * directory is opened as a new handle (released with `release`).
   */
  lookup(dir: DirHandle, name: string, open: boolean): Lookup;
  /** A second handle to the same directory (the caller releases both). */
  dup(dir: DirHandle): DirHandle;
  /** Releases a handle from `lookup(…, true)` or `dup`; the root is never released. */
  release(dir: DirHandle): void;
  /** Attributes of the directory itself. */
  statDir(dir: DirHandle): Stat;
  /** Inode of the directory's parent (its own for the root, which has none the guest can see). */
  parentIno(dir: DirHandle): bigint;
  /** Entries of the directory, without "." and "..", in a stable order. */
  readdir(dir: DirHandle): DirEntry[];
  setTimesDir(dir: DirHandle, atim: TimeSpec, mtim: TimeSpec): void;
  /** Attributes of `name` in `dir`, not following a symlink (lstat). */
  stat(dir: DirHandle, name: string): Stat;
  readlink(dir: DirHandle, name: string): string;
  openFile(dir: DirHandle, name: string, opts: OpenFileOptions): FileHandle;
  mkdir(dir: DirHandle, name: string): void;
  rmdir(dir: DirHandle, name: string): void;
  unlink(dir: DirHandle, name: string): void;
  rename(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void;
  link(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void;
  symlink(target: string, dir: DirHandle, name: string): void;
  setTimes(dir: DirHandle, name: string, atim: TimeSpec, mtim: TimeSpec): void;
  /** Releases host resources when the instance ends. */
  close(): void;
}

/** Most symlinks followed in one lookup, as Linux's MAXSYMLINKS. */
export const MAX_SYMLINK_HOPS = 40;
/** Longest path (and symlink target) accepted from a guest: Linux's PATH_MAX. */
export const MAX_PATH_BYTES = 4096;
/** Longest name of one component (NAME_MAX). */
export const MAX_NAME_BYTES = 255;
/**
 * Most components one resolution consumes: length × hops. It follows from the
 * limits above (a path or a symlink target has at most PATH_MAX/2 components,
 * and at most MAX_SYMLINK_HOPS targets are spliced in), so a resolution's work
 * is linear in what it walks and bounded; it is stated and checked so that the
 * bound is visible. Linux resolves the same paths (it nests up to 40 links,
 * each up to PATH_MAX).
 */
export const MAX_RESOLVE_STEPS = (MAX_SYMLINK_HOPS + 1) * (MAX_PATH_BYTES / 2);
/**
 * Ancestor directory handles a resolution keeps open for ".."; above that it
 * walks down again from the nearest one it holds (each step checked again).
 * Bounds the host descriptors one call can hold.
 */
export const MAX_HELD_DIRS = 64;


/** Where a path led. The caller uses it, then calls `release()` (exactly once). */
export interface Resolved {
  /** The directory that holds the final component (a held handle). */
  dir: DirHandle;
  /**
   * The final component's name in `dir`, or null when the path named a
   * directory itself ("." or ".." last, or only "."): then `dir` is it.
   */
  name: string | null;
  /** The guest's path ended in "/": the object must be a directory. */
  mustBeDir: boolean;
  /** `dir` is the directory the walk started from (the base). */
  atBase: boolean;
  release(): void;
}

/**
 * Resolves `path` relative to the directory `base` of `fs`, like openat(2)
 * with RESOLVE_BENEATH, one component at a time: each intermediate directory
 * is opened by handle from the one before (the backend opens it without
 * following a symlink), a symlink is followed only by splicing its relative
 * target into what is left to walk, and ".." pops back to the handle held
 * for the parent — never above `base` (EPERM), never on the host's "..".
 * `follow` decides whether a final symlink is followed. Escapes (absolute
 * paths and targets, ".." above the base) are EPERM, as Wasmtime's cap-std.
 *
 * Bounds: PATH_MAX per path and symlink target, NAME_MAX per component
 * (ENAMETOOLONG), 40 symlinks (ELOOP), so the work is at most
 * MAX_RESOLVE_STEPS components, each O(1): each is charged to `work`
 * (HOST_FUEL.step, and HOST_FUEL.lookup per lookup).
 */
export function resolve(fs: FsBackend, base: DirHandle, path: string, follow: boolean, work?: HostWork): Resolved {
  if (path.length === 0) throw new WasiError(Errno.NOENT, "empty path");
  if (path.length > MAX_PATH_BYTES || Buffer.byteLength(path) > MAX_PATH_BYTES) throw new WasiError(Errno.NAMETOOLONG, "path too long");
  if (path.includes("\0")) throw new WasiError(Errno.INVAL, "path contains NUL");
  if (path.startsWith("/")) throw new WasiError(Errno.PERM, `absolute path ${JSON.stringify(path)} leaves the directory capability`);

  const mustBeDir = path.endsWith("/");
  const walk = new Walk(fs, base);
  try {
    // Pending components, last one first, so taking the next and splicing a target are O(1) per component.
    const pending = path.split("/").filter((c) => c !== "").reverse();
    let hops = 0;
    let steps = 0;
    while (pending.length > 0) {
      const name = pending.pop()!;
      const isFinal = pending.length === 0;
      if (++steps > MAX_RESOLVE_STEPS) throw new WasiError(Errno.NAMETOOLONG, "path resolution too long");
      work?.(HOST_FUEL.step);
      if (name === ".") {
        if (isFinal) return walk.self(mustBeDir);
        continue;
      }
      if (name === "..") {
        if (walk.depth === 0) throw new WasiError(Errno.PERM, `path ${JSON.stringify(path)} leaves the directory capability`);
        work?.(HOST_FUEL.lookup);
        walk.up();
        if (isFinal) return walk.self(mustBeDir);
        continue;
      }
      if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new WasiError(Errno.NAMETOOLONG, "path component too long");
      if (isFinal && !follow && !mustBeDir) return walk.child(name, mustBeDir);
      work?.(HOST_FUEL.lookup);
      const found = fs.lookup(walk.current, name, !isFinal);
      switch (found.kind) {
        case "symlink": {
          if (++hops > MAX_SYMLINK_HOPS) throw new WasiError(Errno.LOOP, "too many levels of symbolic links");
          const target = found.target;
          if (target.startsWith("/")) throw new WasiError(Errno.PERM, `symlink ${name} points to an absolute path`);
          if (target.length === 0) throw new WasiError(Errno.NOENT, `symlink ${name} is empty`);
          if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw new WasiError(Errno.NAMETOOLONG, `symlink ${name} has a target longer than PATH_MAX`);
          const parts = target.split("/").filter((c) => c !== "");
          if (target.endsWith("/") && isFinal) parts.push(".");
          for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!);
          continue;
        }
        case "missing":
          // A missing final component is for the caller to judge (it may create it).
          if (isFinal) return walk.child(name, mustBeDir);
          throw new WasiError(Errno.NOENT, `${name} does not exist`);
        case "other":
          if (isFinal) return walk.child(name, mustBeDir);
          throw new WasiError(Errno.NOTDIR, `${name} is not a directory`);
        case "dir":
          if (isFinal) return walk.child(name, mustBeDir);
          walk.down(name, found.dir!);
      }
    }
    // Only separators (impossible: a path not starting with "/" has a component) or a path ending in "." / "..".
    return walk.self(mustBeDir);
  } catch (err) {
    walk.releaseAll();
    throw err;
  }
}

/**
 * The directories a resolution is in: the base, then one held handle per
 * level below it (the newest MAX_HELD_DIRS of them; older ones are released
 * and opened again by name from the nearest held ancestor when ".." needs them).
 */
class Walk {
  private readonly names: string[] = [];
  private readonly held: (DirHandle | null)[] = [];

  constructor(private readonly fs: FsBackend, private readonly base: DirHandle) {}

  get depth(): number {
    return this.names.length;
  }

  get current(): DirHandle {
    return this.held.length === 0 ? this.base : this.held[this.held.length - 1]!;
  }

  down(name: string, dir: DirHandle): void {
    this.names.push(name);
    this.held.push(dir);
    const old = this.held.length - 1 - MAX_HELD_DIRS;
    if (old >= 0 && this.held[old]) {
      this.fs.release(this.held[old]!);
      this.held[old] = null;
    }
  }

  up(): void {
    this.names.pop();
    this.fs.release(this.held.pop()!);
    const top = this.held.length - 1;
    if (top >= 0 && this.held[top] === null) this.reopen(top);
  }

  /** Opens level `i` again from the nearest held ancestor, one checked component at a time. */
  private reopen(i: number): void {
    let from = i - 1;
    while (from >= 0 && this.held[from] === null) from--;
    let dir = from < 0 ? this.base : this.held[from]!;
    for (let j = from + 1; j <= i; j++) {
      const found = this.fs.lookup(dir, this.names[j]!, true);
      if (found.kind !== "dir") throw new WasiError(Errno.NOENT, "a directory on the path was moved or replaced during the lookup");
      dir = found.dir!;
      if (j < i) this.fs.release(dir);
    }
    this.held[i] = dir;
  }

  /** The result `name` in the current directory; every other held handle is released. */
  child(name: string, mustBeDir: boolean): Resolved {
    return this.result(name, mustBeDir);
  }

  /** The result "the current directory itself". */
  self(mustBeDir: boolean): Resolved {
    return this.result(null, mustBeDir);
  }

  private result(name: string | null, mustBeDir: boolean): Resolved {
    const dir = this.current;
    const atBase = this.held.length === 0;
    // Keep only the handle the result refers to.
    for (let i = 0; i < this.held.length - 1; i++) if (this.held[i]) this.fs.release(this.held[i]!);
    const fs = this.fs;
    let released = false;
    return {
      dir,
      name,
      mustBeDir,
      atBase,
      release: () => {
        if (released || atBase) return;
        released = true;
        fs.release(dir);
      },
    };
  }

  releaseAll(): void {
    for (const h of this.held) if (h) this.fs.release(h);
    this.held.length = 0;
  }
}
