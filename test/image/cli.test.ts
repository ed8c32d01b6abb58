/** The image commands as a person uses them: images, rmi, save/load, trust list/remove, errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanup, greetProject, tempDir } from "./helpers.js";

const BIN = fileURLToPath(new URL("../../../bin/uniwasm.js", import.meta.url));

function cli(home: string, cwd: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, UNIWASM_HOME: home }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("images lists tags, rmi removes them, save and load move an image between stores", async () => {
  const [dir, work, homeA, homeB] = [await greetProject(), await tempDir("work"), await tempDir("home"), await tempDir("home")];
  try {
    assert.equal(cli(homeA, work, "build", dir).status, 0);
    let r = cli(homeA, work, "images", "--json");
    const rows = JSON.parse(r.stdout) as { repository: string; tag: string; digest: string; signed: boolean }[];
    assert.deepEqual(rows.map((x) => `${x.repository}:${x.tag}`), ["greet:1.0.0", "greet:latest"]);
    const digest = rows[0]!.digest;
    r = cli(homeA, work, "images", "-q");
    assert.equal(r.stdout, `${digest}\n`);

    r = cli(homeA, work, "save", "greet", "-o", join(work, "greet.tar"));
    assert.equal(r.status, 0, r.stderr);
    r = cli(homeB, work, "load", join(work, "greet.tar"));
    assert.equal(r.stdout, `loaded ${digest} (greet:1.0.0, greet:latest)\n`);

    r = cli(homeA, work, "rmi", digest);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `uniwasm rmi: image ${digest} is tagged greet:1.0.0, greet:latest; remove those tags first or use --force\n`);
    r = cli(homeA, work, "rmi", "greet:1.0.0", "greet:latest");
    assert.equal(r.stdout, `untagged: greet:1.0.0\nuntagged: greet:latest\ndeleted: ${digest}\n`);
    r = cli(homeA, work, "images");
    assert.equal(r.stdout, "REPOSITORY   TAG   IMAGE ID   SIZE   SIGNED\n");
    r = cli(homeA, work, "run", "greet");
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no such file, and no image with that reference/);
  } finally {
    await cleanup(dir, work, homeA, homeB);
  }
});

test("trust list and remove, and key generate refuses to overwrite", async () => {
  const [work, home] = [await tempDir("work"), await tempDir("home")];
  try {
    assert.equal(cli(home, work, "key", "generate", "--out", "ops").status, 0);
    let r = cli(home, work, "key", "generate", "--out", "ops");
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "uniwasm key generate: ops.key exists; choose another --out or pass --force\n");
    assert.match(cli(home, work, "trust", "list").stdout, /^no trusted keys: signatures are not required/);
    assert.equal(cli(home, work, "trust", "add", "ops.pub", "--name", "operations").status, 0);
    r = cli(home, work, "trust", "list", "--json");
    const keys = JSON.parse(r.stdout) as { name: string; id: string }[];
    assert.deepEqual(keys.map((k) => k.name), ["operations"]);
    r = cli(home, work, "trust", "remove", keys[0]!.id.slice(7, 19));
    assert.equal(r.stdout, `removed operations (${keys[0]!.id})\n`);
    r = cli(home, work, "trust", "remove", "nobody");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no trusted key named or with id "nobody"/);
  } finally {
    await cleanup(work, home);
  }
});
