import { Errno, FileType } from "./abi.js";
import { WasiError } from "./errors.js";

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
  /** `null` leaves a time unchanged. */
  setTimes(atim: bigint | null, mtim: bigint | null): void;
  allocate(offset: bigint, len: bigint): void;
  sync(): void;
  datasync(): void;
  close(): void;
}

/**
 * Tracks an opened directory across renames, like the fd behind openat(2):
 * `locate` returns the directory's current resolved path, or null when it is
 * gone or no longer inside the backend.
 */
export interface DirRef {
  locate(lastKnown: string): string | null;
  close(): void;
}

/**
 * A filesystem behind a preopen. Paths are *resolved* relative paths ("" is the
 * root, "a/b" a child): `resolvePath` below has already walked them one segment
 * at a time, refused `..` past the base and followed symlinks only inside, so a
 * backend never sees `..`, `.`, empty segments or absolute paths.
 * Errors are thrown as WasiError.
 */
export interface FsBackend {
  readonly kind: "host" | "memory";
  /** Attributes without following a final symlink (lstat). */
  stat(rel: string): Stat;
  /** Attributes following a final symlink (stat). Used after resolution for "follow" lookups. */
  readlink(rel: string): string;
  openFile(rel: string, opts: OpenFileOptions): FileHandle;
  /** A reference to the directory at `rel` that follows it when it is renamed. */
  openDir(rel: string): DirRef;
  /** Entries of a directory, without "." and "..", in a stable order. */
  readdir(rel: string): DirEntry[];
  mkdir(rel: string): void;
  rmdir(rel: string): void;
  unlink(rel: string): void;
  rename(from: string, to: string): void;
  link(from: string, to: string): void;
  symlink(target: string, rel: string): void;
  setTimes(rel: string, atim: bigint | null, mtim: bigint | null): void;
  /** Releases host resources when the instance ends. */
  close(): void;
}

/** Most symlinks followed in one lookup, as Linux's MAXSYMLINKS. */
export const MAX_SYMLINK_HOPS = 40;
/** Longest path accepted from a guest, as Linux's PATH_MAX. */
export const MAX_PATH_BYTES = 4096;

export interface Resolved {
  /** The resolved relative path of the final component. */
  rel: string;
  /** The guest's path ended in "/": the object must be a directory. */
  mustBeDir: boolean;
}

function joinRel(stack: readonly string[]): string {
  return stack.join("/");
}

/**
 * Resolves `path` relative to the directory `base` of `fs`, one segment at a
 * time: `lstat` each intermediate component, follow symlinks only while they
 * stay inside `base`, count hops. `follow` decides whether a final symlink is
 * followed. Escapes (absolute paths, `..` above the base, symlinks leading out)
 * are EPERM, like Wasmtime's cap-std sandbox.
 */
export function resolvePath(fs: FsBackend, base: string, path: string, follow: boolean): Resolved {
  if (path.length === 0) throw new WasiError(Errno.NOENT, "empty path");
  if (path.length > MAX_PATH_BYTES) throw new WasiError(Errno.NAMETOOLONG, "path too long");
  if (path.includes("\0")) throw new WasiError(Errno.INVAL, "path contains NUL");
  if (path.startsWith("/")) throw new WasiError(Errno.PERM, `absolute path ${JSON.stringify(path)} leaves the directory capability`);

  const baseParts = base === "" ? [] : base.split("/");
  const stack = [...baseParts];
  const mustBeDir = path.endsWith("/");
  // Pending components, consumed from the front; symlink targets are spliced in.
  let pending = path.split("/").filter((c) => c !== "");
  let hops = 0;
  if (pending.length === 0) return { rel: joinRel(stack), mustBeDir };

  while (pending.length > 0) {
    const name = pending[0]!;
    pending = pending.slice(1);
    const isFinal = pending.length === 0;
    if (name === ".") {
      if (!isFinal) checkDir(fs, stack);
      continue;
    }
    if (name === "..") {
      if (stack.length <= baseParts.length) throw new WasiError(Errno.PERM, `path ${JSON.stringify(path)} leaves the directory capability`);
      stack.pop();
      continue;
    }
    if (Buffer.byteLength(name) > 255) throw new WasiError(Errno.NAMETOOLONG, "path component too long");
    const candidate = [...stack, name];
    if (isFinal && !follow && !mustBeDir) {
      stack.push(name);
      break;
    }
    let st: Stat;
    try {
      st = fs.stat(joinRel(candidate));
    } catch (err) {
      // A missing final component is for the caller to judge (it may create it).
      if (isFinal && err instanceof WasiError && err.errno === Errno.NOENT) {
        stack.push(name);
        break;
      }
      throw err;
    }
    if (st.filetype === FileType.SYMBOLIC_LINK) {
      if (++hops > MAX_SYMLINK_HOPS) throw new WasiError(Errno.LOOP, "too many levels of symbolic links");
      const target = fs.readlink(joinRel(candidate));
      if (target.startsWith("/")) throw new WasiError(Errno.PERM, `symlink ${name} points to an absolute path`);
      if (target.length === 0) throw new WasiError(Errno.NOENT, `symlink ${name} is empty`);
      const targetParts = target.split("/").filter((c) => c !== "");
      if (target.endsWith("/") && isFinal) targetParts.push(".");
      pending = [...targetParts, ...pending];
      continue;
    }
    if (!isFinal && st.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR, `${name} is not a directory`);
    stack.push(name);
  }
  // A path that ended in "." or ".." names a directory already walked.
  return { rel: joinRel(stack), mustBeDir };
}

function checkDir(fs: FsBackend, stack: string[]): void {
  if (stack.length === 0) return;
  const st = fs.stat(joinRel(stack));
  if (st.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR, "not a directory");
}

/** Splits a resolved relative path into its parent and final name. */
export function splitRel(rel: string): { parent: string; name: string } {
  const i = rel.lastIndexOf("/");
  return i < 0 ? { parent: "", name: rel } : { parent: rel.slice(0, i), name: rel.slice(i + 1) };
}
