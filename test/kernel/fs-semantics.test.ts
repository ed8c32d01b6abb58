import { test, describe, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kernel } from "../../src/kernel/kernel.js";
import { Errno, FileType, LookupFlags, OFlags, Rights, FdFlags, Whence } from "../../src/kernel/abi.js";
import { WasiError } from "../../src/kernel/errors.js";
import type { PreopenSpec } from "../../src/kernel/options.js";

/** Asserts that `fn` fails with WASI errno `errno`. */
function fails(fn: () => unknown, errno: Errno): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WasiError, `expected a WasiError, got ${String(err)}`);
    assert.equal(Errno[err.errno], Errno[errno]);
    return true;
  });
}

const RW = Rights.FD_READ | Rights.FD_WRITE | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

// One suite, run on both filesystem backends.
for (const backend of ["host", "memory"] as const) {
  describe(`filesystem semantics [${backend}]`, () => {
    let root: string;
    let kernel: Kernel;
    const DIR = 3;

    function boot(readonly = false): Kernel {
      const preopen: PreopenSpec = backend === "host"
        ? { guest: "/sandbox", host: join(root, "sandbox"), readonly }
        : { guest: "/sandbox", memory: { "seed.txt": "seeded", "sub/inner.txt": "inner" }, readonly };
      kernel = new Kernel({ preopens: [preopen] });
      return kernel;
    }

    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), "uniwasm-fs-"));
      mkdirSync(join(root, "sandbox/sub"), { recursive: true });
      writeFileSync(join(root, "sandbox/seed.txt"), "seeded");
      writeFileSync(join(root, "sandbox/sub/inner.txt"), "inner");
      mkdirSync(join(root, "outside"));
      writeFileSync(join(root, "outside/secret.txt"), "secret");
      boot();
    });
    afterEach(() => {
      kernel.close();
      rmSync(root, { recursive: true, force: true });
    });

    test("path_open creates, writes, seeks and reads back a file", () => {
      const fd = kernel.fs.open(DIR, 0, "new.txt", OFlags.CREAT, RW, 0n, 0);
      assert.equal(kernel.writeFd(fd, [enc("hello "), enc("world")]), 11);
      assert.equal(kernel.fs.seek(fd, 0n, Whence.SET), 0n);
      const buf = new Uint8Array(32);
      const n = kernel.readFd(fd, [buf]);
      assert.equal(dec(buf.subarray(0, n)), "hello world");
      assert.equal(kernel.fs.filestat(fd).size, 11n);
    });

    test("fd_read returns EBADF on a file opened write-only", () => {
      const fd = kernel.fs.open(DIR, 0, "w.txt", OFlags.CREAT, Rights.FD_WRITE, 0n, 0);
      fails(() => kernel.readFd(fd, [new Uint8Array(4)]), Errno.BADF);
    });

    test("fd_write returns EBADF on a file opened read-only", () => {
      const fd = kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_READ, 0n, 0);
      fails(() => kernel.writeFd(fd, [enc("x")]), Errno.BADF);
    });

    test("append mode writes at the end whatever the position", () => {
      const fd = kernel.fs.open(DIR, 0, "seed.txt", 0, RW, 0n, FdFlags.APPEND);
      kernel.writeFd(fd, [enc("+more")]);
      const st = kernel.fs.pathFilestat(DIR, 0, "seed.txt");
      assert.equal(st.size, BigInt("seeded+more".length));
    });

    test("a write past the end leaves a hole that reads as zeros", () => {
      const fd = kernel.fs.open(DIR, 0, "hole.bin", OFlags.CREAT, RW, 0n, 0);
      kernel.fs.pwrite(fd, [enc("z")], 9n);
      const buf = new Uint8Array(10);
      assert.equal(kernel.fs.pread(fd, [buf], 0n), 10);
      assert.deepEqual([...buf], [0, 0, 0, 0, 0, 0, 0, 0, 0, 122]);
    });

    test("path_open with .. above the preopen is EPERM", () => {
      fails(() => kernel.fs.open(DIR, 0, "../outside/secret.txt", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
      fails(() => kernel.fs.open(DIR, 0, "sub/../../outside/secret.txt", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
    });

    test("an absolute path is EPERM", () => {
      fails(() => kernel.fs.open(DIR, 0, "/etc/passwd", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
    });

    test(".. inside the preopen resolves normally", () => {
      const fd = kernel.fs.open(DIR, 0, "sub/../seed.txt", 0, Rights.FD_READ, 0n, 0);
      const buf = new Uint8Array(16);
      assert.equal(dec(buf.subarray(0, kernel.readFd(fd, [buf]))), "seeded");
    });

    test("a directory fd confines its own lookups: .. above it is EPERM", () => {
      const sub = kernel.fs.open(DIR, 0, "sub", OFlags.DIRECTORY, 0n, 0n, 0);
      fails(() => kernel.fs.open(sub, 0, "../seed.txt", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
    });

    test("symlinks are followed inside and refused when they lead out", () => {
      kernel.fs.symlink("seed.txt", DIR, "inside-link");
      kernel.fs.symlink("../outside/secret.txt", DIR, "escape-link");
      const fd = kernel.fs.open(DIR, LookupFlags.SYMLINK_FOLLOW, "inside-link", 0, Rights.FD_READ, 0n, 0);
      assert.equal(kernel.fs.filestat(fd).filetype, FileType.REGULAR_FILE);
      fails(() => kernel.fs.open(DIR, LookupFlags.SYMLINK_FOLLOW, "escape-link", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
      fails(() => kernel.fs.open(DIR, 0, "inside-link", 0, Rights.FD_READ, 0n, 0), Errno.LOOP);
    });

    test("absolute symlink targets cannot be created", () => {
      fails(() => kernel.fs.symlink("/etc/passwd", DIR, "abs"), Errno.PERM);
    });

    test("a symlink loop is ELOOP", () => {
      kernel.fs.symlink("b", DIR, "a");
      kernel.fs.symlink("a", DIR, "b");
      fails(() => kernel.fs.open(DIR, LookupFlags.SYMLINK_FOLLOW, "a", 0, Rights.FD_READ, 0n, 0), Errno.LOOP);
    });

    test("path_create_directory then path_remove_directory; ENOTEMPTY and EEXIST", () => {
      kernel.fs.createDirectory(DIR, "d");
      fails(() => kernel.fs.createDirectory(DIR, "d"), Errno.EXIST);
      fails(() => kernel.fs.removeDirectory(DIR, "sub"), Errno.NOTEMPTY);
      kernel.fs.removeDirectory(DIR, "d");
      fails(() => kernel.fs.pathFilestat(DIR, 0, "d"), Errno.NOENT);
    });

    test("path_unlink_file on a directory is EISDIR, path_remove_directory on a file is ENOTDIR", () => {
      fails(() => kernel.fs.unlinkFile(DIR, "sub"), Errno.ISDIR);
      fails(() => kernel.fs.removeDirectory(DIR, "seed.txt"), Errno.NOTDIR);
    });

    test("rename moves a file and replaces the target", () => {
      kernel.fs.rename(DIR, "seed.txt", DIR, "sub/moved.txt");
      fails(() => kernel.fs.pathFilestat(DIR, 0, "seed.txt"), Errno.NOENT);
      assert.equal(kernel.fs.pathFilestat(DIR, 0, "sub/moved.txt").size, 6n);
    });

    test("rename and link out of the preopen are EPERM", () => {
      fails(() => kernel.fs.rename(DIR, "seed.txt", DIR, "../stolen.txt"), Errno.PERM);
      fails(() => kernel.fs.link(DIR, 0, "seed.txt", DIR, "../linked.txt"), Errno.PERM);
      fails(() => kernel.fs.link(DIR, 0, "../outside/secret.txt", DIR, "in.txt"), Errno.PERM);
    });

    test("fd_readdir lists . and .. first and cookies resume where they left off", () => {
      const all = kernel.fs.readdir(DIR, 0n).map((e) => e.name);
      assert.deepEqual(all, [".", "..", "seed.txt", "sub"]);
      const rest = kernel.fs.readdir(DIR, 2n);
      assert.deepEqual(rest.map((e) => e.name), ["seed.txt", "sub"]);
      assert.deepEqual(rest.map((e) => e.next), [3n, 4n]);
      assert.deepEqual(kernel.fs.readdir(DIR, 4n), []);
    });

    test("a trailing slash on a file is ENOTDIR", () => {
      fails(() => kernel.fs.pathFilestat(DIR, 0, "seed.txt/"), Errno.NOTDIR);
      fails(() => kernel.fs.open(DIR, 0, "seed.txt/", 0, Rights.FD_READ, 0n, 0), Errno.NOTDIR);
    });

    test("fd_filestat_set_times round-trips exact nanoseconds", () => {
      const fd = kernel.fs.open(DIR, 0, "seed.txt", 0, RW, 0n, 0);
      const mtim = 1_700_000_000_123_456_789n;
      kernel.fs.setTimes(fd, 0n, mtim, 4 /* MTIM */);
      assert.equal(kernel.fs.filestat(fd).mtim, mtim);
    });

    test("fd_fdstat_set_rights only drops rights, and a dropped right is ENOTCAPABLE", () => {
      const fd = kernel.fs.open(DIR, 0, "seed.txt", 0, RW, 0n, 0);
      const before = kernel.fs.fdstat(fd).rightsBase;
      kernel.fs.setRights(fd, before & ~Rights.FD_SEEK, 0n);
      fails(() => kernel.fs.seek(fd, 1n, Whence.SET), Errno.NOTCAPABLE);
      fails(() => kernel.fs.setRights(fd, before, 0n), Errno.NOTCAPABLE);
    });

    test("huge sizes and offsets are errnos, never host exceptions", () => {
      const fd = kernel.fs.open(DIR, 0, "big.bin", OFlags.CREAT, RW, 0n, 0);
      fails(() => kernel.fs.setSize(fd, 1n << 62n), Errno.FBIG);
      fails(() => kernel.fs.setSize(fd, (1n << 64n) - 1n), Errno.INVAL);
      fails(() => kernel.fs.pread(fd, [new Uint8Array(4)], (1n << 64n) - 1n), Errno.INVAL);
      fails(() => kernel.fs.pwrite(fd, [enc("x")], (1n << 63n) + 5n), Errno.INVAL);
      fails(() => kernel.fs.pwrite(fd, [enc("x")], 1n << 62n), Errno.FBIG);
      assert.equal(kernel.fs.filestat(fd).size, 0n);
    });

    test("fd_seek on a directory is EBADF and on stdout is ESPIPE", () => {
      fails(() => kernel.fs.seek(DIR, 0n, Whence.CUR), Errno.BADF);
      fails(() => kernel.fs.seek(1, 0n, Whence.CUR), Errno.SPIPE);
    });

    test("a read-only preopen refuses every mutation with EPERM and still reads", () => {
      kernel.close();
      boot(true);
      fails(() => kernel.fs.open(DIR, 0, "new.txt", OFlags.CREAT, RW, 0n, 0), Errno.PERM);
      fails(() => kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_WRITE, 0n, 0), Errno.PERM);
      fails(() => kernel.fs.createDirectory(DIR, "d"), Errno.PERM);
      fails(() => kernel.fs.unlinkFile(DIR, "seed.txt"), Errno.PERM);
      fails(() => kernel.fs.rename(DIR, "seed.txt", DIR, "x"), Errno.PERM);
      fails(() => kernel.fs.symlink("seed.txt", DIR, "l"), Errno.PERM);
      const fd = kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_READ, 0n, 0);
      const buf = new Uint8Array(8);
      assert.equal(dec(buf.subarray(0, kernel.readFd(fd, [buf]))), "seeded");
    });

    test("closed descriptors are EBADF and their numbers are reused lowest first", () => {
      const a = kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_READ, 0n, 0);
      const b = kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_READ, 0n, 0);
      kernel.closeFd(a);
      fails(() => kernel.readFd(a, [new Uint8Array(1)]), Errno.BADF);
      assert.equal(kernel.fs.open(DIR, 0, "seed.txt", 0, Rights.FD_READ, 0n, 0), a);
      assert.notEqual(a, b);
    });
  });
}

describe("host directory confinement", () => {
  test("a host symlink planted inside that points outside is refused, and nothing outside changes", () => {
    const root = mkdtempSync(join(tmpdir(), "uniwasm-fs-"));
    try {
      mkdirSync(join(root, "sandbox"));
      mkdirSync(join(root, "outside"));
      writeFileSync(join(root, "outside/secret.txt"), "secret");
      symlinkSync(join(root, "outside"), join(root, "sandbox/abs-dir"));
      symlinkSync("../outside", join(root, "sandbox/rel-dir"));
      const k = new Kernel({ preopens: [{ guest: "/sandbox", host: join(root, "sandbox") }] });
      fails(() => k.fs.open(3, 0, "abs-dir/secret.txt", 0, Rights.FD_READ, 0n, 0), Errno.PERM);
      fails(() => k.fs.open(3, 0, "rel-dir/secret.txt", OFlags.TRUNC, Rights.FD_WRITE, 0n, 0), Errno.PERM);
      fails(() => k.fs.unlinkFile(3, "rel-dir/secret.txt"), Errno.PERM);
      // The link itself may be removed: it is inside.
      k.fs.unlinkFile(3, "rel-dir");
      k.close();
      assert.equal(readFileSync(join(root, "outside/secret.txt"), "utf8"), "secret");
      assert.equal(existsSync(join(root, "sandbox/rel-dir")), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
