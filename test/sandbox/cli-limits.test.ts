import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { limitsFromFlags } from "../../src/sandbox/cli-limits.js";
import { EXIT_CODES } from "../../src/sandbox/limits.js";
import { REPO } from "./helpers.js";

const BIN = `${REPO}bin/uniwasm.js`;
const FX = `${REPO}test/fixtures/c-sandbox/`;
const HOSTILE = `${REPO}test/fixtures/hostile/`;

/** Runs `uniwasm run ARGS` with a stdin pipe that stays open and never delivers; resolves when the process ends. */
function runWithSilentStdin(args: string[], limitMs = 60_000): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "run", ...args], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`uniwasm run ${args.join(" ")} still running after ${limitMs} ms: the deadline did not end it`));
    }, limitMs);
    child.on("exit", (status, signal) => {
      clearTimeout(guard);
      child.stdin.destroy();
      resolve({ status, signal, stderr });
    });
  });
}
function uniwasm(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "run", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("uniwasm run limit flags", () => {
  test("flags parse into limits, wasmtime's -W spelling too", () => {
    assert.deepEqual(limitsFromFlags({}), {});
    assert.deepEqual(limitsFromFlags({ maxMemory: "16M", fuel: "1000", timeout: "2s", maxStack: "8" }), { maxMemoryBytes: 16 << 20, fuel: 1000n, timeoutMs: 2000, stackSizeMb: 8 });
    assert.deepEqual(limitsFromFlags({ W: ["max-memory-size=65536", "fuel=5", "timeout=100ms", "max-wasm-stack=2097152"] }), { maxMemoryBytes: 65536, fuel: 5n, timeoutMs: 100, stackSizeMb: 2 });
    assert.throws(() => limitsFromFlags({ fuel: "lots" }), /--fuel lots: must be an integer from 0 to 9007199254740991/);
    assert.throws(() => limitsFromFlags({ W: ["speed=11"] }), /unknown option "speed"/);
  });
  test("-W takes wasmtime's comma-separated form", () => {
    assert.deepEqual(limitsFromFlags({ W: ["max-memory-size=16M,fuel=1000,timeout=2s", "max-table-elements=10"] }), { maxMemoryBytes: 16 << 20, fuel: 1000n, timeoutMs: 2000, maxTableElements: 10 });
    const r = uniwasm("-W", "max-memory-size=16M,fuel=100000000000,timeout=1h", `${FX}hello.wasm`);
    assert.equal(r.status, 0, r.stderr);
  });
  test("--timeout takes the manifest's durations, 1h included, up to 24h", () => {
    assert.deepEqual(limitsFromFlags({ timeout: "1h" }), { timeoutMs: 3_600_000 });
    assert.deepEqual(limitsFromFlags({ timeout: "1.5s" }), { timeoutMs: 1500 });
    assert.throws(() => limitsFromFlags({ timeout: "25h" }), /--timeout 25h: must be a duration from 1ms to 24h/);
  });
  for (const [flag, value, range] of [
    ["--max-stack", "0", /must be an integer number of MiB from 1 to 256$/],
    ["--max-stack", "100000", /must be an integer number of MiB from 1 to 256$/],
    ["--fuel", "9007199254740992", /must be an integer from 0 to 9007199254740991 \(2\^53-1\)$/],
    ["--max-memory", "8G", /must be a size from 64K to 4G/],
    ["--max-table-elements", "2000000", /must be an integer from 0 to 1000000$/],
  ] as const) {
    test(`${flag} ${value} is refused in one line naming the flag and its range, exit 2`, () => {
      const r = uniwasm(flag, value, `${FX}hello.wasm`);
      assert.equal(r.status, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.startsWith(`uniwasm run: ${flag} ${value}: `), r.stderr);
      assert.match(lines[0]!, range);
    });
  }
  test("a run without flags has the documented default limits (256 MiB of memory, 1,000,000 table elements)", () => {
    const mem = uniwasm(`${FX}memhog.wasm`, "300");
    assert.equal(mem.status, EXIT_CODES.memory_limit, mem.stderr);
    assert.match(mem.stderr, /memory limit of 256 MiB reached/);
    const tables = uniwasm(`${HOSTILE}table-grow-trap.wasm`);
    assert.equal(tables.status, EXIT_CODES.memory_limit, tables.stderr);
    assert.match(tables.stderr, /table limit of 1000000 elements reached/);
  });
  test("a deadline ends the run while the guest waits for stdin that never comes", async () => {
    const r = await runWithSilentStdin(["--timeout", "1s", `${FX}stdin-upper.wasm`]);
    assert.equal(r.status, EXIT_CODES.deadline_exceeded, r.stderr);
    assert.match(r.stderr, /deadline_exceeded: deadline of 1000 ms exceeded/);
  });
  test("a deadline ends the run while the guest is blocked opening a FIFO in a preopened directory", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "uniwasm-fifo-"));
    try {
      if (spawnSync("mkfifo", [join(dir, "fifo")]).status !== 0) return t.skip("mkfifo is not available");
      const r = await runWithSilentStdin(["--timeout", "1s", "--dir", `${dir}::/data`, `${HOSTILE}open-fifo.wasm`, "/data/fifo"]);
      assert.match(r.stderr, /deadline_exceeded: deadline of 1000 ms exceeded/);
      // The thread stays in open(2) until a writer comes; the process ends itself rather than wait.
      assert.ok(r.status === EXIT_CODES.deadline_exceeded || r.signal === "SIGTERM", `status ${r.status}, signal ${r.signal}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("--timeout stops a spinning guest, says so, and exits 124", () => {
    const r = uniwasm("--timeout", "100ms", `${FX}spin.wasm`);
    assert.equal(r.status, EXIT_CODES.deadline_exceeded);
    assert.match(r.stderr, /deadline_exceeded: deadline of 100 ms exceeded/);
  });
  test("--max-memory ends a guest that needs more, and lets it run when raised", () => {
    const low = uniwasm("--max-memory", "8M", `${FX}memhog.wasm`, "32");
    assert.equal(low.status, EXIT_CODES.memory_limit);
    assert.match(low.stderr, /memory_limit: memory limit of 8 MiB reached/);
    const high = uniwasm("--max-memory", "64M", `${FX}memhog.wasm`, "32");
    assert.equal(high.status, 0);
    assert.match(high.stdout, /allocated 32 MiB/);
  });
  test("--fuel ends a guest out of fuel with 152, and lets it finish when raised", () => {
    const low = uniwasm("--fuel", "10000", `${FX}sha256.wasm`);
    assert.equal(low.status, EXIT_CODES.fuel_exhausted);
    assert.match(low.stderr, /fuel_exhausted/);
    const high = uniwasm("-W", "fuel=100000000000", `${FX}sha256.wasm`);
    assert.equal(high.status, 0);
    assert.equal(high.stdout, "b8a9d093211a8931889f1bc4510c24e5431dc34fd3bf866bb4a5f02ef819a45f\n");
  });
  test("--max-stdout, --max-stderr and --max-open-files take a manifest's grammar and end the guest at the limit (153, 150)", () => {
    assert.deepEqual(limitsFromFlags({ maxStdout: "16KiB", maxStderr: "1M", maxOpenFiles: "64" }), { stdoutBytes: 16384, stderrBytes: 1 << 20, openFiles: 64 });
    assert.throws(() => limitsFromFlags({ maxStdout: "lots" }), /--max-stdout lots: not a size/);
    assert.throws(() => limitsFromFlags({ maxOpenFiles: "0" }), /--max-open-files 0: must be an integer from 1/);
    const out = uniwasm("--max-stdout", "8K", `${FX}output.wasm`, "65536");
    assert.equal(out.status, EXIT_CODES.output_limit);
    assert.match(out.stderr, /output_limit: .*stdout exceeded its limit of 8192 bytes/);
    assert.equal(uniwasm("--max-stdout", "64K", `${FX}output.wasm`, "65536").status, 0);
    const err = uniwasm("--max-stderr", "4K", `${FX}output.wasm`, "8192", "err");
    assert.equal(err.status, EXIT_CODES.output_limit);
    const dir = mkdtempSync(join(tmpdir(), "uw-fds-"));
    writeFileSync(join(dir, "file"), "x");
    const fds = uniwasm("--max-open-files", "6", "--dir", `${dir}::/data`, `${FX}fds.wasm`, "8");
    assert.equal(fds.status, EXIT_CODES.fd_limit, fds.stderr + fds.stdout);
    assert.equal(uniwasm("--max-open-files", "16", "--dir", `${dir}::/data`, `${FX}fds.wasm`, "8").status, 0);
  });
  test("a bad limit flag is refused before anything runs", () => {
    const r = uniwasm("--timeout", "soon", `${FX}hello.wasm`);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--timeout soon: not a duration/);
  });
});
