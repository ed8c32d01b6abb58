/**
 * The suite that runs on every tier (isolate, process, gvisor; one test file
 * per tier, so each stays within the runner's time bound): the conformance
 * programs, the limits (each enforced, and allowed when granted more) and the
 * path-escape programs run through an executor pool on each tier available
 * here, and must end the same way. A tier whose tool is missing is skipped
 * with the reason. The sandboxed tiers also prove their wall: what a
 * sandboxed executor can see, reach and call.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { EXIT_CODES } from "../../src/sandbox/limits.js";
import { SandboxLauncher } from "../../src/sandbox/tiers/sandbox-launcher.js";
import { tierUnavailable, type Tier } from "../../src/sandbox/tiers/tier.js";
import { conformanceCases, describeProgram, runConformanceProgram } from "../kernel/conformance-programs.js";
import { fixture, REPO, text } from "./helpers.js";

const PROBE = fileURLToPath(new URL("./probe-executor.js", import.meta.url));

/** A sandbox made for one probe run: returns what the probe reported (or how it died). */
async function probe(tier: Exclude<Tier, "isolate">, args: string[], options: { seccomp?: boolean; dirs?: { host: string; readonly: boolean }[] } = {}): Promise<{ report?: Record<string, unknown>; exitWhy: string }> {
  const launcher = new SandboxLauncher(tier, { spares: 0, entry: PROBE, entryArgs: args, ...options });
  const p = launcher.start(4);
  await p.closed();
  await launcher.close();
  const line = p.stderr.trim().split("\n").pop() ?? "";
  try {
    return { report: JSON.parse(line) as Record<string, unknown>, exitWhy: p.exitWhy };
  } catch {
    return { exitWhy: p.exitWhy };
  }
}

/** Registers the suite for one tier (skipped, with the reason, when the tier cannot run here). */
export function tierSuite(tier: Tier): void {
  const why = tierUnavailable(tier);
  describe(`${tier} tier`, { skip: why ? `the ${tier} tier is not available here: ${why}` : false }, () => {
    let root: string;
    let launcher: SandboxLauncher | undefined;
    let pool: ExecutorPool;

    before(async () => {
      // realpath: on some systems tmpdir is a symlink, and a sandbox mounts real paths.
      root = realpathSync(mkdtempSync(`${tmpdir()}/uniwasm-tier-`));
      if (tier !== "isolate") launcher = new SandboxLauncher(tier, { dirs: [{ host: root, readonly: false }], spares: 1 });
      pool = new ExecutorPool({ size: 2, ...(launcher ? { launcher } : {}) });
      await pool.whenReady();
    });
    after(async () => {
      await pool.close();
      await launcher?.close();
      rmSync(root, { recursive: true, force: true });
    });

    // Two at a time: the pool has two executors, and each program has its own directories.
    describe("conformance", { concurrency: 2 }, () => {
      for (const { name, directives, backends } of conformanceCases()) {
        for (const backend of backends) {
          // An in-memory directory lives in the executor: the node cannot set it up or read it back (the in-process suite covers it).
          if (backend === "memory") continue;
          test(`${describeProgram(name)} [${backend === "none" ? "no preopen" : "host"}]`, () =>
            runConformanceProgram(name, directives, backend, (bytes, options) => pool.run(bytes, options as Parameters<ExecutorPool["run"]>[1]), root));
        }
      }
    });

    describe("limits", () => {
      test("memory: growth past the limit ends with memory_limit; granted more, the program runs", async () => {
        const low = await pool.run(fixture("memhog.wasm"), { args: ["memhog", "32"], limits: { maxMemoryBytes: 16 << 20 } });
        assert.equal(low.reason, "memory_limit");
        assert.equal(low.exitCode, EXIT_CODES.memory_limit);
        const high = await pool.run(fixture("memhog.wasm"), { args: ["memhog", "32"], limits: { maxMemoryBytes: 64 << 20 } });
        assert.equal(high.reason, "exit");
        assert.match(text(high.stdout), /allocated 32 MiB/);
      });
      test("fuel: a run out of fuel ends with fuel_exhausted; granted more, it finishes with the same count every time", async () => {
        const out = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 1_000_000 } });
        assert.equal(out.reason, "fuel_exhausted");
        assert.equal(out.fuelConsumed, 1_000_000n);
        const a = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 10n ** 12n } });
        const b = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 10n ** 12n } });
        assert.equal(text(a.stdout), "b8a9d093211a8931889f1bc4510c24e5431dc34fd3bf866bb4a5f02ef819a45f\n");
        assert.equal(a.fuelConsumed, b.fuelConsumed);
      });
      test("deadline: a spinning guest is stopped and its executor replaced; a guest within its deadline is not", async () => {
        const before = pool.stats().deadlineKills;
        const r = await pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 200 } });
        assert.equal(r.reason, "deadline_exceeded");
        assert.equal(r.exitCode, EXIT_CODES.deadline_exceeded);
        assert.equal(pool.stats().deadlineKills, before + 1);
        const next = await pool.run(fixture("hello.wasm"), { limits: { timeoutMs: 60_000 } });
        assert.equal(text(next.stdout), "hello from the sandbox\n");
      });
      test("stack: deep recursion on a small stack ends with stack_exhausted; on a bigger one it completes", async () => {
        const small = await pool.reactor(fixture("recurse.wasm"), { limits: { stackSizeMb: 1 } });
        const r = await small.call("depth", [200_000]);
        assert.equal(r.outcome.reason, "stack_exhausted");
        await small.close();
        const big = await pool.reactor(fixture("recurse.wasm"), { limits: { stackSizeMb: 64 } });
        const ok = await big.call("depth", [200_000]);
        assert.equal(ok.outcome.reason, "exit");
        assert.equal(ok.value, 200_000);
        await big.close();
      });
      test("output: stdout past its limit ends with output_limit, keeping what fit; within it, all is delivered", async () => {
        const r = await pool.run(fixture("output.wasm"), { args: ["o", "100000"], limits: { stdoutBytes: 5000 } });
        assert.equal(r.reason, "output_limit");
        assert.equal(r.stdout.length, 5000);
        const all = await pool.run(fixture("output.wasm"), { args: ["o", "100000"] });
        assert.equal(all.reason, "exit");
        assert.equal(all.stdout.length, 100_000);
      });
      test("output: a consumer that holds what it was given holds the guest back, and everything arrives as written", async () => {
        let out = 0;
        let most = 0;
        let bytes = 0;
        let allX = true;
        const r = await pool.run(fixture("output.wasm"), {
          args: ["o", String(2 * 1024 * 1024)],
          stdout: "stream",
          onOutput: (_s, chunk) => {
            allX &&= chunk.every((x) => x === 0x78);
            bytes += chunk.length;
            out += chunk.length;
            most = Math.max(most, out);
            // A slow reader: each chunk is done with 100 ms later. The guest writes 2 MiB in far less than that.
            return new Promise((resolve) => setTimeout(() => resolve(void (out -= chunk.length)), 100));
          },
        });
        assert.equal(r.reason, "exit");
        assert.equal(bytes, 2 * 1024 * 1024);
        assert.ok(allX, "every byte as written");
        assert.ok(most <= 1024 * 1024, `at most 1 MiB held at once (${most} bytes): the guest waited for its reader`);
      });

      test("open files: opening past the descriptor limit ends with fd_limit; granted more, the program holds its files", async () => {
        const data = [{ guest: "/data", memory: { file: "contents" } }];
        const r = await pool.run(fixture("fds.wasm"), { args: ["fds", "100"], preopens: data, limits: { openFiles: 20 } });
        assert.equal(r.reason, "fd_limit");
        const ok = await pool.run(fixture("fds.wasm"), { args: ["fds", "100"], preopens: data, limits: { openFiles: 200 } });
        assert.equal(text(ok.stdout), "held 100\n");
      });
      test("a warm reactor keeps its state between calls, and a snapshot restores the same state", async () => {
        const re = await pool.reactor(fixture("values-reactor.wasm"));
        assert.equal((await re.call("add_i32", [2, 3])).value, 5);
        await re.close();
        const snap = await pool.snapshot(fixture("primes-reactor.wasm"));
        const fromSnap = await pool.reactor(fixture("primes-reactor.wasm"), { snapshot: snap });
        const fresh = await pool.reactor(fixture("primes-reactor.wasm"));
        const [a, b] = [await fromSnap.call("nth_prime", [1000]), await fresh.call("nth_prime", [1000])];
        assert.equal(a.outcome.reason, "exit");
        assert.equal(a.value, b.value);
        await fromSnap.close();
        await fresh.close();
      });
    });

    if (tier === "isolate") return;
    const sandboxed = tier;

    describe("the wall", () => {
      test("a host directory the sandbox was not made with is refused with link_error, naming it", async () => {
        const elsewhere = realpathSync(mkdtempSync(`${tmpdir()}/uniwasm-not-granted-`));
        try {
          const r = await pool.run(fixture("hello.wasm"), { preopens: [{ guest: "/x", host: elsewhere }] });
          assert.equal(r.reason, "link_error");
          assert.match(r.message, new RegExp(`host directory ${elsewhere} is not mounted`));
        } finally {
          rmSync(elsewhere, { recursive: true, force: true });
        }
      });
      test("the sandbox holds node, its libraries, the package and the granted directories, and nothing else", async () => {
        const { report, exitWhy } = await probe(sandboxed, ["--look", "/etc/passwd", `${REPO}test`, `${REPO}node_modules`, `${REPO}dist/src/index.js`, "/dirs/0", "/home", "/root"], {
          dirs: [{ host: root, readonly: true }],
        });
        assert.ok(report, `the probe said nothing: ${exitWhy}`);
        assert.deepEqual(report.exists, {
          "/etc/passwd": false,
          [`${REPO}test`]: false,
          [`${REPO}node_modules`]: false,
          [`${REPO}dist/src/index.js`]: true,
          "/dirs/0": true,
          "/home": false,
          "/root": false,
        });
        assert.ok(!(report.root as string[]).includes("etc"), `the root holds ${String(report.root)}`);
      });
      test("the sandbox has no network: the node's own listener on 127.0.0.1 cannot be reached", async () => {
        const server = createServer((s) => s.destroy());
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        try {
          const port = (server.address() as AddressInfo).port;
          // Without the seccomp filter, so that the namespace alone is what refuses it.
          const { report, exitWhy } = await probe(sandboxed, ["--connect", String(port)], { seccomp: false });
          assert.ok(report, `the probe said nothing: ${exitWhy}`);
          assert.notEqual(report.connect, "connected");
        } finally {
          server.close();
        }
      });
      if (sandboxed === "process") {
        test("an executor build that makes a system call outside the allow-list is killed (the filter is live)", async () => {
          const killed = await probe("process", ["--forbidden"]);
          assert.equal(killed.report, undefined);
          assert.match(killed.exitWhy, /SIGSYS/);
          // The same build without the filter survives the call: the kill was the filter's.
          const unfiltered = await probe("process", ["--forbidden"], { seccomp: false });
          assert.equal(unfiltered.report?.survived, true, unfiltered.exitWhy);
        });
        test("inside, the executor runs as an unprivileged user of its own user namespace", async () => {
          const { report, exitWhy } = await probe("process", []);
          assert.equal(report?.uid, 65534, exitWhy);
        });
      }
      test("kill -9 of an executor under load: its in-flight request ends with executor_lost, it is replaced, another pool does not notice", async () => {
        const other = new ExecutorPool({ size: 1, launcher: launcher! });
        try {
          await other.whenReady();
          const victims = (pool as unknown as { executors: { pid?: number; busy: boolean }[] }).executors;
          const spin = pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 60_000 } });
          const others = Array.from({ length: 20 }, () => other.run(fixture("hello.wasm")));
          // Wait until the spin is running somewhere, then kill that sandbox.
          let target: { pid?: number; busy: boolean } | undefined;
          for (let i = 0; i < 500 && !target; i++) {
            target = victims.find((e) => e.busy && e.pid);
            if (!target) await new Promise((r) => setTimeout(r, 10));
          }
          assert.ok(target?.pid, "the spin never started");
          const replacedBefore = pool.stats().replaced;
          process.kill(target.pid, "SIGKILL");
          const lost = await spin;
          assert.equal(lost.reason, "executor_lost");
          assert.match(lost.message, /killed by SIGKILL/);
          for (const r of await Promise.all(others)) assert.equal(r.reason, "exit");
          // (> rather than +1: an idle extra executor of the stack tests may retire meanwhile, and that counts too.)
          assert.ok(pool.stats().replaced > replacedBefore, "the killed executor was replaced");
          assert.ok(!victims.includes(target), "the killed executor left the pool");
          const after = await pool.run(fixture("hello.wasm"));
          assert.equal(text(after.stdout), "hello from the sandbox\n");
        } finally {
          await other.close();
        }
      });
    });
  });
}
