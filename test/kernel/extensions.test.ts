import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Errno } from "../../src/kernel/abi.js";
import { defineExtension } from "../../src/kernel/extensions.js";
import { runModule } from "../../src/sandbox/inline.js";
import { callModule } from "../../src/sandbox/call.js";
import { probeExtension, reversingProvider } from "./probe-extension.js";

const ext = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/ext/${name}.wasm`, import.meta.url)));
const probe = (grants: string[], provider: object = reversingProvider) => ({ define: [probeExtension], grants, providers: { "test:probe": provider } });

test("defineExtension refuses a bad name, a bad parameter type and a capability of another extension", () => {
  const fn = { params: [], result: "errno" as const, summary: "x", handler: () => 0 };
  assert.throws(() => defineExtension({ name: "Bad Name", summary: "", functions: {} }), /expected an import module name/);
  assert.throws(() => defineExtension({ name: "wasi_snapshot_preview1", summary: "", functions: {} }), /expected an import module name/);
  assert.throws(() => defineExtension({ name: "a:b", summary: "", functions: { f: { ...fn, params: [["x", "v128" as "i32"]] } } }), /parameter x has type v128/);
  assert.throws(() => defineExtension({ name: "a:b", summary: "", functions: { f: { ...fn, capability: "c:d" } } }), /must be "a:b" or "a:b\/<name>"/);
  assert.deepEqual(probeExtension.capabilities, ["test:probe", "test:probe/echo"]);
});

test("a granted extension function is linked: the handler reads and writes guest memory through the provider", async () => {
  const r = await callModule(ext("probe"), "call_echo", { params: [16, 4], extensions: probe(["test:probe"]) });
  assert.equal(r.reason, "exit");
  assert.equal(r.value, Errno.SUCCESS);
  assert.deepEqual(r.calls, { "test:probe.echo": 1 });
  assert.deepEqual(r.denied, {});
});

test("an ungranted extension function is linked to a stub that returns ENOTCAPABLE and is counted as denied", async () => {
  const r = await runModule(ext("probe"), { extensions: probe([]) });
  assert.equal(r.exitCode, Errno.NOTCAPABLE);
  assert.deepEqual(r.denied, { "test:probe.echo": 1 });
  assert.equal(r.calls["test:probe.echo"], undefined);
});

test("one capability of an extension can be granted alone (name/capability)", async () => {
  const echo = await callModule(ext("probe"), "call_echo", { params: [16, 4], extensions: probe(["test:probe/echo"]) });
  assert.equal(echo.value, Errno.SUCCESS);
  const noop = await callModule(ext("probe"), "call_noop", { extensions: probe(["test:probe/echo"]) });
  assert.equal(noop.value, Errno.NOTCAPABLE);
  assert.deepEqual(noop.denied, { "test:probe.noop": 1 });
});

test("strict mode refuses an ungranted extension import before it starts, naming the grant that would link it", async () => {
  const r = await runModule(ext("probe"), { strict: true, extensions: probe(["test:probe/echo"]) });
  assert.equal(r.reason, "link_error");
  assert.match(r.message, /test:probe\.fail \(needs extension "test:probe": grant it with --ext test:probe/);
  assert.doesNotMatch(r.message, /test:probe\.echo/);
});

/** A call that must end before the guest runs, with a link error whose message matches. */
async function linkRefused(run: Promise<{ reason: string; message: string }>, re: RegExp): Promise<void> {
  const r = await run;
  assert.equal(r.reason, "link_error");
  assert.match(r.message, re);
}

test("an import from an offered extension that lacks the function is refused, naming what it has", async () => {
  await linkRefused(
    callModule(ext("probe"), "call_noop", { extensions: { define: [defineExtension({ name: "test:probe", summary: "", functions: {} })] } }),
    /test:probe\.echo: extension "test:probe" has no function "echo"/,
  );
});

test("an extension import with the wrong signature is refused with both signatures", async () => {
  const wrong = defineExtension({ ...probeExtension, functions: { ...probeExtension.functions, noop: { ...probeExtension.functions.noop!, params: [["x", "i64"]] } } });
  await linkRefused(callModule(ext("probe"), "call_noop", { extensions: { define: [wrong], grants: ["test:probe"] } }), /test:probe\.noop: wrong signature \(\) -> \(i32\), expected \(i64\) -> \(i32\)/);
});

test("a host-provided memory (env.memory) is refused unless the extension that provides it is granted", async () => {
  await linkRefused(callModule(ext("seed"), "process", { input: "x" }), /env\.memory: a memory provided by extension "env", which is not granted \(grant it with --ext env/);
});

test("the seed module runs through the library with env.log and env.memory supplied by host code", async () => {
  const lines: string[] = [];
  const r = await callModule(ext("seed"), "process", {
    input: "hello",
    extensions: { grants: ["env"], providers: { env: { log: (_level: string, line: string) => lines.push(line) } } },
  });
  assert.equal(r.reason, "exit");
  assert.equal(r.value, 5);
  assert.deepEqual(lines, ["processing", "HELLO"]);
  assert.deepEqual(r.calls, { "env.log": 2 });
});

test("a guest mistake in an extension call is the errno the function documents (EFAULT for a pointer outside memory)", async () => {
  for (const [ptr, len] of [[65530, 100], [-1, 8], [0, -1]]) {
    const r = await callModule(ext("probe"), "call_echo", { params: [ptr!, len!], extensions: probe(["test:probe"]) });
    assert.equal(r.reason, "exit");
    assert.equal(r.value, Errno.FAULT, `echo(${ptr}, ${len})`);
  }
});

test("a function without a status traps on a bad pointer, naming the call", async () => {
  const r = await callModule(ext("probe"), "call_note", { params: [65535, 2], extensions: probe(["test:probe"]) });
  assert.equal(r.reason, "trap");
  assert.match(r.message, /test:probe\.note: FAULT/);
});

test("an errno the provider throws reaches the guest; any other provider error ends the instance as host_fault", async () => {
  const r = await callModule(ext("probe"), "call_fail", { params: [Errno.NOENT], extensions: probe(["test:probe"]) });
  assert.equal(r.value, Errno.NOENT);
  const f = await callModule(ext("probe"), "call_fail", { params: [0], extensions: probe(["test:probe"]) });
  assert.equal(f.reason, "host_fault");
  assert.match(f.message, /test:probe\.fail: host fault: Error: the probe provider broke/);
});

test("a provider that answers with a promise on the guest's own thread ends it as host_fault, with the fix", async () => {
  const r = await callModule(ext("probe"), "call_echo", { params: [16, 4], extensions: probe(["test:probe"], { echo: async (b: Uint8Array) => b }) });
  assert.equal(r.reason, "host_fault");
  assert.match(r.message, /answered asynchronously.*run it in an executor/);
});

test("a granted extension that needs a provider the host does not supply is a link error", async () => {
  await linkRefused(callModule(ext("seed"), "process", { input: "x", extensions: { grants: ["env"] } }), /env\.log: extension "env" is granted, but this host supplies no provider for it/);
});

test("--trace shows extension calls with pointers in hex and their result", async () => {
  const lines: string[] = [];
  await callModule(ext("probe"), "call_echo", { params: [16, 4], extensions: probe(["test:probe"]), trace: (l) => lines.push(l) });
  await callModule(ext("probe"), "call_noop", { extensions: probe([]), trace: (l) => lines.push(l) });
  assert.deepEqual(lines, ["test:probe.echo(0x10, 4) = 0 (SUCCESS)", 'test:probe.noop(...) = 76 (NOTCAPABLE) extension "test:probe" not granted']);
});
