/**
 * The rights table of the WASI preview 1 spec (typenames.witx, `rights`),
 * audited call by call (issue 9): for each right, every call the spec says
 * needs it fails once the descriptor lacks it, and does not fail for want
 * of it while the descriptor has it. A missing FD_READ/FD_WRITE is EBADF (as
 * for a file not open that way, Wasmtime's choice); every other missing
 * right is ENOTCAPABLE. Rights are dropped with fd_fdstat_set_rights.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Kernel } from "../../src/kernel/kernel.js";
import { Errno, EventType, FdFlags, FstFlags, OFlags, Rights, Whence } from "../../src/kernel/abi.js";
import { WasiError } from "../../src/kernel/errors.js";
import { MemoryFs } from "../../src/kernel/fs-memory.js";
import { pollOneoff, SubscriptionList } from "../../src/kernel/poll.js";
import { IoThread } from "../../src/kernel/io-thread.js";
import { RIGHTS_SOCKET_CONN, RIGHTS_SOCKET_LISTEN, SdFlags } from "../../src/kernel/abi.js";
import { connect } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

const DIR = 3;
const enc = (s: string) => new TextEncoder().encode(s);
const RW = Rights.FD_READ | Rights.FD_WRITE;

interface Row {
  /** The right dropped, by its witx name. */
  right: keyof typeof Rights;
  /** Which descriptor loses it: a file opened read-write, the preopen (base or inheriting), or stdio. */
  from: "file" | "dir" | "dir-inheriting" | "stdout" | "stdin";
  call: string;
  run(k: Kernel, fd: number): unknown;
  /** Errno when the right is missing (default ENOTCAPABLE). */
  errno?: Errno;
}

const ROWS: Row[] = [
  { right: "FD_DATASYNC", from: "file", call: "fd_datasync", run: (k, fd) => k.fs.sync(fd, true) },
  { right: "FD_READ", from: "file", call: "fd_read", run: (k, fd) => k.readFd(fd, [new Uint8Array(4)]), errno: Errno.BADF },
  { right: "FD_READ", from: "file", call: "fd_pread", run: (k, fd) => k.fs.pread(fd, [new Uint8Array(4)], 0n), errno: Errno.BADF },
  { right: "FD_READ", from: "stdin", call: "fd_read (stdin)", run: (k) => k.readFd(0, [new Uint8Array(4)]), errno: Errno.BADF },
  { right: "FD_READ", from: "dir-inheriting", call: "path_open for reading", run: (k) => k.fs.open(DIR, 0, "f", 0, Rights.FD_READ, 0n, 0) },
  { right: "FD_SEEK", from: "file", call: "fd_seek", run: (k, fd) => k.fs.seek(fd, 1n, Whence.SET) },
  { right: "FD_SEEK", from: "file", call: "fd_pread", run: (k, fd) => k.fs.pread(fd, [new Uint8Array(4)], 0n) },
  { right: "FD_SEEK", from: "file", call: "fd_pwrite", run: (k, fd) => k.fs.pwrite(fd, [enc("x")], 0n) },
  { right: "FD_FDSTAT_SET_FLAGS", from: "file", call: "fd_fdstat_set_flags", run: (k, fd) => k.fs.setFlags(fd, FdFlags.APPEND) },
  { right: "FD_SYNC", from: "file", call: "fd_sync", run: (k, fd) => k.fs.sync(fd, false) },
  { right: "FD_WRITE", from: "file", call: "fd_write", run: (k, fd) => k.writeFd(fd, [enc("x")]), errno: Errno.BADF },
  { right: "FD_WRITE", from: "file", call: "fd_pwrite", run: (k, fd) => k.fs.pwrite(fd, [enc("x")], 0n), errno: Errno.BADF },
  { right: "FD_WRITE", from: "stdout", call: "fd_write (stdout)", run: (k) => k.writeFd(1, [enc("x")]), errno: Errno.BADF },
  { right: "FD_WRITE", from: "dir-inheriting", call: "path_open for writing", run: (k) => k.fs.open(DIR, 0, "f", 0, Rights.FD_WRITE, 0n, 0) },
  { right: "FD_ADVISE", from: "file", call: "fd_advise", run: (k, fd) => k.fs.advise(fd, 0n, 0n, 0) },
  { right: "FD_ALLOCATE", from: "file", call: "fd_allocate", run: (k, fd) => k.fs.allocate(fd, 0n, 1n) },
  { right: "PATH_CREATE_DIRECTORY", from: "dir", call: "path_create_directory", run: (k) => k.fs.createDirectory(DIR, "new-dir") },
  { right: "PATH_CREATE_FILE", from: "dir", call: "path_open with O_CREAT", run: (k) => k.fs.open(DIR, 0, "new-file", OFlags.CREAT, Rights.FD_WRITE, 0n, 0) },
  { right: "PATH_LINK_SOURCE", from: "dir", call: "path_link (source)", run: (k) => k.fs.link(DIR, 0, "f", DIR, "f-link") },
  { right: "PATH_LINK_TARGET", from: "dir", call: "path_link (target)", run: (k) => k.fs.link(DIR, 0, "f", DIR, "f-link") },
  { right: "PATH_OPEN", from: "dir", call: "path_open", run: (k) => k.fs.open(DIR, 0, "f", 0, Rights.FD_READ, 0n, 0) },
  { right: "FD_READDIR", from: "dir", call: "fd_readdir", run: (k) => k.fs.readdir(DIR, 0n) },
  { right: "PATH_READLINK", from: "dir", call: "path_readlink", run: (k) => k.fs.readlink(DIR, "l") },
  { right: "PATH_RENAME_SOURCE", from: "dir", call: "path_rename (source)", run: (k) => k.fs.rename(DIR, "f", DIR, "g") },
  { right: "PATH_RENAME_TARGET", from: "dir", call: "path_rename (target)", run: (k) => k.fs.rename(DIR, "f", DIR, "g") },
  { right: "PATH_FILESTAT_GET", from: "dir", call: "path_filestat_get", run: (k) => k.fs.pathFilestat(DIR, 0, "f") },
  { right: "PATH_FILESTAT_SET_SIZE", from: "dir", call: "path_open with O_TRUNC", run: (k) => k.fs.open(DIR, 0, "f", OFlags.TRUNC, Rights.FD_WRITE, 0n, 0) },
  { right: "PATH_FILESTAT_SET_TIMES", from: "dir", call: "path_filestat_set_times", run: (k) => k.fs.pathSetTimes(DIR, 0, "f", 1n, 1n, FstFlags.ATIM) },
  { right: "FD_FILESTAT_GET", from: "file", call: "fd_filestat_get", run: (k, fd) => k.fs.filestat(fd) },
  { right: "FD_FILESTAT_GET", from: "dir", call: "fd_filestat_get (directory)", run: (k) => k.fs.filestat(DIR) },
  { right: "FD_FILESTAT_SET_SIZE", from: "file", call: "fd_filestat_set_size", run: (k, fd) => k.fs.setSize(fd, 0n) },
  { right: "FD_FILESTAT_SET_SIZE", from: "dir-inheriting", call: "path_open with O_TRUNC (the new fd's right)", run: (k) => k.fs.open(DIR, 0, "f", OFlags.TRUNC, Rights.FD_WRITE, 0n, 0) },
  { right: "FD_FILESTAT_SET_TIMES", from: "file", call: "fd_filestat_set_times", run: (k, fd) => k.fs.setTimes(fd, 1n, 1n, FstFlags.ATIM) },
  { right: "FD_FILESTAT_SET_TIMES", from: "dir", call: "fd_filestat_set_times (directory)", run: (k) => k.fs.setTimes(DIR, 1n, 1n, FstFlags.ATIM) },
  { right: "PATH_SYMLINK", from: "dir", call: "path_symlink", run: (k) => k.fs.symlink("f", DIR, "l2") },
  { right: "PATH_REMOVE_DIRECTORY", from: "dir", call: "path_remove_directory", run: (k) => k.fs.removeDirectory(DIR, "empty") },
  { right: "PATH_UNLINK_FILE", from: "dir", call: "path_unlink_file", run: (k) => k.fs.unlinkFile(DIR, "f") },
  { right: "POLL_FD_READWRITE", from: "file", call: "poll_oneoff (fd_read)", run: (k, fd) => pollOneoff(SubscriptionList.of([{ userdata: 1n, type: EventType.FD_READ, fd }]), k.fds, k.clocks, undefined) },
  { right: "POLL_FD_READWRITE", from: "stdout", call: "poll_oneoff (fd_write, stdout)", run: (k) => pollOneoff(SubscriptionList.of([{ userdata: 1n, type: EventType.FD_WRITE, fd: 1 }]), k.fds, k.clocks, undefined) },
];

function boot(): { k: Kernel; file: number } {
  const fs = new MemoryFs({ f: "hello", "empty/.keep": "" });
  fs.symlinkAt("f", "l");
  const k = new Kernel({ preopens: [{ guest: "/s", memory: fs }], stdin: "abc", stdout: "null" });
  k.fs.unlinkFile(DIR, "empty/.keep");
  const file = k.fs.open(DIR, 0, "f", 0, RW, 0n, 0);
  return { k, file };
}

function drop(k: Kernel, fd: number, right: bigint, inheriting: boolean): void {
  const st = k.fs.fdstat(fd);
  k.fs.setRights(fd, inheriting ? st.rightsBase : st.rightsBase & ~right, inheriting ? st.rightsInheriting & ~right : st.rightsInheriting);
}

function errnoOf(fn: () => unknown): Errno | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof WasiError) return err.errno;
    throw err;
  }
}

describe("the WASI rights table, call by call", () => {
  for (const row of ROWS) {
    const want = row.errno ?? Errno.NOTCAPABLE;
    test(`${row.call} needs ${row.right} on the ${row.from === "dir-inheriting" ? "directory's inheriting rights" : row.from}: ${Errno[want]} without it`, () => {
      const right = Rights[row.right];
      const target = (k: Kernel, file: number) => (row.from === "file" ? file : row.from === "stdout" ? 1 : row.from === "stdin" ? 0 : DIR);
      // With the right: whatever happens, not for want of it.
      const a = boot();
      const got = errnoOf(() => row.run(a.k, a.file));
      assert.notEqual(got === null ? "success" : Errno[got], Errno[want], `${row.call} failed with the right held`);
      a.k.close();
      // Without it.
      const b = boot();
      drop(b.k, target(b.k, b.file), right, row.from === "dir-inheriting");
      assert.equal(Errno[errnoOf(() => row.run(b.k, b.file)) ?? Errno.SUCCESS], Errno[want]);
      b.k.close();
    });
  }

  test("FD_SEEK implies FD_TELL: fd_tell works with FD_SEEK alone, and fails with neither", () => {
    const { k, file } = boot();
    k.fs.setRights(file, Rights.FD_SEEK, 0n);
    assert.equal(k.fs.tell(file), 0n);
    k.fs.setRights(file, 0n, 0n);
    assert.equal(Errno[errnoOf(() => k.fs.tell(file))!], "NOTCAPABLE");
    k.close();
  });

  test("every right of the table is audited here (the socket ones below, FD_TELL above)", () => {
    const covered = new Set<string>([...ROWS.map((r) => r.right), "FD_TELL", "SOCK_ACCEPT", "SOCK_SHUTDOWN"]);
    assert.deepEqual(Object.keys(Rights).filter((r) => !covered.has(r)), []);
  });
});

describe("the socket rights, on a real listener and connection", () => {
  test("sock_accept needs SOCK_ACCEPT on the listener; sock_shutdown needs SOCK_SHUTDOWN; sock_send/sock_recv need FD_WRITE/FD_READ (EBADF)", async () => {
    const io = IoThread.start();
    const client = { socket: undefined as ReturnType<typeof connect> | undefined };
    try {
      const l = await io.listen("127.0.0.1:0");
      const k = new Kernel({ listeners: [{ id: l.handle, address: l.address }], io: await io.client() });
      const LISTENER = 3;
      assert.equal(Errno[errnoOf(() => k.sockets.accept(LISTENER, FdFlags.NONBLOCK))!], "AGAIN", "with the right: nothing pending");
      k.fs.setRights(LISTENER, RIGHTS_SOCKET_LISTEN & ~Rights.SOCK_ACCEPT, 0n);
      assert.equal(Errno[errnoOf(() => k.sockets.accept(LISTENER, FdFlags.NONBLOCK))!], "NOTCAPABLE");
      k.close();

      const k2 = new Kernel({ listeners: [{ id: l.handle, address: l.address }], io: await io.client() });
      const [host, port] = [l.address.slice(0, l.address.lastIndexOf(":")), Number(l.address.slice(l.address.lastIndexOf(":") + 1))];
      client.socket = connect({ host, port });
      client.socket.on("error", () => undefined);
      await once(client.socket, "connect");
      let conn = -1;
      for (let i = 0; i < 200 && conn < 0; i++) {
        const e = errnoOf(() => (conn = k2.sockets.accept(LISTENER, FdFlags.NONBLOCK)));
        if (e === Errno.AGAIN) await sleep(10);
        else if (e !== null) assert.fail(`sock_accept: ${Errno[e]}`);
      }
      assert.ok(conn >= 0, "the connection was accepted");
      assert.equal(k2.sockets.send(conn, [enc("x")], 0), 1, "sock_send with FD_WRITE");
      k2.fs.setRights(conn, RIGHTS_SOCKET_CONN & ~Rights.SOCK_SHUTDOWN & ~Rights.FD_WRITE & ~Rights.FD_READ, 0n);
      assert.equal(Errno[errnoOf(() => k2.sockets.shutdown(conn, SdFlags.WR))!], "NOTCAPABLE");
      assert.equal(Errno[errnoOf(() => k2.sockets.send(conn, [enc("x")], 0))!], "BADF");
      assert.equal(Errno[errnoOf(() => k2.sockets.recv(conn, [new Uint8Array(4)], 0))!], "BADF");
      k2.close();
    } finally {
      client.socket?.destroy();
      await io.close();
    }
  });
});
