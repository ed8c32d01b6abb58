import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, symlink, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { loadImage } from "../../src/image/image.js";
import { resolveImage } from "../../src/image/resolve.js";
import { inspectImage } from "../../src/image/inspect.js";
import { parseOciManifest, MEDIA_TYPES } from "../../src/image/oci.js";
import { ImageError } from "../../src/image/errors.js";
import { cleanup, greetProject, simpleProject, tempDir, GREET_TOML } from "./helpers.js";

const HELLO = `manifest_version = 1
[application]
name = "hello"
version = "0.1.0"
[module]
source = "hello.wasm"
`;

test("building the same inputs twice gives the same digest, in any store", async () => {
  const [a, b, homeA, homeB] = [await greetProject(), await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const r1 = await buildImage(new ImageStore(homeA), { dir: a });
    const r2 = await buildImage(new ImageStore(homeB), { dir: b });
    const r3 = await buildImage(new ImageStore(homeA), { dir: a });
    assert.equal(r1.digest, r2.digest);
    assert.equal(r1.digest, r3.digest);
    assert.match(r1.digest, /^sha256:[0-9a-f]{64}$/);
  } finally {
    await cleanup(a, b, homeA, homeB);
  }
});

test("changing one bundled file changes the digest", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    const r1 = await buildImage(store, { dir });
    await writeFile(join(dir, "static", "greeting.txt"), "changed\n");
    const r2 = await buildImage(store, { dir });
    assert.notEqual(r1.digest, r2.digest);
  } finally {
    await cleanup(dir, home);
  }
});

test("blobs are stored once: a rebuild and a second image sharing the module add nothing twice", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    await buildImage(store, { dir });
    const before = (await readdir(join(home, "blobs", "sha256"))).length;
    await buildImage(store, { dir });
    assert.equal((await readdir(join(home, "blobs", "sha256"))).length, before);
    await writeFile(join(dir, "uniwasm.toml"), GREET_TOML.replace('version = "1.0.0"', 'version = "1.0.1"'));
    await buildImage(store, { dir });
    // New: the toml layer, the config and the manifest. Module and files layer are shared.
    assert.equal((await readdir(join(home, "blobs", "sha256"))).length, before + 3);
  } finally {
    await cleanup(dir, home);
  }
});

test("an image follows the CNCF wasm OCI layout with uniwasm's extra layers", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    const { digest } = await buildImage(store, { dir });
    const m = parseOciManifest(await store.getBlob(digest, "manifest"), "manifest");
    assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(m.config.mediaType, "application/vnd.wasm.config.v0+json");
    assert.deepEqual(m.layers.map((l) => l.mediaType), ["application/wasm", MEDIA_TYPES.uniwasmManifest, MEDIA_TYPES.uniwasmFiles]);
    assert.equal(m.layers[2]!.annotations!["dev.uniwasm.files.guest"], "/static");
    const config = JSON.parse(new TextDecoder().decode(await store.getBlob(m.config.digest, "config")));
    assert.deepEqual(config, { created: "1970-01-01T00:00:00Z", architecture: "wasm", os: "wasip1", layerDigests: m.layers.map((l) => l.digest) });
    const module = await store.getBlob(m.layers[0]!.digest, "module");
    assert.deepEqual(module, await readFile(join(dir, "greet.wasm")));
    const image = await loadImage(store, digest);
    assert.deepEqual(Object.keys(image.files.get("/static")!).sort(), ["greeting.txt", "sub/b.txt"]);
  } finally {
    await cleanup(dir, home);
  }
});

test("build tags name:version and name:latest by default, or the given tags", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    const r = await buildImage(store, { dir });
    assert.deepEqual(r.tags, ["greet:1.0.0", "greet:latest"]);
    assert.equal(await store.resolve("greet"), r.digest);
    assert.equal(await store.resolve("greet:1.0.0"), r.digest);
    assert.equal(await store.resolve(r.digest.slice(7, 19)), r.digest);
    const r2 = await buildImage(store, { dir, tags: ["registry.example.com/team/greet:v1"] });
    assert.equal(await store.resolve("registry.example.com/team/greet:v1"), r2.digest);
    assert.equal(await store.resolve("nothing:here"), undefined);
  } finally {
    await cleanup(dir, home);
  }
});

test("build warns about grants the module cannot use and lists ungranted imports", async () => {
  const toml = `manifest_version = 1
[application]
name = "clock"
[module]
source = "clock.wasm"
[capabilities]
environment = { A = "1" }
listen = ["127.0.0.1:9000"]
[[capabilities.dirs]]
guest = "/data"
host = "/tmp"
`;
  const [dir, home] = [await simpleProject("clock.wasm", toml), await tempDir("home")];
  try {
    const r = await buildImage(new ImageStore(home), { dir });
    assert.deepEqual(r.grants.unusedGrants, [
      "capabilities.dirs[0] (/data): the module imports no path_* call, so it cannot open anything there",
      "capabilities.listen (127.0.0.1:9000): the module imports no sock_* call",
      "capabilities.environment: the module does not import environ_get, so it cannot read them",
    ]);
    assert.deepEqual(
      r.grants.ungrantedImports.map((i) => `${i.module}.${i.name}: ${i.reason}`),
      [
        "wasi_snapshot_preview1.clock_time_get: needs the clocks capability: set capabilities.clocks = true",
        "wasi_snapshot_preview1.random_get: needs the random capability: set capabilities.random = true",
        'uniwasm:kv.get: import module "uniwasm:kv" is not granted; add it to capabilities.extensions if the host provides it',
      ],
    );
    assert.equal(r.warnings.length, 6);
  } finally {
    await cleanup(dir, home);
  }
});

test("granting exactly what the module imports gives no warnings", async () => {
  const toml = `manifest_version = 1
[application]
name = "clock"
[module]
source = "clock.wasm"
[capabilities]
clocks = true
random = true
extensions = ["uniwasm:kv"]
`;
  const [dir, home] = [await simpleProject("clock.wasm", toml), await tempDir("home")];
  try {
    const r = await buildImage(new ImageStore(home), { dir });
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.grants.granted, ["args", "clocks", "env", "fd", "poll", "proc", "random"]);
  } finally {
    await cleanup(dir, home);
  }
});

async function buildError(fixture: string, toml: string, setup?: (dir: string) => Promise<void>): Promise<ImageError> {
  const [dir, home] = [await simpleProject(fixture, toml), await tempDir("home")];
  try {
    if (setup) await setup(dir);
    await buildImage(new ImageStore(home), { dir });
  } catch (err) {
    assert.ok(err instanceof ImageError, String(err));
    return err;
  } finally {
    await cleanup(dir, home);
  }
  assert.fail("build succeeded");
}

test("build refuses a module that does not compile", async () => {
  const err = await buildError("hello.wasm", HELLO, (dir) => writeFile(join(dir, "hello.wasm"), "not wasm"));
  assert.equal(err.code, "module_invalid");
  assert.match(err.message, /module hello.wasm is not a valid WebAssembly module/);
});

test("build refuses a command without _start and a reactor missing a listed export", async () => {
  const asCommand = HELLO.replace("hello.wasm", "reactor.wasm");
  let err = await buildError("reactor.wasm", asCommand);
  assert.equal(err.code, "module_invalid");
  assert.match(err.message, /needs an exported _start function.*exports _initialize: set entry = "reactor"/);
  err = await buildError("reactor.wasm", asCommand + `entry = "reactor"\nexports = ["handle", "nope"]\n`);
  assert.match(err.message, /module.exports lists nope, which the module does not export/);
});

test("build refuses a missing module and files that escape the build directory", async () => {
  let err = await buildError("hello.wasm", HELLO.replace("hello.wasm", "missing.wasm"));
  assert.equal(err.code, "build_input");
  assert.match(err.message, /missing.wasm does not exist/);
  const withFiles = `${HELLO}[[capabilities.dirs]]\nguest = "/s"\nfiles = "static"\n`;
  err = await buildError("hello.wasm", withFiles, async (dir) => {
    await mkdir(join(dir, "static"));
    await symlink("/etc/hostname", join(dir, "static", "leak"));
  });
  assert.equal(err.code, "build_input");
  assert.match(err.message, /symlink leak: .* outside the build directory/);
});

test("rmi by tag keeps the image while another tag points at it; by digest it needs --force", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    const { digest } = await buildImage(store, { dir });
    await assert.rejects(store.remove(digest), (e: ImageError) => e.code === "image_in_use" && /tagged greet:1.0.0, greet:latest/.test(e.message));
    assert.deepEqual(await store.remove("greet:1.0.0"), { untagged: ["greet:1.0.0"], deleted: [] });
    assert.equal(await store.resolve("greet"), digest);
    assert.deepEqual(await store.remove("greet"), { untagged: ["greet:latest"], deleted: [digest] });
    assert.equal(await store.resolve(digest), undefined);
    assert.deepEqual(await readdir(join(home, "blobs", "sha256")), []);
    const r = await buildImage(store, { dir });
    assert.deepEqual(await store.remove(r.digest, { force: true }), { untagged: ["greet:1.0.0", "greet:latest"], deleted: [r.digest] });
    await assert.rejects(store.remove("greet"), (e: ImageError) => e.code === "image_not_found");
  } finally {
    await cleanup(dir, home);
  }
});

test("resolveImage gives the module and the kernel options the manifest grants", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const { digest } = await buildImage(new ImageStore(home), { dir });
    const r = await resolveImage("greet:1.0.0", { home, args: ["extra"] });
    assert.ok(r);
    assert.equal(r.digest, digest);
    assert.deepEqual(r.bytes, await readFile(join(dir, "greet.wasm")));
    assert.deepEqual(r.kernelOptions.args, ["greet", "world", "extra"]);
    assert.deepEqual(r.kernelOptions.env, { GREETING: "hello" });
    assert.deepEqual(r.kernelOptions.capabilities, ["args", "env", "fd", "fs", "poll", "proc"]);
    const pre = r.kernelOptions.preopens![0]!;
    assert.equal(pre.guest, "/static");
    assert.equal(pre.readonly, true);
    assert.ok("memory" in pre);
    const files = pre.memory as Record<string, Uint8Array>;
    assert.equal(new TextDecoder().decode(files["greeting.txt"]), "bonjour from the image\n");
    assert.equal(r.trust.verified, false);
    assert.equal(await resolveImage("unknown-image", { home }), null);
  } finally {
    await cleanup(dir, home);
  }
});

test("inspectImage reports manifest, grants vs imports, sizes and tags", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const { digest } = await buildImage(new ImageStore(home), { dir });
    const info = await inspectImage("greet", { home });
    assert.ok(info);
    assert.equal(info.digest, digest);
    assert.deepEqual(info.tags, ["greet:1.0.0", "greet:latest"]);
    assert.equal(info.manifest.name, "greet");
    assert.deepEqual(info.capabilities.needed, ["args", "env", "fd", "fs", "proc"]);
    assert.deepEqual(info.capabilities.ungrantedImports, []);
    assert.deepEqual(info.files, { "/static": 2 });
    assert.equal(info.sizes.module, (await readFile(join(dir, "greet.wasm"))).length);
    assert.ok(info.imports.some((i) => i.name === "path_open"));
    assert.deepEqual(info.signatures, []);
    assert.equal(await inspectImage("nope", { home }), null);
  } finally {
    await cleanup(dir, home);
  }
});

test("concurrent tag updates to one store are all kept (index lock)", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const store = new ImageStore(home);
    const { digest } = await buildImage(store, { dir });
    await Promise.all(Array.from({ length: 20 }, (_, i) => new ImageStore(home).addImage(digest, [`t${i}:v`])));
    const tags = Object.keys((await store.readIndex()).tags);
    for (let i = 0; i < 20; i++) assert.ok(tags.includes(`t${i}:v`), `t${i}:v missing`);
  } finally {
    await cleanup(dir, home);
  }
});

test("build refuses more bundled files than the cap", async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const { OCI_BOUNDS } = await import("../../src/image/oci.js");
    const many = join(dir, "static", "many");
    await mkdir(many);
    await Promise.all(Array.from({ length: OCI_BOUNDS.files + 1 }, (_, i) => writeFile(join(many, `f${i}`), "")));
    await assert.rejects(buildImage(new ImageStore(home), { dir }), (e: ImageError) => e.code === "build_input" && /exceed 10000 entries/.test(e.message));
  } finally {
    await cleanup(dir, home);
  }
});
