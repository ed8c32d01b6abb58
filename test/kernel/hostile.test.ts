/**
 * Issue 8, the kernel's part: a hostile guest must not make the host allocate
 * or work far beyond the instance's limits. Each test runs a real guest (or
 * the kernel's typed calls) doing what the report did, and checks both the
 * errno the guest sees and what the host held.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import { runModuleSync } from "../../src/sandbox/instance.js";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { Errno, OFlags, Rights } from "../../src/kernel/abi.js";
import { WasiError } from "../../src/kernel/errors.js";
import { MemoryFs, MemoryBudget, ENTRY_COST_BYTES } from "../../src/kernel/fs-memory.js";
import { IOV_MAX } from "../../src/kernel/memory.js";
import { POLL_MAX_SUBSCRIPTIONS, SubscriptionList } from "../../src/kernel/poll.js";
import { EventType } from "../../src/kernel/abi.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const hostile = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, "test/fixtures/hostile", name)));
const MiB = 1024 * 1024;

function fails(fn: () => unknown, errno: Errno): void {
  assert.throws(fn, (err: unknown) => err instanceof WasiError && Errno[err.errno] === Errno[errno]);
}

/** Host bytes held in ArrayBuffers and the V8 heap: what a guest could make the host allocate. */
function hostBytes(): number {
  const m = process.memoryUsage();
  return m.arrayBuffers + getHeapStatistics().total_heap_size;
}

/** "key v1 v2" lines of a guest's stdout, by key. */
function lines(stdout: Uint8Array): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const l of new TextDecoder().decode(stdout).split("\n").filter(Boolean)) {
    const [k, ...v] = l.split(" ");
    out.set(k!, [...(out.get(k!) ?? []), v]);
  }
  return out;
}

describe("in-memory directories are charged to the instance", () => {
  test("three 1 GiB fd_filestat_set_size are ENOSPC, writes stop at memDirBytes, and unlinking gives the bytes back", () => {
    const before = hostBytes();
    const r = runModuleSync(hostile("memdir-fill.wasm"), {
      args: ["memdir-fill"],
      preopens: [{ guest: "/scratch", memory: {} }],
      stdout: "buffer",
      limits: { memDirBytes: 16 * MiB },
    });
    const grew = hostBytes() - before;
    assert.equal(r.reason, "exit", r.message);
    const got = lines(r.stdout);
    assert.deepEqual(got.get("set_size"), [[String(Errno.NOSPC)], [String(Errno.NOSPC)], [String(Errno.NOSPC)]]);
    const [[filled, fillErrno]] = got.get("fill")! as [[string, string]];
    assert.equal(Number(fillErrno), Errno.NOSPC);
    assert.ok(Number(filled) <= 16 * MiB && Number(filled) >= 15 * MiB, `filled ${filled} bytes of a 16 MiB budget`);
    assert.deepEqual(got.get("unlink"), [["0"]]);
    assert.deepEqual(got.get("after_unlink"), [["0"]], "the removed file's bytes were given back to the budget");
    // Before the budget, each set_size allocated 1 GiB on the host (3.2 GB RSS in the report).
    assert.ok(grew < 16 * MiB + 32 * MiB, `the host grew by ${(grew / MiB).toFixed(1)} MiB for a 16 MiB budget`);
  });

  test("the budget is shared by all in-memory preopens of one kernel and reported as memDirs", () => {
    const k = new Kernel({ preopens: [{ guest: "/a", memory: {} }, { guest: "/b", memory: {} }], limits: { memDirBytes: 1 * MiB } });
    const a = k.fs.open(3, 0, "f", OFlags.CREAT, Rights.FD_WRITE | Rights.FD_FILESTAT_SET_SIZE, 0n, 0);
    const b = k.fs.open(4, 0, "f", OFlags.CREAT, Rights.FD_WRITE | Rights.FD_FILESTAT_SET_SIZE, 0n, 0);
    k.fs.setSize(a, 600_000n);
    fails(() => k.fs.setSize(b, 600_000n), Errno.NOSPC);
    assert.ok(k.memDirs.used <= 1 * MiB && k.memDirs.used >= 600_000);
    assert.ok(k.memDirs.peak >= k.memDirs.used);
    k.fs.setSize(a, 0n);
    k.fs.setSize(b, 600_000n);
    k.close();
  });

  test("a file past 1 GiB is EFBIG whatever the budget", () => {
    const k = new Kernel({ preopens: [{ guest: "/a", memory: {} }], limits: { memDirBytes: 4 * 1024 * MiB } });
    const fd = k.fs.open(3, 0, "f", OFlags.CREAT, Rights.FD_WRITE | Rights.FD_FILESTAT_SET_SIZE, 0n, 0);
    fails(() => k.fs.setSize(fd, (1n << 30n) + 1n), Errno.FBIG);
    assert.equal(k.memDirs.used, ENTRY_COST_BYTES + 1);
    k.close();
  });

  test("millions of empty files run out of budget: entries are charged, not only contents", () => {
    const k = new Kernel({ preopens: [{ guest: "/a", memory: {} }], limits: { memDirBytes: 64 * 1024 } });
    let made = 0;
    assert.throws(() => {
      for (;;) {
        k.fs.close(k.fs.open(3, 0, `file-${made}`, OFlags.CREAT, Rights.FD_WRITE, 0n, 0));
        made++;
      }
    }, (e: unknown) => e instanceof WasiError && e.errno === Errno.NOSPC);
    assert.ok(made < (64 * 1024) / ENTRY_COST_BYTES, `${made} files`);
    k.close();
  });

  test("seeded files are shared until written, then charged as the instance's own copy", () => {
    const seed = new Uint8Array(200_000).fill(7);
    const fs = new MemoryFs({ "big.bin": seed }, new MemoryBudget(1 * MiB));
    const usedBySeed = fs.bytesUsed;
    assert.ok(usedBySeed < 1024, "a seed's contents are not charged while shared");
    const h = fs.openFile("big.bin", { read: true, write: true, create: false, exclusive: false, truncate: false, append: false });
    h.write(new Uint8Array([1]), 0n);
    assert.ok(fs.bytesUsed >= usedBySeed + 200_000, "the first write makes (and charges) a private copy");
    assert.equal(seed[0], 7, "the seed itself is never written");
    h.close();
  });

  test("a seed larger than the budget is a configuration error, not a guest errno", () => {
    assert.throws(() => new Kernel({ preopens: [{ guest: "/a", memory: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, "x"])) }], limits: { memDirBytes: 4096 } }), RangeError);
  });
});

describe("per-call caps on iovecs and subscriptions", () => {
  test("fd_write with 30,000,000 iovecs and poll_oneoff with 2,500,000 subscriptions are EINVAL, and the host allocates nothing for them", () => {
    const before = hostBytes();
    const r = runModuleSync(hostile("huge-counts.wasm"), { args: ["huge-counts"], stdout: "buffer" });
    const grew = hostBytes() - before;
    assert.equal(r.reason, "exit", r.message);
    assert.equal(r.exitCode, 0, `checks that failed (bits, see huge-counts.wat): ${r.exitCode.toString(2)}`);
    // The guest's own 237 MiB memory is not counted here (V8 reserves it outside the heap and ArrayBuffer figures).
    assert.ok(grew < 32 * MiB, `the host grew by ${(grew / MiB).toFixed(1)} MiB`);
  });

  test("IOV_MAX is Linux's 1024 and the subscription cap is documented as POLL_MAX_SUBSCRIPTIONS", () => {
    assert.equal(IOV_MAX, 1024);
    assert.equal(POLL_MAX_SUBSCRIPTIONS, 4096);
    const subs = Array.from({ length: POLL_MAX_SUBSCRIPTIONS + 1 }, () => ({ userdata: 0n, type: EventType.CLOCK as const, clock: 1, timeout: 0n, flags: 0 }));
    fails(() => SubscriptionList.of(subs), Errno.INVAL);
    assert.equal(SubscriptionList.of(subs.slice(1)).length, POLL_MAX_SUBSCRIPTIONS);
  });
});

describe("the sandbox applies memDirBytes", () => {
  const pool = new ExecutorPool({ size: 1 });
  after(() => pool.close());
  test("a 16 MiB app with a writable in-memory dir holds at most its memDirBytes and reports it", async () => {
    const r = await pool.run(hostile("memdir-fill.wasm"), {
      args: ["memdir-fill"],
      preopens: [{ guest: "/scratch", memory: {} }],
      limits: { maxMemoryBytes: 16 * MiB, memDirBytes: 8 * MiB },
    });
    assert.equal(r.reason, "exit", r.message);
    const got = lines(r.stdout);
    assert.deepEqual(got.get("set_size"), [[String(Errno.NOSPC)], [String(Errno.NOSPC)], [String(Errno.NOSPC)]]);
    assert.ok(Number(got.get("fill")![0]![0]) <= 8 * MiB);
    assert.ok(r.memDirBytes !== undefined && r.memDirBytes > MiB && r.memDirBytes <= 8 * MiB, `memDirBytes ${r.memDirBytes}`);
  });
});
