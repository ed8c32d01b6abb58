/** Every template builds with its toolchain and answers a request through `uniwasm dev` (skipped, saying why, without the toolchain). One test file per template (test/cli/template-*.test.ts): a file has 120 s, and an AssemblyScript build alone takes 15-60 s on a loaded machine. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Dev, ROOT, RUSTC, newApp, toolchainMissing } from "./dev-helpers.js";

const CASES: { template: string; request: RequestInit & { path?: string }; answer: RegExp }[] = [
  { template: "reactor-c", request: {}, answer: /^Hello from app, answering GET \/ \(request 1 of this warm instance\)\.\n$/ },
  { template: "wagi-cpp", request: {}, answer: /^Hello, world! This is app \(C\+\+\), answering GET \/\.\n$/ },
  { template: "wagi-as", request: {}, answer: /^Hello, world! This is app \(AssemblyScript\), answering GET \/\.\n$/ },
  { template: "reactor-as", request: {}, answer: /^Hello from app \(AssemblyScript\), answering GET \/ \(request 1 of this warm instance\)\.\n$/ },
  { template: "wagi-rust", request: { path: "?you" }, answer: /^Hello, you! This is app \(Rust\), answering GET \/\.\n$/ },
  { template: "plugin-c", request: { method: "POST", body: "uniwasm dev" }, answer: /^\{"plugin":"app","bytes":11,"vowels":4\}\n$/ },
];

export function templateTests(templates: readonly string[]): void {
  for (const c of CASES.filter((x) => templates.includes(x.template))) {
    test(`the ${c.template} template builds and answers a request through uniwasm dev`, { skip: toolchainMissing(c.template), timeout: 110_000 }, async () => {
      const app = newApp("app", c.template);
      const dev = new Dev("app", app.work, { ...process.env, RUSTC });
      try {
        const url = await dev.ready();
        const res = await fetch(url + (c.request.path ?? ""), c.request);
        const text = await res.text();
        assert.equal(res.status, 200, text);
        assert.match(text, c.answer);
      } finally {
        assert.equal(await dev.stop(), 0);
        app.cleanup();
      }
    });
  }
}

export function pluginHostTest(): void {
  test("the plugin-c template's host.mjs calls the plugin through uniwasm's library", { skip: toolchainMissing("plugin-c"), timeout: 110_000 }, () => {
    const app = newApp("vowels", "plugin-c");
    try {
      const build = spawnSync("sh", ["build.sh"], { cwd: app.dir, encoding: "utf8" });
      assert.equal(build.status, 0, build.stderr);
      // What `npm install uniwasm` gives the host program.
      mkdirSync(join(app.dir, "node_modules"));
      symlinkSync(ROOT, join(app.dir, "node_modules", "uniwasm"));
      const r = spawnSync(process.execPath, ["host.mjs", "a plugin in a sandbox"], { cwd: app.dir, encoding: "utf8", timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '{"plugin":"vowels","bytes":21,"vowels":7}\n');
    } finally {
      app.cleanup();
    }
  });
}
