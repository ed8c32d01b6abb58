/**
 * `uniwasm new` + `uniwasm dev`: two commands from nothing to an answered
 * request; an edit reloads the app; a trap prints its backtrace with function
 * names and source lines. (Refusals: dev-refusals.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Dev, newApp, toolchainMissing } from "./dev-helpers.js";

const skip = toolchainMissing("wagi-c");

test("uniwasm new then uniwasm dev: a first answered request in two commands, each request printed, an edit reloaded, a trap shown with names and lines", { skip, timeout: 110_000 }, async () => {
  const app = newApp("hello", "wagi-c");
  const dev = new Dev("hello", app.work);
  try {
    const url = await dev.ready();
    let res = await fetch(`${url}?you`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "Hello, you! This is hello, answering GET /.\n");
    await dev.waitFor(/\d\d:\d\d:\d\d GET \/ 200 [\d.]+ ms/);

    // An edit: the next request gets the new build.
    const src = join(app.dir, "app.c");
    const mark = dev.output.length;
    const crash = [
      "__attribute__((noinline)) static void crash(volatile int *p) {",
      "  if (p[0] > p[1]) __builtin_trap(); /* TRAP */",
      "}",
      "",
      "int main(int argc, char **argv) {",
      '  if (!strcmp(env("PATH_INFO"), "/crash")) { volatile int v[2] = {2, 1}; crash(v); }',
    ].join("\n");
    writeFileSync(src, readFileSync(src, "utf8").replace("Hello, %s!", "Howdy, %s!").replace("int main(int argc, char **argv) {", crash));
    await dev.waitFor(/reloaded hello: revision 2/, 60_000, mark);
    res = await fetch(`${url}?you`);
    assert.equal(await res.text(), "Howdy, you! This is hello, answering GET /.\n");

    // A trap: 502 for the client; the backtrace with names and app.c's line for the developer.
    res = await fetch(`${url}crash`);
    assert.equal(res.status, 502);
    const trapLine = readFileSync(src, "utf8").split("\n").findIndex((l) => l.includes("/* TRAP */")) + 1;
    const m = await dev.waitFor(/GET \/crash 502 [\d.]+ ms {2}trap: unreachable executed\n {2}wasm backtrace:\n(( {4}\d+: .*\n)+)/);
    assert.match(m[1]!, new RegExp(`0: crash \\(func\\[\\d+\\] @ 0x[0-9a-f]+\\) at app\\.c:${trapLine}:`));
    assert.match(m[1]!, /1: main \(func\[\d+\] @ 0x[0-9a-f]+\) at app\.c:\d+/);

    // A broken edit keeps the last good revision serving.
    const before = dev.output.length;
    writeFileSync(src, readFileSync(src, "utf8") + "\nthis is not C\n");
    await dev.waitFor(/build failed: sh build\.sh exited with 1; still serving revision 2/, 60_000, before);
    assert.equal((await fetch(`${url}?again`)).status, 200);
  } finally {
    assert.equal(await dev.stop(), 0);
    app.cleanup();
  }
});
