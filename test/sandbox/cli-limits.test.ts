import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { limitsFromFlags } from "../../src/sandbox/cli-limits.js";
import { EXIT_CODES } from "../../src/sandbox/limits.js";
import { REPO } from "./helpers.js";

const BIN = `${REPO}bin/uniwasm.js`;
const FX = `${REPO}test/fixtures/c-sandbox/`;

function uniwasm(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "run", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("uniwasm run limit flags", () => {
  test("flags parse into limits, wasmtime's -W spelling too", () => {
    assert.equal(limitsFromFlags({}), undefined);
    assert.deepEqual(limitsFromFlags({ maxMemory: "16M", fuel: "1000", timeout: "2s", maxStack: "8" }), { maxMemoryBytes: 16 << 20, fuel: 1000n, timeoutMs: 2000, stackSizeMb: 8 });
    assert.deepEqual(limitsFromFlags({ W: ["max-memory-size=65536", "fuel=5", "timeout=100ms", "max-wasm-stack=2097152"] }), { maxMemoryBytes: 65536, fuel: 5n, timeoutMs: 100, stackSizeMb: 2 });
    assert.throws(() => limitsFromFlags({ fuel: "lots" }), /--fuel lots: expected a non-negative integer/);
    assert.throws(() => limitsFromFlags({ W: ["speed=11"] }), /unknown option "speed"/);
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
  test("a bad limit flag is refused before anything runs", () => {
    const r = uniwasm("--timeout", "soon", `${FX}hello.wasm`);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--timeout soon: not a duration/);
  });
});
