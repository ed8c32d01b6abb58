import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Errno } from "../../src/kernel/abi.js";
import { SYSCALL_BY_NAME } from "../../src/kernel/syscalls.js";
import { runModule } from "../../src/sandbox/inline.js";

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/linker/${name}.wasm`, import.meta.url)));

test("an ungranted import is linked to a stub that returns ENOTCAPABLE and is counted", async () => {
  const r = await runModule(fixture("ungranted-path-open"), {});
  assert.equal(r.reason, "exit");
  assert.equal(r.exitCode, Errno.NOTCAPABLE);
  assert.deepEqual(r.denied, { path_open: 1 });
  assert.equal(r.calls["path_open"], undefined);
});

test("the same import is linked for real once the capability is granted", async () => {
  const r = await runModule(fixture("ungranted-path-open"), { preopens: [{ guest: "/", memory: { "file.txt": "x" } }] });
  assert.equal(r.exitCode, Errno.SUCCESS);
  assert.deepEqual(r.calls, { path_open: 1, proc_exit: 1 });
  assert.deepEqual(r.denied, {});
});

/** A run that must end before the guest runs, with a link error whose message matches. */
async function refused(run: Promise<{ reason: string; message: string; calls: Record<string, number> }>, re: RegExp): Promise<void> {
  const r = await run;
  assert.equal(r.reason, "link_error");
  assert.match(r.message, re);
  assert.deepEqual(r.calls, {});
}

test("strict mode refuses the module before it starts, naming the ungranted import and its capability", async () => {
  await refused(runModule(fixture("ungranted-path-open"), { strict: true }), /path_open \(needs capability "fs"\)/);
});

test("an import from an unknown module is refused with its name", async () => {
  await refused(runModule(fixture("unknown-module"), {}), /rockets\.launch_missiles: unknown import module "rockets"/);
});

test("an unknown WASI function name is refused", async () => {
  await refused(runModule(fixture("unknown-call"), {}), /wasi_snapshot_preview1\.fd_teleport: no such WASI preview 1 function/);
});

test("a WASI import with the wrong signature is refused, showing both signatures", async () => {
  await refused(runModule(fixture("wrong-signature"), {}), /fd_write: wrong signature \(i32, i32\) -> \(i32\), expected \(i32, i32, i32, i32\) -> \(i32\)/);
});

test("a wasi_unstable (preview 0) module is refused with a clear message", async () => {
  await refused(runModule(fixture("wasi-unstable"), {}), /preview 0 \(wasi_unstable\) is not supported/);
});

test("hostile pointers get EFAULT from every call and never an exception into the host", async () => {
  const r = await runModule(fixture("bad-pointers"), { stdout: "buffer" });
  assert.equal(r.reason, "exit");
  assert.equal(r.exitCode, 0, `calls that did not return EFAULT: bitmask ${r.exitCode}`);
  assert.equal(r.stdout.length, 0);
});

test("trace prints each call with its arguments and result", async () => {
  const lines: string[] = [];
  await runModule(fixture("ungranted-path-open"), { preopens: [{ guest: "/", memory: {} }], trace: (l) => lines.push(l) });
  assert.match(lines[0]!, /^path_open\(3, 0, "file\.txt", 8, 0, 2, 0, 0, 0x40\) = 44 \(NOENT\)/);
  assert.match(lines[1]!, /^proc_exit\(44\)/);
});

test("every syscall table entry names its capability and a summary", () => {
  for (const [name, spec] of SYSCALL_BY_NAME) {
    assert.ok(spec.capability, name);
    assert.ok(spec.summary.length > 10, name);
  }
});

test("one import declared twice with different types is refused (the right type must not vouch for the wrong one)", async () => {
  await refused(runModule(fixture("conflicting-duplicate"), {}), /clock_time_get: imported twice with different signatures/);
});
