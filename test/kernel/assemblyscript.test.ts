/**
 * AssemblyScript guests (test/fixtures/as, compiled by asc with the
 * @assemblyscript/wasi-shim configuration): a second toolchain whose runtime
 * uses WASI differently from wasi-libc, run on the kernel.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runModule, type RunResult } from "../../src/sandbox/inline.js";
import { MemoryFs } from "../../src/kernel/fs-memory.js";

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/as/${name}.wasm`, import.meta.url)));
const decoder = new TextDecoder();
const context = (r: RunResult): string => `exit ${r.exitCode} (${r.reason}${r.message ? `: ${r.message}` : ""})\nstderr: ${decoder.decode(r.stderr)}`;

test("AssemblyScript hello prints through console.log and exits 0", async () => {
  const r = await runModule(fixture("hello"), { args: ["hello"], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(decoder.decode(r.stdout), "Hello from AssemblyScript!\n");
});

test("AssemblyScript sees exactly the granted args and env, and exits with the code it asks for", async () => {
  const r = await runModule(fixture("args_env"), {
    args: ["args_env", "one", "twö", "3"],
    env: { GREETING: "hi there", EXIT_CODE: "7" },
    stdout: "buffer",
    stderr: "buffer",
  });
  assert.equal(r.reason, "exit", context(r));
  assert.equal(r.exitCode, 7, context(r));
  assert.equal(decoder.decode(r.stdout), "args: one,twö,3\nargc: 4\nGREETING=hi there\nHOME=<unset>\n");
});

test("AssemblyScript with no env and no args beyond argv[0] sees nothing inherited", async () => {
  const r = await runModule(fixture("args_env"), { args: ["args_env"], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(decoder.decode(r.stdout), "args: \nargc: 1\nGREETING=<unset>\nHOME=<unset>\n");
});

test("AssemblyScript writes a file in its preopened directory and reads it back (in-memory backend)", async () => {
  const fs = new MemoryFs();
  const r = await runModule(fixture("file_write"), { args: ["file_write"], preopens: [{ guest: "/sandbox", memory: fs }], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(decoder.decode(r.stdout), "read back: written by AssemblyScript\n");
  assert.ok((r.calls["path_open"] ?? 0) >= 2);
});

test("AssemblyScript writes a file in its preopened directory and reads it back (host directory backend)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-as-"));
  try {
    const r = await runModule(fixture("file_write"), { args: ["file_write"], preopens: [{ guest: "/sandbox", host: dir }], stdout: "buffer", stderr: "buffer" });
    assert.equal(r.exitCode, 0, context(r));
    assert.equal(readFileSync(join(dir, "out.txt"), "utf8"), "written by AssemblyScript\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("AssemblyScript file writes need the directory grant: without a preopen path_open is refused and the guest reports it", async () => {
  const r = await runModule(fixture("file_write"), { args: ["file_write"], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 1, context(r));
  assert.match(decoder.decode(r.stderr), /path_open out\.txt failed: errno (8|76)/);
});

test("AssemblyScript random, Date.now and performance.now are live and plausible", async () => {
  const r = await runModule(fixture("random_clock"), { args: ["random_clock"], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(decoder.decode(r.stdout), "ok\n");
  assert.ok((r.calls["random_get"] ?? 0) >= 2);
});
