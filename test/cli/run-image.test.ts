import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(repo, "bin/uniwasm.js");

function uniwasm(home: string, args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: "utf8", env: { ...process.env, UNIWASM_HOME: home }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function buildImage(home: string, name: string, limits: string): void {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-img-"));
  copyFileSync(join(repo, "examples/hello.wasm"), join(dir, "hello.wasm"));
  writeFileSync(join(dir, "uniwasm.toml"), `manifest_version = 1\n[application]\nname = "${name}"\nversion = "1.0.0"\n[module]\nsource = "hello.wasm"\nentry = "command"\n[limits]\n${limits}\n`);
  const r = uniwasm(home, ["build", dir]);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
}

test("run IMAGE starts the image's module with its manifest's grants", () => {
  const home = mkdtempSync(join(tmpdir(), "uniwasm-home-"));
  try {
    buildImage(home, "greeter", 'timeout = "5s"');
    const r = uniwasm(home, ["run", "greeter", "world"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Hello from uniwasm!/);
    assert.match(r.stdout, /world/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("run IMAGE enforces the manifest's fuel limit, and a flag overrides it", () => {
  const home = mkdtempSync(join(tmpdir(), "uniwasm-home-"));
  try {
    buildImage(home, "starved", "fuel = 10");
    const starved = uniwasm(home, ["run", "starved"]);
    assert.equal(starved.status, 152, starved.stderr);
    assert.match(starved.stderr, /fuel/);
    const fed = uniwasm(home, ["run", "--fuel", "100000000", "starved"]);
    assert.equal(fed.status, 0, fed.stderr);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("run IMAGE enforces the manifest's stdout limit (output_limit, exit 153); without it the run prints", () => {
  const home = mkdtempSync(join(tmpdir(), "uniwasm-home-"));
  try {
    buildImage(home, "quiet", 'stdout = "8"');
    const r = uniwasm(home, ["run", "quiet", "world"]);
    assert.equal(r.status, 153, r.stderr);
    assert.match(r.stderr, /output limit reached/);
    assert.ok(r.stdout.length <= 8, `at most 8 bytes reach stdout, got ${JSON.stringify(r.stdout)}`);
    buildImage(home, "loud", 'stdout = "1KiB"');
    assert.equal(uniwasm(home, ["run", "loud", "world"]).status, 0);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
