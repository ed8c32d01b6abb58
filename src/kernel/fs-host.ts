import * as nodefs from "node:fs";
import { join } from "node:path";
import type { DirRef } from "./vfs.js";
import { Errno, FileType } from "./abi.js";
import { WasiError, host } from "./errors.js";
import type { DirEntry, FileHandle, FsBackend, OpenFileOptions, Stat } from "./vfs.js";

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

/** Seconds as Node's utimes wants them; ns precision is restored by TimeOverrides. */
const nsToSeconds = (ns: bigint): number => Number(ns) / 1e9;

/**
 * Node can only set times as doubles (sub-microsecond precision is lost), but
 * WASI guests set and read back exact nanoseconds. We remember, per inode, the
 * exact value a guest set and the value the host stored; a stat that still sees
 * the stored value reports the exact one.
 */
class TimeOverrides {
  private readonly map = new Map<string, { hostA: bigint; wantA: bigint; hostM: bigint; wantM: bigint }>();

  record(before: Stat, after: Stat, wantA: bigint | null, wantM: bigint | null): void {
    const key = `${after.dev}:${after.ino}`;
    const prev = this.map.get(key);
    this.map.set(key, {
      hostA: after.atim,
      wantA: wantA ?? (prev && prev.hostA === before.atim ? prev.wantA : after.atim),
      hostM: after.mtim,
      wantM: wantM ?? (prev && prev.hostM === before.mtim ? prev.wantM : after.mtim),
    });
  }

  apply(st: Stat): Stat {
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
    private readonly times: TimeOverrides,
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

  stat(): Stat {
    return this.times.apply(toStat(host("fstat", () => nodefs.fstatSync(this.fd, { bigint: true }))));
  }

  setSize(size: bigint): void {
    // Node takes a number; past 2^53 it would throw a RangeError instead of the host's EFBIG.
    if (size > MAX_SAFE_OFFSET) throw new WasiError(Errno.FBIG, "size beyond what the host can address");
    host("ftruncate", () => nodefs.ftruncateSync(this.fd, Number(size)));
  }

  setTimes(atim: bigint | null, mtim: bigint | null): void {
    const before = this.stat();
    const a = atim ?? before.atim;
    const m = mtim ?? before.mtim;
    host("futimes", () => nodefs.futimesSync(this.fd, nsToSeconds(a), nsToSeconds(m)));
    this.times.record(before, toStat(nodefs.fstatSync(this.fd, { bigint: true })), atim, mtim);
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
 * An opened host directory. Linux names its current path at
 * /proc/self/fd/N, which follows renames as openat(2) would.
 */
class HostDirRef implements DirRef {
  private closed = false;
  constructor(private readonly fd: number, private readonly root: string, private readonly registry: Set<HostDirRef>) {
    registry.add(this);
  }

  locate(lastKnown: string): string | null {
    let path: string;
    try {
      path = nodefs.readlinkSync(`/proc/self/fd/${this.fd}`);
    } catch {
      return lastKnown; // no procfs: the caller's identity checks still apply
    }
    if (path.endsWith(" (deleted)")) return null;
    if (path === this.root) return "";
    if (!path.startsWith(this.root + "/")) return null;
    return path.slice(this.root.length + 1);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    nodefs.closeSync(this.fd);
  }
}

/**
 * A host directory behind a preopen. Every path it receives was resolved by
 * `resolvePath` (no `..`, no symlink except possibly the final component), and
 * final components are opened with O_NOFOLLOW, so a symlink swapped in after
 * the check cannot redirect an open outside the root.
 */
export class HostFs implements FsBackend {
  readonly kind = "host" as const;
  private readonly times = new TimeOverrides();
  private readonly open = new Set<HostFile>();

  readonly root: string;
  private readonly dirs = new Set<HostDirRef>();

  constructor(root: string) {
    const st = host("stat", () => nodefs.statSync(root));
    if (!st.isDirectory()) throw new WasiError(Errno.NOTDIR, `${root} is not a directory`);
    // Canonical, so that the paths /proc reports for opened directories compare with it.
    this.root = nodefs.realpathSync(root);
  }

  openDir(rel: string): DirRef {
    const fd = host("open", () => nodefs.openSync(this.abs(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    const ref = new HostDirRef(fd, this.root, this.dirs);
    return ref;
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : join(this.root, rel);
  }

  stat(rel: string): Stat {
    return this.times.apply(toStat(host("lstat", () => nodefs.lstatSync(this.abs(rel), { bigint: true }))));
  }

  readlink(rel: string): string {
    return host("readlink", () => nodefs.readlinkSync(this.abs(rel), "utf8"));
  }

  openFile(rel: string, o: OpenFileOptions): FileHandle {
    let flags = o.read && o.write ? O_RDWR : o.write ? O_WRONLY : O_RDONLY;
    if (o.create) flags |= O_CREAT;
    if (o.exclusive) flags |= O_EXCL;
    if (o.truncate) flags |= O_TRUNC;
    flags |= O_NOFOLLOW;
    const fd = host("open", () => nodefs.openSync(this.abs(rel), flags, 0o644));
    return new HostFile(fd, this.times, this.open);
  }

  readdir(rel: string): DirEntry[] {
    const dir = this.abs(rel);
    // Opening with O_DIRECTORY|O_NOFOLLOW first makes a swapped-in symlink fail instead of being listed.
    const fd = host("open", () => nodefs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    nodefs.closeSync(fd);
    const entries = host("readdir", () => nodefs.readdirSync(dir, { withFileTypes: true }));
    const out: DirEntry[] = [];
    for (const e of entries) {
      let ino = 0n;
      try {
        ino = nodefs.lstatSync(join(dir, e.name), { bigint: true }).ino;
      } catch {
        continue; // removed since the listing
      }
      out.push({ name: e.name, ino, filetype: fileTypeOf(e) });
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  mkdir(rel: string): void {
    host("mkdir", () => nodefs.mkdirSync(this.abs(rel), 0o755));
  }

  rmdir(rel: string): void {
    host("rmdir", () => nodefs.rmdirSync(this.abs(rel)));
  }

  unlink(rel: string): void {
    host("unlink", () => nodefs.unlinkSync(this.abs(rel)));
  }

  rename(from: string, to: string): void {
    host("rename", () => nodefs.renameSync(this.abs(from), this.abs(to)));
  }

  link(from: string, to: string): void {
    host("link", () => nodefs.linkSync(this.abs(from), this.abs(to)));
  }

  symlink(target: string, rel: string): void {
    host("symlink", () => nodefs.symlinkSync(target, this.abs(rel)));
  }

  setTimes(rel: string, atim: bigint | null, mtim: bigint | null): void {
    const before = this.stat(rel);
    const a = atim ?? before.atim;
    const m = mtim ?? before.mtim;
    host("utimes", () => nodefs.lutimesSync(this.abs(rel), nsToSeconds(a), nsToSeconds(m)));
    this.times.record(before, this.stat(rel), atim, mtim);
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
    for (const d of [...this.dirs]) d.close();
  }
}
