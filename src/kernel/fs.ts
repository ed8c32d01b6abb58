import { Errno, FdFlags, FileType, FstFlags, LookupFlags, OFlags, Rights, RIGHTS_ALL, RIGHTS_DIR, RIGHTS_FILE, RIGHTS_MUTATING, Whence } from "./abi.js";
import { WasiError } from "./errors.js";
import type { Descriptor, DescriptorTable, DirDescriptor, FileDescriptor } from "./descriptors.js";
import type { Buffers } from "./memory.js";
import { HOST_FUEL, type HostWork } from "./host-work.js";
import type { TimeSpec } from "./file-times.js";
import { MAX_PATH_BYTES, resolve, type DirEntry, type DirHandle, type FsBackend, type Resolved, type Stat } from "./vfs.js";

/** What fd_fdstat_get reports. */
export interface FdStat {
  filetype: FileType;
  flags: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
}

/** One entry produced by fd_readdir, with its cookie chain. */
export interface ReaddirEntry extends DirEntry {
  next: bigint;
}

const KNOWN_FDFLAGS = FdFlags.APPEND | FdFlags.DSYNC | FdFlags.NONBLOCK | FdFlags.RSYNC | FdFlags.SYNC;
const SYNC_FDFLAGS = FdFlags.DSYNC | FdFlags.RSYNC | FdFlags.SYNC;
const MAX_FILE_OFFSET = (1n << 63n) - 1n;

/**
 * The filesystem subsystem: every fd_* and path_* call with real types. The
 * ABI layer (wasi-abi.ts) decodes guest memory and calls these.
 *
 * Rights: reading and writing follow the mode a file was opened in (EBADF
 * otherwise, as Wasmtime); every other right is held by default and enforced
 * once a guest drops it with fd_fdstat_set_rights (ENOTCAPABLE). A read-only
 * preopen refuses every mutation below it with EPERM, as Wasmtime's DirPerms.
 */
export class FileSystem {
  /** `work` is charged for host work done on the guest's behalf (path resolution): see HostWork. */
  constructor(private readonly fds: DescriptorTable, private readonly work?: HostWork) {}

  // ---- guards -------------------------------------------------------------

  private need(d: Descriptor, right: bigint, what: string): void {
    if ((d.rightsBase & right) !== 0n) return;
    // Below a read-only preopen every mutating right is missing; refuse those as Wasmtime's DirPerms do.
    if ((d.kind === "dir" || d.kind === "file") && d.readonly && (right & RIGHTS_MUTATING) !== 0n) {
      throw new WasiError(Errno.PERM, `${what}: the directory capability is read-only`);
    }
    throw new WasiError(Errno.NOTCAPABLE, `descriptor lacks the right for ${what}`);
  }

  /** A right a directory must pass on (its inheriting rights); a read-only preopen's mutations are EPERM. */
  private needInheritable(dir: DirDescriptor, right: bigint, what: string): void {
    if ((dir.rightsInheriting & right) !== 0n) return;
    if (dir.readonly && (right & RIGHTS_MUTATING) !== 0n) throw new WasiError(Errno.PERM, `${what}: the directory capability is read-only`);
    throw new WasiError(Errno.NOTCAPABLE, `${what}: the directory does not pass on that right`);
  }

  /** A regular file; anything else is EBADF, as Wasmtime's get_file_fd. */
  private file(fd: number): FileDescriptor {
    const d = this.fds.get(fd);
    if (d.kind !== "file") throw new WasiError(Errno.BADF, `fd ${fd} is not a file`);
    return d;
  }

  /** A directory descriptor; anything else is EBADF. */
  private dir(fd: number): DirDescriptor {
    const d = this.fds.get(fd);
    if (d.kind !== "dir") throw new WasiError(Errno.BADF, `fd ${fd} is not a directory`);
    return d;
  }

  /** Resolves `path` below a directory descriptor by handle (vfs.ts); the caller releases the result. */
  private resolveIn(dir: DirDescriptor, path: string, follow: boolean): Resolved {
    return resolve(dir.fs, dir.dir, path, follow, this.work);
  }

  private writable(dir: DirDescriptor): void {
    if (dir.readonly) throw new WasiError(Errno.PERM, "the directory capability is read-only");
  }

  // ---- descriptor calls ---------------------------------------------------

  fdstat(fd: number): FdStat {
    const d = this.fds.get(fd);
    let filetype: FileType;
    switch (d.kind) {
      case "file": filetype = d.filetype; break;
      case "dir": filetype = FileType.DIRECTORY; break;
      case "stream": filetype = d.filetype; break;
      default: filetype = FileType.SOCKET_STREAM;
    }
    return { filetype, flags: d.flags, rightsBase: d.rightsBase, rightsInheriting: d.rightsInheriting };
  }

  setFlags(fd: number, flags: number): void {
    const d = this.fds.get(fd);
    this.need(d, Rights.FD_FDSTAT_SET_FLAGS, "fd_fdstat_set_flags");
    // Only files and sockets carry changeable flags (stdio and directories: EBADF, as Wasmtime).
    if (d.kind === "stream" || d.kind === "dir") throw new WasiError(Errno.BADF, `fd ${fd} has no changeable flags`);
    if ((flags & ~KNOWN_FDFLAGS) !== 0) throw new WasiError(Errno.INVAL, "unknown fdflags");
    // Sync variants would need the host fd reopened; Wasmtime refuses them the same way.
    if (flags & SYNC_FDFLAGS) throw new WasiError(Errno.INVAL, "sync flags can only be set by path_open");
    d.flags = flags;
  }

  setRights(fd: number, base: bigint, inheriting: bigint): void {
    const d = this.fds.get(fd);
    if ((base & ~d.rightsBase) !== 0n || (inheriting & ~d.rightsInheriting) !== 0n) {
      throw new WasiError(Errno.NOTCAPABLE, "rights can only be dropped, never added");
    }
    d.rightsBase = base;
    d.rightsInheriting = inheriting;
  }

  filestat(fd: number): Stat {
    const d = this.fds.get(fd);
    this.need(d, Rights.FD_FILESTAT_GET, "fd_filestat_get");
    switch (d.kind) {
      case "file": return d.handle.stat();
      case "dir":
        return d.fs.statDir(d.dir);
      case "stream": return zeroStat(d.filetype);
      default: return zeroStat(FileType.SOCKET_STREAM);
    }
  }

  setSize(fd: number, size: bigint): void {
    const f = this.file(fd);
    this.need(f, Rights.FD_FILESTAT_SET_SIZE, "fd_filestat_set_size");
    // ftruncate(2) on a descriptor not open for writing is EINVAL.
    if ((f.rightsBase & Rights.FD_WRITE) === 0n) throw new WasiError(f.readonly ? Errno.PERM : Errno.INVAL, `fd ${fd} is not open for writing`);
    if (size < 0n || size > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, "size out of range");
    f.handle.setSize(size);
  }

  setTimes(fd: number, atim: bigint, mtim: bigint, fst: number): void {
    const d = this.fds.get(fd);
    this.need(d, Rights.FD_FILESTAT_SET_TIMES, "fd_filestat_set_times");
    const [a, m] = timesFromFlags(atim, mtim, fst);
    if (d.kind === "file") d.handle.setTimes(a, m);
    else if (d.kind === "dir") {
      this.writable(d);
      d.fs.setTimesDir(d.dir, a, m);
    } else throw new WasiError(Errno.BADF, "not a file or directory");
  }

  private fileForRead(fd: number): FileDescriptor {
    const f = this.file(fd);
    if ((f.rightsBase & Rights.FD_READ) === 0n) throw new WasiError(Errno.BADF, `fd ${fd} is not open for reading`);
    return f;
  }

  private fileForWrite(fd: number, call: string): FileDescriptor {
    const d = this.fds.get(fd);
    if (d.kind !== "file") throw new WasiError(Errno.BADF, `${call}: fd ${fd} is not a file`);
    if ((d.rightsBase & Rights.FD_WRITE) === 0n) throw new WasiError(Errno.BADF, `fd ${fd} is not open for writing`);
    return d;
  }

  /** Reads sequentially into the buffers, stopping at the first short read. */
  readFile(f: FileDescriptor, bufs: Buffers, at: bigint | null): number {
    let pos = at ?? f.position;
    let total = 0;
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs.at(i)!;
      if (b.length === 0) continue;
      const n = f.handle.read(b, pos);
      total += n;
      pos += BigInt(n);
      if (n < b.length) break;
    }
    if (at === null) f.position = pos;
    return total;
  }

  read(fd: number, bufs: Buffers): number {
    return this.readFile(this.fileForRead(fd), bufs, null);
  }

  pread(fd: number, bufs: Buffers, offset: bigint): number {
    const d = this.fds.get(fd);
    if (d.kind === "stream") throw new WasiError(Errno.SPIPE, "stdio is not seekable");
    const f = this.fileForRead(fd);
    this.need(f, Rights.FD_SEEK, "fd_pread");
    if (offset < 0n || offset > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, "offset out of range");
    return this.readFile(f, bufs, offset);
  }

  write(fd: number, bufs: Buffers): number {
    const f = this.fileForWrite(fd, "fd_write");
    this.need(f, Rights.FD_WRITE, "fd_write");
    let total = 0;
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs.at(i)!;
      if (b.length === 0) continue;
      if (f.flags & FdFlags.APPEND) {
        total += f.handle.write(b, null);
        f.position = f.handle.stat().size;
      } else {
        const n = f.handle.write(b, f.position);
        f.position += BigInt(n);
        total += n;
      }
    }
    return total;
  }

  pwrite(fd: number, bufs: Buffers, offset: bigint): number {
    const d = this.fds.get(fd);
    if (d.kind === "stream") throw new WasiError(Errno.SPIPE, "stdio is not seekable");
    const f = this.fileForWrite(fd, "fd_pwrite");
    this.need(f, Rights.FD_SEEK, "fd_pwrite");
    if (offset < 0n || offset > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, "offset out of range");
    // In append mode the offset is ignored, as pwrite(2) on an O_APPEND file on Linux.
    const append = (f.flags & FdFlags.APPEND) !== 0;
    let pos = offset;
    let total = 0;
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs.at(i)!;
      if (b.length === 0) continue;
      const n = f.handle.write(b, append ? null : pos);
      pos += BigInt(n);
      total += n;
    }
    return total;
  }

  seek(fd: number, offset: bigint, whence: number): bigint {
    const d = this.fds.get(fd);
    if (d.kind !== "file") throw new WasiError(d.kind === "dir" ? Errno.BADF : Errno.SPIPE, "not seekable");
    const tellOnly = whence === Whence.CUR && offset === 0n;
    this.need(d, tellOnly ? Rights.FD_TELL | Rights.FD_SEEK : Rights.FD_SEEK, "fd_seek");
    let base: bigint;
    switch (whence) {
      case Whence.SET: base = 0n; break;
      case Whence.CUR: base = d.position; break;
      case Whence.END: base = d.handle.stat().size; break;
      default: throw new WasiError(Errno.INVAL, "bad whence");
    }
    const next = base + offset;
    if (next < 0n || next > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, "resulting offset out of range");
    d.position = next;
    return next;
  }

  tell(fd: number): bigint {
    const d = this.fds.get(fd);
    if (d.kind !== "file") throw new WasiError(d.kind === "dir" ? Errno.BADF : Errno.SPIPE, "not seekable");
    // FD_SEEK implies FD_TELL (witx: "This flag implies rights::fd_tell").
    this.need(d, d.rightsBase & Rights.FD_SEEK ? Rights.FD_SEEK : Rights.FD_TELL, "fd_tell");
    return d.position;
  }

  advise(fd: number, offset: bigint, len: bigint, advice: number): void {
    const f = this.file(fd);
    this.need(f, Rights.FD_ADVISE, "fd_advise");
    if (advice < 0 || advice > 5) throw new WasiError(Errno.INVAL, "unknown advice");
    if (offset < 0n || len < 0n) throw new WasiError(Errno.INVAL, "negative range");
    // Advice is a hint: nothing to do for our backends.
  }

  /**
   * fd_allocate is ENOTSUP, as in Wasmtime: preallocation has no portable
   * host call and extending with zeros would silently differ from it.
   */
  allocate(fd: number, _offset: bigint, _len: bigint): void {
    this.need(this.file(fd), Rights.FD_ALLOCATE, "fd_allocate");
    throw new WasiError(Errno.NOTSUP, "fd_allocate is not supported");
  }

  sync(fd: number, dataOnly: boolean): void {
    const f = this.file(fd);
    this.need(f, dataOnly ? Rights.FD_DATASYNC : Rights.FD_SYNC, dataOnly ? "fd_datasync" : "fd_sync");
    if (dataOnly) f.handle.datasync();
    else f.handle.sync();
  }

  close(fd: number): void {
    release(this.fds.remove(fd));
  }

  renumber(from: number, to: number): void {
    this.fds.get(from);
    this.fds.get(to);
    if (from === to) return;
    release(this.fds.renumber(from, to));
  }

  /** The preopen's guest name. Not a preopen: EBADF for fd_prestat_get (wasi-libc stops its scan on it), ENOTDIR for fd_prestat_dir_name, as Wasmtime. */
  prestatName(fd: number, call: "fd_prestat_get" | "fd_prestat_dir_name" = "fd_prestat_get"): string {
    const d = this.fds.get(fd);
    if (d.kind !== "dir" || d.preopenName === null) throw new WasiError(call === "fd_prestat_get" ? Errno.BADF : Errno.NOTDIR, `fd ${fd} is not a preopen`);
    return d.preopenName;
  }

  /**
   * Entries from `cookie` on: ".", "..", then the directory's entries in name
   * order. The listing is taken at cookie 0 and kept, so cookies stay stable
   * across calls while the guest reads.
   */
  readdir(fd: number, cookie: bigint): ReaddirEntry[] {
    const d = this.dir(fd);
    this.need(d, Rights.FD_READDIR, "fd_readdir");
    if (cookie === 0n || d.listing === null) {
      const self = d.fs.statDir(d.dir);
      // A preopen's ".." is outside the capability: it reports the preopen itself.
      const parentIno = d.preopenName !== null ? self.ino : d.fs.parentIno(d.dir);
      d.listing = [
        { name: ".", ino: self.ino, filetype: FileType.DIRECTORY },
        { name: "..", ino: parentIno, filetype: FileType.DIRECTORY },
        ...d.fs.readdir(d.dir),
      ];
    }
    if (cookie >= BigInt(d.listing.length)) return [];
    const start = Number(cookie);
    this.work?.((d.listing.length - start) * HOST_FUEL.dirEntry);
    return d.listing.slice(start).map((e, i) => ({ ...e, next: BigInt(start + i + 1) }));
  }

  // ---- path calls ---------------------------------------------------------

  createDirectory(dirfd: number, path: string): void {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_CREATE_DIRECTORY, "path_create_directory");
    const r = this.resolveIn(dir, path, false);
    try {
      this.writable(dir);
      if (r.name === null) throw new WasiError(Errno.EXIST);
      dir.fs.mkdir(r.dir, r.name);
    } finally {
      r.release();
    }
  }

  pathFilestat(dirfd: number, lookup: number, path: string): Stat {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_FILESTAT_GET, "path_filestat_get");
    checkLookup(lookup);
    const r = this.resolveIn(dir, path, (lookup & LookupFlags.SYMLINK_FOLLOW) !== 0);
    try {
      const st = statOf(dir.fs, r);
      if (r.mustBeDir && st.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
      return st;
    } finally {
      r.release();
    }
  }

  pathSetTimes(dirfd: number, lookup: number, path: string, atim: bigint, mtim: bigint, fst: number): void {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_FILESTAT_SET_TIMES, "path_filestat_set_times");
    checkLookup(lookup);
    const [a, m] = timesFromFlags(atim, mtim, fst);
    const r = this.resolveIn(dir, path, (lookup & LookupFlags.SYMLINK_FOLLOW) !== 0);
    try {
      const st = statOf(dir.fs, r);
      if (r.mustBeDir && st.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
      this.writable(dir);
      if (r.name === null) dir.fs.setTimesDir(r.dir, a, m);
      else dir.fs.setTimes(r.dir, r.name, a, m);
    } finally {
      r.release();
    }
  }

  link(oldfd: number, oldLookup: number, oldPath: string, newfd: number, newPath: string): void {
    const from = this.dir(oldfd);
    const to = this.dir(newfd);
    this.need(from, Rights.PATH_LINK_SOURCE, "path_link");
    this.need(to, Rights.PATH_LINK_TARGET, "path_link");
    checkLookup(oldLookup);
    // Wasmtime (cap-std) cannot link through a symlink: following is refused.
    if (oldLookup & LookupFlags.SYMLINK_FOLLOW) throw new WasiError(Errno.INVAL, "path_link does not follow symlinks");
    const src = this.resolveIn(from, oldPath, false);
    try {
      const dst = this.resolveIn(to, newPath, false);
      try {
        if (from.fs !== to.fs) throw new WasiError(Errno.XDEV, "link across directory capabilities");
        const st = statOf(from.fs, src);
        if (st.filetype === FileType.DIRECTORY) throw new WasiError(Errno.PERM, "hard links to directories are not allowed");
        if (src.mustBeDir) throw new WasiError(Errno.NOTDIR);
        if (dst.name === null || exists(to.fs, dst.dir, dst.name)) throw new WasiError(Errno.EXIST);
        if (dst.mustBeDir) throw new WasiError(Errno.NOENT);
        this.writable(to);
        this.writable(from);
        from.fs.link(src.dir, src.name!, dst.dir, dst.name);
      } finally {
        dst.release();
      }
    } finally {
      src.release();
    }
  }

  open(dirfd: number, lookup: number, path: string, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number): number {
    // Like Wasmtime: a file as dirfd is ENOTDIR, stdio and sockets are EBADF.
    const base = this.fds.get(dirfd);
    if (base.kind === "file") throw new WasiError(Errno.NOTDIR, `fd ${dirfd} is a file, not a directory`);
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_OPEN, "path_open");
    checkLookup(lookup);
    if (oflags & ~(OFlags.CREAT | OFlags.DIRECTORY | OFlags.EXCL | OFlags.TRUNC)) throw new WasiError(Errno.INVAL, "unknown oflags");
    if (fdflags & ~KNOWN_FDFLAGS) throw new WasiError(Errno.INVAL, "unknown fdflags");
    if (fdflags & SYNC_FDFLAGS) throw new WasiError(Errno.NOTSUP, "synchronous I/O flags are not supported");
    if ((rightsBase | rightsInheriting) & ~RIGHTS_ALL) throw new WasiError(Errno.INVAL, "unknown rights bits");
    const wantDir = (oflags & OFlags.DIRECTORY) !== 0;
    const create = (oflags & OFlags.CREAT) !== 0;
    const exclusive = create && (oflags & OFlags.EXCL) !== 0;
    const truncate = (oflags & OFlags.TRUNC) !== 0;
    if (wantDir && (oflags & (OFlags.CREAT | OFlags.EXCL | OFlags.TRUNC))) throw new WasiError(Errno.INVAL, "O_DIRECTORY with O_CREAT, O_EXCL or O_TRUNC");
    // The rights table (witx): creating needs PATH_CREATE_FILE; truncating needs PATH_FILESTAT_SET_SIZE
    // on the directory and FD_FILESTAT_SET_SIZE among the rights it passes on (a size change by path).
    if (create) this.need(dir, Rights.PATH_CREATE_FILE, "path_open with O_CREAT");
    if (truncate) {
      this.need(dir, Rights.PATH_FILESTAT_SET_SIZE, "path_open with O_TRUNC");
      if ((dir.rightsInheriting & Rights.FD_FILESTAT_SET_SIZE) === 0n) this.needInheritable(dir, Rights.FD_FILESTAT_SET_SIZE, "path_open with O_TRUNC");
    }
    // Access follows FD_READ and FD_WRITE only, as Wasmtime; append implies writing. Asking for an
    // access the directory does not pass on (its inheriting rights) is refused.
    const read = (rightsBase & Rights.FD_READ) !== 0n;
    const write = (rightsBase & Rights.FD_WRITE) !== 0n || (fdflags & FdFlags.APPEND) !== 0;
    if (read && (dir.rightsInheriting & Rights.FD_READ) === 0n) this.needInheritable(dir, Rights.FD_READ, "path_open for reading");
    if (write && (dir.rightsInheriting & Rights.FD_WRITE) === 0n) this.needInheritable(dir, Rights.FD_WRITE, "path_open for writing");
    // O_CREAT|O_EXCL never follows a final symlink: an existing link is EEXIST.
    const follow = (lookup & LookupFlags.SYMLINK_FOLLOW) !== 0 && !exclusive;
    const r = this.resolveIn(dir, path, follow);
    try {
      const st = r.name === null ? dir.fs.statDir(r.dir) : statOrNull(dir.fs, r.dir, r.name);
      if (st === null) {
        if (!create) throw new WasiError(Errno.NOENT, `${path} does not exist`);
        if (r.mustBeDir) throw new WasiError(Errno.ISDIR, "cannot create a directory with path_open");
      } else if (exclusive) {
        throw new WasiError(Errno.EXIST, `${path} exists`);
      }
      if (st?.filetype === FileType.SYMBOLIC_LINK) {
        throw new WasiError(wantDir || r.mustBeDir ? Errno.NOTDIR : Errno.LOOP, `${path} is a symbolic link and was not followed`);
      }

      if (st?.filetype === FileType.DIRECTORY) {
        if (truncate || write) throw new WasiError(Errno.ISDIR, `${path} is a directory`);
        const handle = r.name === null ? dir.fs.dup(r.dir) : openChildDir(dir.fs, r.dir, r.name, path);
        try {
          return this.fds.add({
            kind: "dir",
            fs: dir.fs,
            dir: handle,
            preopenName: null,
            readonly: dir.readonly,
            listing: null,
            rightsBase: RIGHTS_DIR & dir.rightsInheriting,
            rightsInheriting: dir.rightsInheriting,
            flags: fdflags & FdFlags.NONBLOCK,
          });
        } catch (err) {
          dir.fs.release(handle);
          throw err;
        }
      }

      if (wantDir || r.mustBeDir) throw new WasiError(Errno.NOTDIR, `${path} is not a directory`);
      if (write || create || truncate) this.writable(dir);
      const handle = dir.fs.openFile(r.dir, r.name!, { read: !write || read, write, create, exclusive, truncate, append: (fdflags & FdFlags.APPEND) !== 0 });
      // Every right the directory passes on, read and write as asked (see "Rights" in docs/kernel.md).
      let rights = RIGHTS_FILE & dir.rightsInheriting;
      if (!read) rights &= ~Rights.FD_READ;
      if (!write) rights &= ~Rights.FD_WRITE;
      try {
        return this.fds.add({
          kind: "file",
          fs: dir.fs,
          handle,
          position: 0n,
          filetype: st?.filetype ?? FileType.REGULAR_FILE,
          readonly: dir.readonly,
          rightsBase: rights,
          rightsInheriting: 0n,
          flags: fdflags & (FdFlags.APPEND | FdFlags.NONBLOCK),
        });
      } catch (err) {
        handle.close();
        throw err;
      }
    } finally {
      r.release();
    }
  }

  readlink(dirfd: number, path: string): string {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_READLINK, "path_readlink");
    const r = this.resolveIn(dir, path, false);
    try {
      if (r.name === null) throw new WasiError(Errno.INVAL, "a directory is not a symbolic link");
      if (r.mustBeDir) {
        const st = dir.fs.stat(r.dir, r.name);
        if (st.filetype !== FileType.SYMBOLIC_LINK) throw new WasiError(st.filetype === FileType.DIRECTORY ? Errno.INVAL : Errno.NOTDIR);
      }
      const target = dir.fs.readlink(r.dir, r.name);
      // A link planted on the host with an absolute target would disclose host paths; cap-std hides it the same way.
      if (target.startsWith("/")) throw new WasiError(Errno.PERM, "the symlink points outside the directory capability");
      return target;
    } finally {
      r.release();
    }
  }

  removeDirectory(dirfd: number, path: string): void {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_REMOVE_DIRECTORY, "path_remove_directory");
    const r = this.resolveIn(dir, path, false);
    try {
      // A path ending in "." or ".." (the directory itself, or a parent) cannot be removed, as rmdir(2).
      if (r.name === null) throw new WasiError(Errno.INVAL, "cannot remove a directory by a path ending in . or ..");
      const st = dir.fs.stat(r.dir, r.name);
      if (st.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
      this.writable(dir);
      dir.fs.rmdir(r.dir, r.name);
    } finally {
      r.release();
    }
  }

  rename(oldfd: number, oldPath: string, newfd: number, newPath: string): void {
    const from = this.dir(oldfd);
    const to = this.dir(newfd);
    this.need(from, Rights.PATH_RENAME_SOURCE, "path_rename");
    this.need(to, Rights.PATH_RENAME_TARGET, "path_rename");
    const src = this.resolveIn(from, oldPath, false);
    try {
      const dst = this.resolveIn(to, newPath, false);
      try {
        if (from.fs !== to.fs) throw new WasiError(Errno.XDEV, "rename across directory capabilities");
        const st = statOf(from.fs, src);
        // rename(2) refuses a path ending in "." or "..": EBUSY.
        if (src.name === null || dst.name === null) throw new WasiError(Errno.BUSY, "cannot rename a directory by a path ending in . or ..");
        const isDir = st.filetype === FileType.DIRECTORY;
        if ((src.mustBeDir || dst.mustBeDir) && !isDir) throw new WasiError(Errno.NOTDIR);
        const target = statOrNull(to.fs, dst.dir, dst.name);
        if (target) {
          if (isDir && target.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
          if (!isDir && target.filetype === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
        }
        this.writable(from);
        this.writable(to);
        from.fs.rename(src.dir, src.name, dst.dir, dst.name);
      } finally {
        dst.release();
      }
    } finally {
      src.release();
    }
  }

  symlink(target: string, dirfd: number, path: string): void {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_SYMLINK, "path_symlink");
    if (target.length === 0) throw new WasiError(Errno.NOENT, "empty symlink target");
    if (target.startsWith("/")) throw new WasiError(Errno.PERM, "absolute symlink targets would point outside the capability");
    if (target.includes("\0")) throw new WasiError(Errno.INVAL);
    if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw new WasiError(Errno.NAMETOOLONG, "symlink target longer than PATH_MAX");
    const r = this.resolveIn(dir, path, false);
    try {
      const existing = r.name === null ? dir.fs.statDir(r.dir) : statOrNull(dir.fs, r.dir, r.name);
      if (existing && r.mustBeDir && existing.filetype !== FileType.DIRECTORY) throw new WasiError(Errno.NOTDIR);
      if (existing) throw new WasiError(Errno.EXIST);
      if (r.mustBeDir) throw new WasiError(Errno.NOENT);
      this.writable(dir);
      dir.fs.symlink(target, r.dir, r.name!);
    } finally {
      r.release();
    }
  }

  unlinkFile(dirfd: number, path: string): void {
    const dir = this.dir(dirfd);
    this.need(dir, Rights.PATH_UNLINK_FILE, "path_unlink_file");
    const r = this.resolveIn(dir, path, false);
    try {
      const st = statOf(dir.fs, r);
      if (st.filetype === FileType.DIRECTORY) throw new WasiError(Errno.ISDIR);
      if (r.mustBeDir) throw new WasiError(Errno.NOTDIR);
      this.writable(dir);
      dir.fs.unlink(r.dir, r.name!);
    } finally {
      r.release();
    }
  }
}

/** Releases the host resources of a descriptor that left the table. */
export function release(d: Descriptor): void {
  if (d.kind === "file") d.handle.close();
  else if (d.kind === "dir") d.fs.release(d.dir);
}

/** What a resolution names: the entry (lstat), or the directory itself. */
function statOf(fs: FsBackend, r: Resolved): Stat {
  return r.name === null ? fs.statDir(r.dir) : fs.stat(r.dir, r.name);
}

/** lstat, or null when the entry does not exist. */
function statOrNull(fs: FsBackend, dir: DirHandle, name: string): Stat | null {
  try {
    return fs.stat(dir, name);
  } catch (err) {
    if (err instanceof WasiError && err.errno === Errno.NOENT) return null;
    throw err;
  }
}

function exists(fs: FsBackend, dir: DirHandle, name: string): boolean {
  return statOrNull(fs, dir, name) !== null;
}

/** Opens `name` in `dir` as a directory handle, without following a symlink swapped in meanwhile. */
function openChildDir(fs: FsBackend, dir: DirHandle, name: string, path: string): DirHandle {
  const found = fs.lookup(dir, name, true);
  if (found.kind === "dir") return found.dir!;
  if (found.kind === "missing") throw new WasiError(Errno.NOENT, `${path} does not exist`);
  throw new WasiError(Errno.NOTDIR, `${path} is no longer a directory`);
}

function checkLookup(flags: number): void {
  if (flags & ~LookupFlags.SYMLINK_FOLLOW) throw new WasiError(Errno.INVAL, "unknown lookupflags");
}

function zeroStat(filetype: FileType): Stat {
  return { dev: 0n, ino: 0n, filetype, nlink: 1n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
}

/** Decodes fstflags into (atim, mtim): a time, "now" (the host's clock), or null for "leave unchanged". */
function timesFromFlags(atim: bigint, mtim: bigint, fst: number): [TimeSpec, TimeSpec] {
  if (fst & ~(FstFlags.ATIM | FstFlags.ATIM_NOW | FstFlags.MTIM | FstFlags.MTIM_NOW)) throw new WasiError(Errno.INVAL, "unknown fstflags");
  if ((fst & FstFlags.ATIM) && (fst & FstFlags.ATIM_NOW)) throw new WasiError(Errno.INVAL, "ATIM and ATIM_NOW together");
  if ((fst & FstFlags.MTIM) && (fst & FstFlags.MTIM_NOW)) throw new WasiError(Errno.INVAL, "MTIM and MTIM_NOW together");
  const a = fst & FstFlags.ATIM_NOW ? "now" : fst & FstFlags.ATIM ? atim : null;
  const m = fst & FstFlags.MTIM_NOW ? "now" : fst & FstFlags.MTIM ? mtim : null;
  return [a, m];
}
