import * as nodefs from "node:fs";
import { Errno, FileType } from "./abi.js";
import { WasiError, fromHostError, host } from "./errors.js";
import type { DirEntry, DirHandle, FileHandle, FsBackend, Lookup, OpenFileOptions, Stat } from "./vfs.js";
import { fileTimesSupport, nativeTime, type NativeFileTimes, type TimeSpec } from "./file-times.js";

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_DIRECTORY } = nodefs.constants;

function fileTypeOf(st: nodefs.BigIntStats | nodefs.Dirent): FileType {
  if (st.isFile()) return FileType.REGULAR_FILE;
  if (st.isDirectory()) return FileType.DIRECTORY;
  if (st.isSymbolicLink()) return FileType.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return FileType.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return FileType.BLOCK_DEVICE;
  if (st.isSocket()) return FileType.SOCKET_STREAM;
  return FileType.UNKNOWN;
}

const MAX_SAFE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER);

/** Seconds as Node's utimes wants them (the fallback only). */
const nsToSeconds = (ns: bigint): number => Number(ns) / 1e9;

/** The realtime clock in ns, for "now" in the fallback. */
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/**
 * How a HostFs sets file times. With the native addon (file-times.ts),
 * utimensat/futimens set each time to the nanosecond and leave the other
 * untouched (UTIME_OMIT), or take the host's clock (UTIME_NOW).
 *
 * Without it, Node's utimes takes seconds as a double (sub-microsecond
 * digits are lost) and must rewrite both times, so the fallback remembers,
 * per inode, the exact value a guest set (or saw, for the one it left) next
 * to what the host stored; a stat that still sees the stored value reports
 * the exact one. Exact inside the instance; microseconds on disk.
 */
class FileTimes {
  private readonly map = new Map<string, { hostA: bigint; wantA: bigint; hostM: bigint; wantM: bigint }>();
  constructor(readonly native: NativeFileTimes | null) {}

  /**
   * Sets times through `apply` (which gets the two as Node's utimes wants them)
   * in the fallback: `raw` reads the host's stat before and after.
   */
  fallback(raw: () => Stat, atim: TimeSpec, mtim: TimeSpec, apply: (a: number, m: number) => void): void {
    const seen = this.apply(raw());
    const now = nowNs();
    const a = atim === "now" ? now : atim ?? seen.atim;
    const m = mtim === "now" ? now : mtim ?? seen.mtim;
    apply(nsToSeconds(a), nsToSeconds(m));
    const after = raw();
    this.map.set(`${after.dev}:${after.ino}`, { hostA: after.atim, wantA: a, hostM: after.mtim, wantM: m });
  }

  apply(st: Stat): Stat {
    if (this.map.size === 0) return st;
    const o = this.map.get(`${st.dev}:${st.ino}`);
    if (!o) return st;
    if (o.hostA === st.atim) st.atim = o.wantA;
    if (o.hostM === st.mtim) st.mtim = o.wantM;
    return st;
  }
}

function toStat(st: nodefs.BigIntStats): Stat {
  return {
    dev: st.dev,
    ino: st.ino,
    filetype: fileTypeOf(st),
    nlink: st.nlink,
    size: st.size,
    atim: st.atimeNs,
    mtim: st.mtimeNs,
    ctim: st.ctimeNs,
  };
}

class HostFile implements FileHandle {
  private closed = false;
  constructor(
    private readonly fd: number,
    private readonly times: FileTimes,
    private readonly registry: Set<HostFile>,
  ) {
    registry.add(this);
  }

  read(dst: Uint8Array, position: bigint): number {
    // A number position takes Node's faster path; offsets past 2^53 keep the bigint.
    const pos = position <= MAX_SAFE_OFFSET ? Number(position) : position;
    return host("read", () => nodefs.readSync(this.fd, dst, 0, dst.length, pos));
  }

  write(src: Uint8Array, position: bigint | null): number {
    const pos = position ?? this.stat().size;
    if (pos > MAX_SAFE_OFFSET) throw new WasiError(Errno.FBIG, "offset beyond what the host can address");
    // writeSync takes a number position (bigint is silently ignored by Node 20).
    return host("write", () => nodefs.writeSync(this.fd, src, 0, src.length, Number(pos)));
  }

  private rawStat(): Stat {
    return toStat(host("fstat", () => nodefs.fstatSync(this.fd, { bigint: true })));
  }

  stat(): Stat {
    return this.times.apply(this.rawStat());
  }

  setSize(size: bigint): void {
    // Node takes a number; past 2^53 it would throw a RangeError instead of the host's EFBIG.
    if (size > MAX_SAFE_OFFSET) throw new WasiError(Errno.FBIG, "size beyond what the host can address");
    host("ftruncate", () => nodefs.ftruncateSync(this.fd, Number(size)));
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    const native = this.times.native;
    if (native) host("futimens", () => native.futimens(this.fd, nativeTime(atim), nativeTime(mtim)));
    else this.times.fallback(() => this.rawStat(), atim, mtim, (a, m) => host("futimes", () => nodefs.futimesSync(this.fd, a, m)));
  }

  allocate(offset: bigint, len: bigint): void {
    const end = offset + len;
    if (this.stat().size < end) this.setSize(end);
  }

  sync(): void {
    host("fsync", () => nodefs.fsyncSync(this.fd));
  }

  datasync(): void {
    host("fdatasync", () => nodefs.fdatasyncSync(this.fd));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    host("close", () => nodefs.closeSync(this.fd));
  }
}

/**
 * Linux's O_PATH (not among Node's constants; the same value on every
 * architecture Node supports on Linux): a handle to a directory that is only
 * used as the starting point of lookups, so a directory the host user may
 * search but not list can still be walked through, as with lstat.
 */
const O_PATH = 0o10000000;

/**
 * An open host directory. Node has no openat(2), but Linux names an open
 * descriptor's file at /proc/self/fd/N, and a lookup of "/proc/self/fd/N/name"
 * starts from that very directory (a magic link, not a path), so
 * `${dir.path}/${name}` is openat(N, name) for every call that takes a path.
 */
class HostDir {
  readonly path: string;
  constructor(readonly fd: number) {
    this.path = `/proc/self/fd/${fd}`;
  }
}

const DIR_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW;

/**
 * A host directory behind a preopen, walked by descriptor (see vfs.ts): every
 * call names one entry in a directory held open by handle, through
 * /proc/self/fd, and final components are opened with O_NOFOLLOW. A path is
 * never re-joined from checked strings, so a directory swapped for a symlink
 * by another writer of the same host directory cannot redirect a call outside.
 */
export class HostFs implements FsBackend {
  readonly kind = "host" as const;
  private readonly times: FileTimes;
  private readonly open = new Set<HostFile>();
  private readonly dirs = new Set<HostDir>();
  readonly root: HostDir;

  /** `nativeTimes: false` uses Node's utimes even when the addon is there (tests of the fallback). */
  constructor(root: string, options: { nativeTimes?: boolean } = {}) {
    this.times = new FileTimes(options.nativeTimes === false ? null : fileTimesSupport().native);
    const st = host("stat", () => nodefs.statSync(root));
    if (!st.isDirectory()) throw new WasiError(Errno.NOTDIR, `${root} is not a directory`);
    if (!nodefs.existsSync("/proc/self/fd")) throw new Error("host directories need Linux's /proc (to walk paths by descriptor)");
    this.root = new HostDir(host("open", () => nodefs.openSync(root, O_PATH | O_DIRECTORY)));
  }

  private at(dir: DirHandle, name: string): string {
    return `${(dir as HostDir).path}/${name}`;
  }

  private track(fd: number): HostDir {
    const d = new HostDir(fd);
    this.dirs.add(d);
    return d;
  }

  lookup(dir: DirHandle, name: string, open: boolean): Lookup {
    const path = this.at(dir, name);
    // A name can change between the open and the lstat that explains its failure; look again a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (open) {
        try {
          return { kind: "dir", dir: this.track(nodefs.openSync(path, DIR_FLAGS)) };
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") return { kind: "missing" };
          if (code !== "ENOTDIR" && code !== "ELOOP") throw fromHostError(err, "open");
        }
      }
      let st: nodefs.Stats;
      try {
        st = nodefs.lstatSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
        throw fromHostError(err, "lstat");
      }
      if (st.isSymbolicLink()) {
        try {
          return { kind: "symlink", target: nodefs.readlinkSync(path, "utf8") };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EINVAL") continue; // no longer a link
          throw fromHostError(err, "readlink");
        }
      }
      if (!st.isDirectory()) return { kind: "other" };
      if (!open) return { kind: "dir", dir: null };
      // A directory now, though the open said otherwise: it was just swapped in; look again.
    }
    throw new WasiError(Errno.AGAIN, `${name} keeps changing while it is looked up`);
  }

  dup(dir: DirHandle): DirHandle {
    return this.track(host("open", () => nodefs.openSync((dir as HostDir).path, O_PATH | O_DIRECTORY)));
  }

  release(dir: DirHandle): void {
    const d = dir as HostDir;
    if (d === this.root || !this.dirs.delete(d)) return;
    nodefs.closeSync(d.fd);
  }

  statDir(dir: DirHandle): Stat {
    return this.times.apply(toStat(host("fstat", () => nodefs.fstatSync((dir as HostDir).fd, { bigint: true }))));
  }

  parentIno(dir: DirHandle): bigint {
    // The root's parent is outside the capability: report the root itself, as for ".." at the top.
    if (dir === this.root) return this.statDir(dir).ino;
    return host("lstat", () => nodefs.lstatSync(`${(dir as HostDir).path}/..`, { bigint: true })).ino;
  }

  readdir(dir: DirHandle): DirEntry[] {
    const d = dir as HostDir;
    const entries = host("readdir", () => nodefs.readdirSync(d.path, { withFileTypes: true }));
    const out: DirEntry[] = [];
    for (const e of entries) {
      let ino = 0n;
      try {
        ino = nodefs.lstatSync(`${d.path}/${e.name}`, { bigint: true }).ino;
      } catch {
        continue; // removed since the listing
      }
      out.push({ name: e.name, ino, filetype: fileTypeOf(e) });
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  setTimesDir(dir: DirHandle, atim: TimeSpec, mtim: TimeSpec): void {
    const d = dir as HostDir;
    // Following /proc/self/fd/N reaches the directory the magic link names (an O_PATH fd refuses futimens).
    const native = this.times.native;
    if (native) host("utimensat", () => native.utimensat(d.path, nativeTime(atim), nativeTime(mtim), false));
    else this.times.fallback(() => toStat(host("fstat", () => nodefs.fstatSync(d.fd, { bigint: true }))), atim, mtim, (a, m) => host("utimes", () => nodefs.utimesSync(d.path, a, m)));
  }

  stat(dir: DirHandle, name: string): Stat {
    return this.times.apply(toStat(host("lstat", () => nodefs.lstatSync(this.at(dir, name), { bigint: true }))));
  }

  readlink(dir: DirHandle, name: string): string {
    return host("readlink", () => nodefs.readlinkSync(this.at(dir, name), "utf8"));
  }

  openFile(dir: DirHandle, name: string, o: OpenFileOptions): FileHandle {
    let flags = o.read && o.write ? O_RDWR : o.write ? O_WRONLY : O_RDONLY;
    if (o.create) flags |= O_CREAT;
    if (o.exclusive) flags |= O_EXCL;
    if (o.truncate) flags |= O_TRUNC;
    flags |= O_NOFOLLOW;
    const fd = host("open", () => nodefs.openSync(this.at(dir, name), flags, 0o644));
    return new HostFile(fd, this.times, this.open);
  }

  mkdir(dir: DirHandle, name: string): void {
    host("mkdir", () => nodefs.mkdirSync(this.at(dir, name), 0o755));
  }

  rmdir(dir: DirHandle, name: string): void {
    host("rmdir", () => nodefs.rmdirSync(this.at(dir, name)));
  }

  unlink(dir: DirHandle, name: string): void {
    host("unlink", () => nodefs.unlinkSync(this.at(dir, name)));
  }

  rename(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void {
    host("rename", () => nodefs.renameSync(this.at(fromDir, from), this.at(toDir, to)));
  }

  link(fromDir: DirHandle, from: string, toDir: DirHandle, to: string): void {
    // link(2) does not follow a symlink as its source: the link itself is linked.
    host("link", () => nodefs.linkSync(this.at(fromDir, from), this.at(toDir, to)));
  }

  symlink(target: string, dir: DirHandle, name: string): void {
    host("symlink", () => nodefs.symlinkSync(target, this.at(dir, name)));
  }

  setTimes(dir: DirHandle, name: string, atim: TimeSpec, mtim: TimeSpec): void {
    const path = this.at(dir, name);
    const native = this.times.native;
    if (native) host("utimensat", () => native.utimensat(path, nativeTime(atim), nativeTime(mtim), true));
    else this.times.fallback(() => toStat(host("lstat", () => nodefs.lstatSync(path, { bigint: true }))), atim, mtim, (a, m) => host("utimes", () => nodefs.lutimesSync(path, a, m)));
  }

  close(): void {
    for (const f of [...this.open]) {
      try {
        f.close();
      } catch {
        // already gone; nothing to release
      }
    }
    this.open.clear();
    for (const d of [...this.dirs]) this.release(d);
    try {
      nodefs.closeSync(this.root.fd);
    } catch {
      // closed already
    }
  }
}
