/**
 * Kernel behaviour that only hand-written WebAssembly can provoke (guests in
 * test/fixtures/wat-kernel, built by scripts/build-fixtures.sh): exits from
 * deep or unusual places, and pointers or lengths no C compiler would emit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runModule, type RunResult } from "../../src/sandbox/inline.js";

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/wat-kernel/${name}.wasm`, import.meta.url)));
const decoder = new TextDecoder();
const context = (r: RunResult): string => `exit ${r.exitCode} (${r.reason}${r.message ? `: ${r.message}` : ""})${r.trap ? `\n${r.trap.backtrace}` : ""}`;

test("proc_exit 500 frames deep, below a call_indirect, ends the instance at once with its code", async () => {
  const r = await runModule(fixture("proc-exit-nested"), { stdout: "buffer" });
  assert.equal(r.reason, "exit", context(r));
  assert.equal(r.exitCode, 42, context(r));
  assert.equal(decoder.decode(r.stdout), "before\n", "no frame resumed after proc_exit");
  assert.equal(r.trap, undefined);
});

test("proc_exit from the start section (during instantiation) ends the instance with its code; _start never runs", async () => {
  const r = await runModule(fixture("proc-exit-in-start-section"), {});
  assert.equal(r.reason, "exit", context(r));
  assert.equal(r.exitCode, 3, context(r));
  assert.deepEqual(r.calls, { proc_exit: 1 });
});

test("out-of-bounds and wrapping pointers to args, environ, clock, random, poll_oneoff and fd_write get EFAULT, never a host exception", async () => {
  const r = await runModule(fixture("oob-pointers"), { args: ["oob-pointers", "an-argument"], env: { NAME: "value" }, stdout: "buffer" });
  assert.equal(r.reason, "exit", context(r));
  const failed = [...Array(15).keys()].filter((i) => (r.exitCode >> i) & 1);
  assert.deepEqual(failed, [], `checks that did not get EFAULT (see the comments in oob-pointers.wat): ${failed.join(", ")}\n${context(r)}`);
  assert.equal(r.stdout.length, 0, "nothing reached stdout from the rejected writes");
});
