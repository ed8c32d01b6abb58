import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(repo, "bin/uniwasm.js");

function uniwasm(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: "utf8", input: input ?? "", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("call runs the seed module with the built-in env extension: input past the data, log lines on stderr, the result on stdout", () => {
  const r = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--input", "hello", "--ext", "env"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "5\n");
  assert.equal(r.stderr, "[info] processing\n[info] HELLO\n");
});

test("call without the env grant refuses the seed's memory import, naming the grant, and exits 126", () => {
  const r = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--input", "hello"]);
  assert.equal(r.status, 126);
  assert.match(r.stderr, /env\.memory: a memory provided by extension "env", which is not granted \(grant it with --ext env/);
  assert.equal(r.stdout, "");
});

test("call --input @FILE reads the input from a file, and @- from stdin", () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-call-"));
  try {
    writeFileSync(join(dir, "in.txt"), "from a file");
    const f = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--ext", "env", "--input", `@${join(dir, "in.txt")}`]);
    assert.equal(f.stdout, "11\n");
    assert.match(f.stderr, /\[info\] FROM A FILE/);
    const s = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--ext", "env", "--input", "@-"], "piped");
    assert.equal(s.stdout, "5\n");
    assert.match(s.stderr, /\[info\] PIPED/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("call passes ARGS as the export's parameters and prints its result", () => {
  const r = uniwasm(["call", "--ext", "test:probe", "test/fixtures/ext/probe.wasm", "read", "16"]);
  // test:probe is not offered on the command line: its imports cannot link at all.
  assert.equal(r.status, 126);
  assert.match(r.stderr, /unknown import module "test:probe"/);
  const ok = uniwasm(["call", "test/fixtures/wat/memory-import.wasm", "grow", "1", "--ext", "env"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, "2\n");
});

test("call refuses a call that does not fit the export with exit 2, naming what it takes", () => {
  const missing = uniwasm(["call", "test/fixtures/ext/seed.wasm", "nope", "--ext", "env"]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /exports no "nope" \(its functions: process\)/);
  const count = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--ext", "env", "1"]);
  assert.equal(count.status, 2);
  assert.match(count.stderr, /process takes \(i32, i32\): 2 more arguments, 1 given/);
  const type = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--ext", "env", "1", "x"]);
  assert.equal(type.status, 2);
  assert.match(type.stderr, /argument 2 \("x"\): expected an i32 integer/);
});

test("call ends a trapping export with the run exit codes and a backtrace", () => {
  const r = uniwasm(["call", "test/fixtures/ext/seed.wasm", "process", "--ext", "env", "--", "70000", "2"]);
  assert.equal(r.status, 134);
  assert.match(r.stderr, /trap: out of bounds memory access\nwasm backtrace:\n  0: process/);
});

test("call --trace and --stats show the extension's calls", () => {
  const r = uniwasm(["call", "--trace", "--stats", "test/fixtures/ext/seed.wasm", "process", "--input", "hi", "--ext", "env"]);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /\[trace\] env\.log\(0x0, 10\)\n/);
  assert.match(r.stderr, /\s+2\s+0\s+env\.log\n/);
});

test("call with a memory limit below the input ends with memory_limit (137)", () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-call-"));
  try {
    writeFileSync(join(dir, "big"), "x".repeat(200_000));
    const r = uniwasm(["call", "--max-memory", "128K", "--ext", "env", "test/fixtures/ext/seed.wasm", "process", "--input", `@${join(dir, "big")}`]);
    assert.equal(r.status, 137);
    assert.match(r.stderr, /memory_limit: memory limit of 128 KiB reached: the call's input needs 4 pages/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("inspect groups extension imports by extension and names the grant that links them", () => {
  const r = uniwasm(["inspect", "test/fixtures/ext/seed.wasm"]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /host extensions \(linked only when granted: --ext env\):\n  env:\n    log +Write the bytes .*\n    memory \(memory\) +A memory the host provides\./);
  assert.doesNotMatch(r.stdout, /does not provide/);
});
