import { ClockId, Errno, EventType, Layout } from "./abi.js";
import { WasiError } from "./errors.js";
import type { FileSystem } from "./fs.js";
import type { Kernel } from "./kernel.js";
import type { GuestMemory } from "./memory.js";
import { encodeUtf8 } from "./memory.js";
import { POLL_MAX_SUBSCRIPTIONS, pollOneoff, SubscriptionList } from "./poll.js";
import type { SyscallName } from "./syscalls.js";
import type { Stat } from "./vfs.js";
import { fillRandom } from "./random.js";
import { byteUnits, HOST_FUEL } from "./host-work.js";
import * as proc from "./proc.js";
import { SOCK_IO_MAX } from "./sock.js";

/**
 * The ABI layer: one thin function per WASI call. Each one only decodes its
 * arguments through the checked GuestMemory, calls a typed subsystem function,
 * and encodes the result. Semantics live in the subsystems (fs.ts, sock.ts,
 * poll.ts, ...), which tests can call without any wasm.
 * A function returns an errno; WasiError thrown anywhere below becomes that
 * errno in the linker's wrapper. Host work proportional to what the guest
 * asked for is charged to `k.work` (host-work.ts): bytes written before the
 * write, bytes read after the read.
 */
export type AbiFunction = (...args: never[]) => number | void;

const OK = Errno.SUCCESS;

function writeStat(m: GuestMemory, ptr: number, st: Stat): void {
  m.check(ptr, Layout.FILESTAT_SIZE);
  m.setU64(ptr, st.dev);
  m.setU64(ptr + 8, st.ino);
  m.setU8(ptr + 16, st.filetype);
  m.setU64(ptr + 24, st.nlink);
  m.setU64(ptr + 32, st.size);
  m.setU64(ptr + 40, st.atim);
  m.setU64(ptr + 48, st.mtim);
  m.setU64(ptr + 56, st.ctim);
}

/** Writes NUL-terminated strings and their pointers (args_get / environ_get). */
function writeStrings(m: GuestMemory, list: proc.StringList, ptrs: number, buf: number): number {
  m.check(ptrs, list.count * 4);
  m.check(buf, list.bufSize);
  const base = buf >>> 0;
  for (let i = 0; i < list.count; i++) m.setU32((ptrs >>> 0) + i * 4, base + list.start(i));
  m.write(base, list.encoded);
  return OK;
}

/** Writes a string list's count and total size (args_sizes_get / environ_sizes_get). */
function writeSizes(m: GuestMemory, list: proc.StringList, countOut: number, sizeOut: number): number {
  m.check(countOut, 4);
  m.check(sizeOut, 4);
  m.setU32(countOut, list.count);
  m.setU32(sizeOut, list.bufSize);
  return OK;
}

/** Makes one call's ABI function for a kernel; the linker makes only those a module imports. */
export type AbiFactory = (k: Kernel, m: GuestMemory, fs: FileSystem) => AbiFunction;

/**
 * One factory per call. Each is its own function literal, so the closures it
 * makes keep monomorphic call sites when V8 inlines them.
 */
export const WASI_ABI: Record<SyscallName, AbiFactory> = {
  args_get: (k, m, _fs) => (argv: number, buf: number) => writeStrings(m, k.args, argv, buf),
  args_sizes_get: (k, m, _fs) => (countOut: number, sizeOut: number) => writeSizes(m, k.args, countOut, sizeOut),
  environ_get: (k, m, _fs) => (env: number, buf: number) => writeStrings(m, k.env, env, buf),
  environ_sizes_get: (k, m, _fs) => (countOut: number, sizeOut: number) => writeSizes(m, k.env, countOut, sizeOut),

  clock_res_get: (k, m, _fs) => (id: number, out: number) => {
    m.setU64(out, k.clocks.resolution(id));
    return OK;
  },
  clock_time_get: (k, m, _fs) => (id: number, _precision: bigint, out: number) => {
    // The monotonic clock is the hot one (timing loops): skip the dispatch.
    m.setU64(out, id === ClockId.MONOTONIC ? process.hrtime.bigint() : k.clocks.now(id));
    return OK;
  },

  fd_advise: (_k, _m, fs) => (fd: number, offset: bigint, len: bigint, advice: number) => {
    fs.advise(fd, offset, len, advice);
    return OK;
  },
  fd_allocate: (_k, _m, fs) => (fd: number, offset: bigint, len: bigint) => {
    fs.allocate(fd, offset, len);
    return OK;
  },
  fd_close: (k, _m, _fs) => (fd: number) => {
    k.closeFd(fd);
    return OK;
  },
  fd_datasync: (_k, _m, fs) => (fd: number) => {
    fs.sync(fd, true);
    return OK;
  },
  fd_fdstat_get: (_k, m, fs) => (fd: number, out: number) => {
    const st = fs.fdstat(fd);
    m.check(out, Layout.FDSTAT_SIZE);
    m.setU8(out, st.filetype);
    m.setU8(out + 1, 0);
    m.setU16(out + 2, st.flags);
    m.setU32(out + 4, 0);
    m.setU64(out + 8, st.rightsBase);
    m.setU64(out + 16, st.rightsInheriting);
    return OK;
  },
  fd_fdstat_set_flags: (_k, _m, fs) => (fd: number, flags: number) => {
    fs.setFlags(fd, flags & 0xffff);
    return OK;
  },
  fd_fdstat_set_rights: (_k, _m, fs) => (fd: number, base: bigint, inheriting: bigint) => {
    fs.setRights(fd, BigInt.asUintN(64, base), BigInt.asUintN(64, inheriting));
    return OK;
  },
  fd_filestat_get: (_k, m, fs) => (fd: number, out: number) => {
    m.check(out, Layout.FILESTAT_SIZE);
    writeStat(m, out, fs.filestat(fd));
    return OK;
  },
  fd_filestat_set_size: (_k, _m, fs) => (fd: number, size: bigint) => {
    fs.setSize(fd, BigInt.asUintN(64, size));
    return OK;
  },
  fd_filestat_set_times: (_k, _m, fs) => (fd: number, atim: bigint, mtim: bigint, fst: number) => {
    fs.setTimes(fd, BigInt.asUintN(64, atim), BigInt.asUintN(64, mtim), fst & 0xffff);
    return OK;
  },
  fd_pread: (k, m, fs) => (fd: number, iovs: number, n: number, offset: bigint, out: number) => {
    m.check(out, 4);
    const bufs = m.iovecs(iovs, n);
    const got = fs.pread(fd, bufs, BigInt.asUintN(64, offset));
    k.work?.(byteUnits(got));
    m.setU32(out, got);
    return OK;
  },
  fd_prestat_get: (_k, m, fs) => (fd: number, out: number) => {
    const name = encodeUtf8(fs.prestatName(fd));
    m.check(out, Layout.PRESTAT_SIZE);
    m.setU32(out, 0); // tag = dir, padding zeroed
    m.setU32(out + 4, name.length);
    return OK;
  },
  fd_prestat_dir_name: (_k, m, fs) => (fd: number, path: number, len: number) => {
    const name = encodeUtf8(fs.prestatName(fd, "fd_prestat_dir_name"));
    if ((len >>> 0) < name.length) throw new WasiError(Errno.NAMETOOLONG, "buffer shorter than the preopen name");
    m.write(path, name);
    return OK;
  },
  fd_pwrite: (k, m, fs) => (fd: number, iovs: number, n: number, offset: bigint, out: number) => {
    m.check(out, 4);
    const bufs = m.iovecs(iovs, n);
    k.work?.(byteUnits(bufs.totalLength()));
    m.setU32(out, fs.pwrite(fd, bufs, BigInt.asUintN(64, offset)));
    return OK;
  },
  fd_read: (k, m, _fs) => (fd: number, iovs: number, n: number, out: number) => {
    m.check(out, 4);
    const bufs = m.iovecs(iovs, n);
    const got = k.readFd(fd, bufs);
    k.work?.(byteUnits(got));
    m.setU32(out, got);
    return OK;
  },
  fd_readdir: (_k, m, fs) => (fd: number, buf: number, len: number, cookie: bigint, out: number) => {
    m.check(out, 4);
    const dst = m.bytes(buf, len);
    const entries = fs.readdir(fd, BigInt.asUintN(64, cookie));
    const header = new Uint8Array(Layout.DIRENT_SIZE);
    const hv = new DataView(header.buffer);
    let used = 0;
    for (const e of entries) {
      if (used >= dst.length) break;
      const name = encodeUtf8(e.name);
      hv.setBigUint64(0, e.next, true);
      hv.setBigUint64(8, e.ino, true);
      hv.setUint32(16, name.length, true);
      hv.setUint8(20, e.filetype);
      // Entries that do not fit are truncated; the guest sees bufused == buf_len and retries bigger.
      for (const part of [header, name]) {
        const n = Math.min(part.length, dst.length - used);
        dst.set(part.subarray(0, n), used);
        used += n;
      }
    }
    m.setU32(out, used);
    return OK;
  },
  fd_renumber: (k, _m, _fs) => (from: number, to: number) => {
    k.renumberFd(from, to);
    return OK;
  },
  fd_seek: (_k, m, fs) => (fd: number, offset: bigint, whence: number, out: number) => {
    m.check(out, 8);
    m.setU64(out, fs.seek(fd, offset, whence));
    return OK;
  },
  fd_sync: (_k, _m, fs) => (fd: number) => {
    fs.sync(fd, false);
    return OK;
  },
  fd_tell: (_k, m, fs) => (fd: number, out: number) => {
    m.check(out, 8);
    m.setU64(out, fs.tell(fd));
    return OK;
  },
  fd_write: (k, m, _fs) => (fd: number, iovs: number, n: number, out: number) => {
    m.check(out, 4);
    const bufs = m.iovecs(iovs, n);
    k.work?.(byteUnits(bufs.totalLength()));
    m.setU32(out, k.writeFd(fd, bufs));
    return OK;
  },

  path_create_directory: (_k, m, fs) => (fd: number, path: number, len: number) => {
    fs.createDirectory(fd, m.string(path, len));
    return OK;
  },
  path_filestat_get: (_k, m, fs) => (fd: number, flags: number, path: number, len: number, out: number) => {
    m.check(out, Layout.FILESTAT_SIZE);
    writeStat(m, out, fs.pathFilestat(fd, flags, m.string(path, len)));
    return OK;
  },
  path_filestat_set_times: (_k, m, fs) => (fd: number, flags: number, path: number, len: number, atim: bigint, mtim: bigint, fst: number) => {
    fs.pathSetTimes(fd, flags, m.string(path, len), BigInt.asUintN(64, atim), BigInt.asUintN(64, mtim), fst & 0xffff);
    return OK;
  },
  path_link: (_k, m, fs) => (oldFd: number, oldFlags: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number) => {
    fs.link(oldFd, oldFlags, m.string(oldPath, oldLen), newFd, m.string(newPath, newLen));
    return OK;
  },
  path_open: (_k, m, fs) => (fd: number, dirflags: number, path: number, len: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, out: number) => {
    m.check(out, 4);
    const opened = fs.open(fd, dirflags, m.string(path, len), oflags & 0xffff, BigInt.asUintN(64, base), BigInt.asUintN(64, inheriting), fdflags & 0xffff);
    m.setU32(out, opened);
    return OK;
  },
  path_readlink: (_k, m, fs) => (fd: number, path: number, len: number, buf: number, bufLen: number, out: number) => {
    m.check(out, 4);
    const dst = m.bytes(buf, bufLen);
    const target = encodeUtf8(fs.readlink(fd, m.string(path, len)));
    // Like readlink(2): truncate to the buffer; the guest compares bufused with its size.
    const n = Math.min(target.length, dst.length);
    dst.set(target.subarray(0, n));
    m.setU32(out, n);
    return OK;
  },
  path_remove_directory: (_k, m, fs) => (fd: number, path: number, len: number) => {
    fs.removeDirectory(fd, m.string(path, len));
    return OK;
  },
  path_rename: (_k, m, fs) => (fd: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number) => {
    fs.rename(fd, m.string(oldPath, oldLen), newFd, m.string(newPath, newLen));
    return OK;
  },
  path_symlink: (_k, m, fs) => (oldPath: number, oldLen: number, fd: number, newPath: number, newLen: number) => {
    fs.symlink(m.string(oldPath, oldLen), fd, m.string(newPath, newLen));
    return OK;
  },
  path_unlink_file: (_k, m, fs) => (fd: number, path: number, len: number) => {
    fs.unlinkFile(fd, m.string(path, len));
    return OK;
  },

  poll_oneoff: (k, m, _fs) => (inPtr: number, outPtr: number, n: number, countOut: number) => {
    const count = n >>> 0;
    // The cap comes first, so a huge count is EINVAL before the host reads anything.
    if (count > POLL_MAX_SUBSCRIPTIONS) throw new WasiError(Errno.INVAL, `${count} subscriptions: at most ${POLL_MAX_SUBSCRIPTIONS} per call`);
    m.check(countOut, 4);
    m.check(outPtr, count * Layout.EVENT_SIZE);
    k.work?.(count * HOST_FUEL.subscription);
    const subs = new SubscriptionList(m.bytes(inPtr, count * Layout.SUBSCRIPTION_SIZE).slice());
    const events = pollOneoff(subs, k.fds, k.clocks, k.io);
    m.write(outPtr, events.encoded());
    m.setU32(countOut, events.length);
    return OK;
  },
  proc_exit: (_k, _m, _fs) => (code: number) => proc.exit(code),
  proc_raise: (_k, _m, _fs) => (signal: number) => {
    proc.raise(signal);
    return OK;
  },
  random_get: (k, m, _fs) => (buf: number, len: number) => {
    const dst = m.bytes(buf, len);
    k.work?.(byteUnits(dst.length));
    fillRandom(dst);
    return OK;
  },
  sched_yield: (_k, _m, _fs) => () => OK,

  sock_accept: (k, m, _fs) => (fd: number, flags: number, out: number) => {
    m.check(out, 4);
    m.setU32(out, k.sockets.accept(fd, flags & 0xffff));
    return OK;
  },
  sock_recv: (k, m, _fs) => (fd: number, iovs: number, n: number, riflags: number, lenOut: number, flagsOut: number) => {
    m.check(lenOut, 4);
    m.check(flagsOut, 2);
    const r = k.sockets.recv(fd, m.iovecs(iovs, n), riflags & 0xffff);
    k.work?.(byteUnits(r.n));
    m.setU32(lenOut, r.n);
    m.setU16(flagsOut, r.roflags);
    return OK;
  },
  sock_send: (k, m, _fs) => (fd: number, iovs: number, n: number, siflags: number, out: number) => {
    m.check(out, 4);
    const bufs = m.iovecs(iovs, n);
    k.work?.(byteUnits(Math.min(bufs.totalLength(), SOCK_IO_MAX)));
    m.setU32(out, k.sockets.send(fd, bufs, siflags & 0xffff));
    return OK;
  },
  sock_shutdown: (k, _m, _fs) => (fd: number, how: number) => {
    k.sockets.shutdown(fd, how);
    return OK;
  },
};
