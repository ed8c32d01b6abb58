import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { resolveImage } from "../../src/image/resolve.js";
import { IMAGE_ERRORS } from "../../src/image/errors.js";
import { runModule } from "../../src/sandbox/inline.js";
import { cleanup, tempDir } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

test("every example with a uniwasm.toml builds without warnings and runs", async () => {
  const examples = (await readdir(join(ROOT, "examples"))).filter((d) => existsSync(join(ROOT, "examples", d, "uniwasm.toml")));
  assert.ok(examples.includes("hello-image"));
  for (const ex of examples) {
    const home = await tempDir("home");
    try {
      const r = await buildImage(new ImageStore(home), { dir: join(ROOT, "examples", ex) });
      assert.deepEqual(r.warnings, [], `examples/${ex}`);
      if (r.manifest.entry !== "command") continue;
      const img = (await resolveImage(r.digest, { home }))!;
      if (ex === "hello-image") assert.deepEqual(img.limits, { maxMemoryBytes: 16 * 1024 * 1024, timeoutMs: 5000, stdoutBytes: 64 * 1024, openFiles: 16 });
      const result = await runModule(img.bytes, { ...img.kernelOptions, stdout: "buffer", stderr: "buffer" });
      assert.equal(result.exitCode, 0, `examples/${ex}: ${new TextDecoder().decode(result.stderr)}`);
      if (ex === "hello-image") assert.equal(new TextDecoder().decode(result.stdout), "Bonjour, image!\n");
    } finally {
      await cleanup(home);
    }
  }
});

test("every image error code is documented in docs/images.md", async () => {
  const doc = await readFile(join(ROOT, "docs", "images.md"), "utf8");
  const missing = Object.keys(IMAGE_ERRORS).filter((code) => !doc.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});

test("every manifest field is documented in docs/manifest.md", async () => {
  const doc = await readFile(join(ROOT, "docs", "manifest.md"), "utf8");
  const fields = ["manifest_version", "name", "version", "description", "authors", "source", "entry", "exports", "args", "environment", "clocks", "random", "allowed_outbound_hosts", "listen", "extensions", "dirs", "guest", "files", "host", "mode", "memory", "fuel", "timeout", "stdout", "stderr", "open_files", "route", "abi", "handler"];
  const missing = fields.filter((f) => !doc.includes(`\`${f}\``));
  assert.deepEqual(missing, []);
});
