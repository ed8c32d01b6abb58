import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(repo, "bin/uniwasm.js");

function uniwasm(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: "utf8", input: input ?? "", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("run exits with the guest's exit code", () => {
  const r = uniwasm(["run", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.equal(r.status, 76); // ENOTCAPABLE from the stub, passed to proc_exit
});

test("run --strict refuses the module with exit 126 and names the import", () => {
  const r = uniwasm(["run", "--strict", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.equal(r.status, 126);
  assert.match(r.stderr, /strict mode: .*\n\s+path_open \(needs capability "fs"\)/);
});

test("run --trace writes strace-style lines to stderr", () => {
  const r = uniwasm(["run", "--trace", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.match(r.stderr, /\[trace\] path_open\(\.\.\.\) = 76 \(NOTCAPABLE\) capability "fs" not granted/);
});

test("run reports an invalid module in one line and exits 126", () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-cli-"));
  try {
    const bad = join(dir, "bad.wasm");
    writeFileSync(bad, Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff]));
    const r = uniwasm(["run", bad]);
    assert.equal(r.status, 126);
    assert.match(r.stderr, /^uniwasm run: .*bad\.wasm: .+/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("run names a missing file", () => {
  const r = uniwasm(["run", "no/such/module.wasm"]);
  assert.equal(r.status, 126);
  assert.match(r.stderr, /no\/such\/module\.wasm: no such file, and no image/);
});

test("run rejects a --dir that does not exist, before running anything", () => {
  const r = uniwasm(["run", "--dir", "/definitely/not/here::/data", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /host directory \/definitely\/not\/here does not exist/);
});

test("inspect --json reports the syscall surface and capabilities", () => {
  const r = uniwasm(["inspect", "--json", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.surface, 2);
  assert.equal(s.total, 46);
  assert.deepEqual(s.capabilities, ["fs", "proc"]);
  assert.deepEqual(s.bySubsystem, { path: ["path_open"], proc: ["proc_exit"] });
  assert.equal(s.entry, "command");
});

test("inspect prints imports grouped by subsystem", () => {
  const r = uniwasm(["inspect", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /syscall surface: 2 of 46/);
  assert.match(r.stdout, /path:\n\s+path_open\s+Open or create/);
});

test("inspect lists imports the kernel does not provide", () => {
  const r = uniwasm(["inspect", "test/fixtures/linker/unknown-module.wasm"]);
  assert.match(r.stdout, /rockets\.launch_missiles \(function\)/);
});

test("run --stats counts host calls and marks denied ones", () => {
  const r = uniwasm(["run", "--stats", "test/fixtures/linker/ungranted-path-open.wasm"]);
  assert.match(r.stderr, /^\s+0\s+1\s+path_open$/m);
  assert.match(r.stderr, /^\s+1\s+0\s+proc_exit$/m);
  assert.match(r.stderr, /^\s+1\s+1\s+total \(2 distinct calls\)$/m);
});
