/**
 * Other OCI tools can store and move uniwasm images: skopeo copies a saved
 * layout into the real registry and back out, the digest never changes, and
 * what comes back loads, verifies and runs.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { loadImages, saveImages } from "../../src/image/layout.js";
import { pullImage } from "../../src/image/transfer.js";
import { resolveImage } from "../../src/image/resolve.js";
import { runModule } from "../../src/sandbox/inline.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";
import { REGISTRY_SKIP, startRegistry, type RegistryServer } from "./registry-server.js";

const SKIP = REGISTRY_SKIP || (existsSync("/usr/bin/skopeo") ? false : "skopeo not installed (apt-get install skopeo)");

let registry: RegistryServer | undefined;
before(async () => {
  if (!SKIP) registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

function skopeo(...args: string[]): void {
  const r = spawnSync("/usr/bin/skopeo", args, { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `skopeo ${args.join(" ")}: ${r.stderr}`);
}

test("skopeo copies a saved image to the registry and back, digest unchanged, and it still runs", { skip: SKIP }, async () => {
  const [dir, homeA, homeB, homeC, out] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("home"), await tempDir("out")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    await saveImages(a, ["greet:1.0.0"], join(out, "saved"));
    const ref = `${registry!.address}/interop/greet:1.0.0`;
    skopeo("copy", "--dest-tls-verify=false", `oci:${join(out, "saved")}:1.0.0`, `docker://${ref}`);
    // uniwasm pulls what skopeo pushed.
    assert.equal((await pullImage(new ImageStore(homeB), ref)).digest, digest);
    // skopeo pulls into its own layout (ref.name only); uniwasm loads it.
    skopeo("copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${join(out, "copied")}:v1`);
    const loaded = await loadImages(new ImageStore(homeC), join(out, "copied"));
    assert.deepEqual(loaded.images.map((i) => [i.digest, i.tags]), [[digest, ["greet:v1"]]]);
    const img = (await resolveImage("greet:v1", { home: homeC }))!;
    const result = await runModule(img.bytes, { ...img.kernelOptions, stdout: "buffer", stderr: "buffer" });
    assert.equal(new TextDecoder().decode(result.stdout), "arg: world\nGREETING=hello\nfile: bonjour from the image\n");
  } finally {
    await cleanup(dir, homeA, homeB, homeC, out);
  }
});
