/**
 * The image story end to end, through the real CLI and a real registry:
 * key generate -> build --sign -> push -> (fresh store) trust add -> pull ->
 * trust verify -> run, then tampering in the pulling store is refused by run.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveImage } from "../../src/image/resolve.js";
import { ImageStore } from "../../src/image/store.js";
import { parseOciManifest } from "../../src/image/oci.js";
import { runModule } from "../../src/sandbox/inline.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";
import { REGISTRY_SKIP, startRegistry, type RegistryServer } from "./registry-server.js";

const BIN = fileURLToPath(new URL("../../../bin/uniwasm.js", import.meta.url));

let registry: RegistryServer | undefined;
before(async () => {
  if (!REGISTRY_SKIP) registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

function cli(home: string, cwd: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, UNIWASM_HOME: home }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("build, sign, push, pull into a fresh store, verify and run, end to end", { skip: REGISTRY_SKIP }, async () => {
  const [dir, work, homeA, homeB] = [await greetProject(), await tempDir("work"), await tempDir("home"), await tempDir("home")];
  try {
    let r = cli(homeA, work, "key", "generate", "--out", "ci");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /key id: +sha256:[0-9a-f]{64}/);

    r = cli(homeA, work, "build", dir, "--sign", "ci.key", "-t", "greet:1.0.0");
    assert.equal(r.status, 0, r.stderr);
    const digest = /built greet 1\.0\.0: (sha256:[0-9a-f]{64})/.exec(r.stdout)![1]!;
    assert.match(r.stdout, /signed by key sha256:/);

    const ref = `${registry!.address}/e2e/greet:1.0.0`;
    r = cli(homeA, work, "push", "greet:1.0.0", ref);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`pushed ${registry!.address}/e2e/greet:1.0.0@${digest} \\(4 blobs uploaded, 0 already there\\)`));
    assert.match(r.stdout, /pushed signatures sha256:/);

    // A fresh store that trusts only the CI key.
    r = cli(homeB, work, "trust", "add", "ci.pub");
    assert.equal(r.status, 0, r.stderr);
    r = cli(homeB, work, "pull", ref);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`pulled ${registry!.address}/e2e/greet@${digest}`));
    assert.match(r.stdout, /verified: signed by trusted key ci/);
    r = cli(homeB, work, "trust", "verify", ref);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /verified, signed by ci/);
    r = cli(homeB, work, "images");
    assert.match(r.stdout, new RegExp(`${registry!.address}/e2e/greet +1\\.0\\.0 +${digest.slice(7, 19)} .* yes`));

    // Run through the library: resolveImage + runModule.
    const img = await resolveImage(ref, { home: homeB, args: ["extra"] });
    assert.ok(img);
    assert.equal(img.digest, digest);
    const result = await runModule(img.bytes, { ...img.kernelOptions, stdout: "buffer", stderr: "buffer" });
    assert.equal(result.exitCode, 0, new TextDecoder().decode(result.stderr));
    assert.equal(new TextDecoder().decode(result.stdout), "arg: world\narg: extra\nGREETING=hello\nfile: bonjour from the image\n");

    // And through the CLI; the exit status is the guest's.
    r = cli(homeB, work, "run", ref, "fail");
    assert.equal(r.stdout, "arg: world\narg: fail\nGREETING=hello\nfile: bonjour from the image\n");
    assert.equal(r.status, 7);

    // Tamper with the pulled module: run refuses it, naming the digest.
    const store = new ImageStore(homeB);
    const m = parseOciManifest(await store.getBlob(digest as `sha256:${string}`, "m"), "m");
    const path = store.blobPath(m.layers[0]!.digest);
    const bytes = await readFile(path);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(path, bytes);
    r = cli(homeB, work, "run", ref);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, new RegExp(`image ${digest}: module layer \\(application/wasm\\) ${m.layers[0]!.digest}: content hashes to sha256:[0-9a-f]{64} \\(blob tampered or corrupt\\)`));
    assert.doesNotMatch(r.stderr, /at .*\.js/);
  } finally {
    await cleanup(dir, work, homeA, homeB);
  }
});

test("run refuses an unsigned image when a key is trusted", async () => {
  const [dir, work, home] = [await greetProject(), await tempDir("work"), await tempDir("home")];
  try {
    assert.equal(cli(home, work, "key", "generate", "--out", "k").status, 0);
    assert.equal(cli(home, work, "build", dir).status, 0);
    assert.equal(cli(home, work, "trust", "add", "k.pub").status, 0);
    const r = cli(home, work, "run", "greet");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^uniwasm: image sha256:[0-9a-f]{64} is not signed; the trust policy .*trust\.json requires a signature by one of: k \([0-9a-f]{16}\)\n$/);
  } finally {
    await cleanup(dir, work, home);
  }
});

test("a bad manifest fails the build with file, line and field", async () => {
  const [dir, work, home] = [await greetProject(), await tempDir("work"), await tempDir("home")];
  try {
    await writeFile(join(dir, "uniwasm.toml"), (await readFile(join(dir, "uniwasm.toml"), "utf8")) + "\n[limits]\nmemory = \"lots\"\n");
    const r = cli(home, dir, "build");
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `uniwasm build: uniwasm.toml:19: limits.memory: "lots" is not a size; use bytes (65536) or a string with K, M or G (binary: "64M" and "64MiB" are 67108864 bytes)\n`);
  } finally {
    await cleanup(dir, work, home);
  }
});
