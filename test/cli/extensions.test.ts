import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(repo, "bin/uniwasm.js");

/** Runs the CLI without blocking this thread (a test server may need to answer it). */
function uniwasm(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { cwd: repo });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c) => (stdout += c));
    p.stderr.on("data", (c) => (stderr += c));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test("run --ext kv --kv FILE keeps the store across runs; without the grant every call is ENOTCAPABLE", async () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-kv-"));
  try {
    const file = join(dir, "kv.db");
    assert.equal((await uniwasm(["run", "--ext", "kv", "--kv", file, "test/fixtures/ext/kv.wasm", "set", "k", "kept"])).stdout, "set k: 0\n");
    assert.equal((await uniwasm(["run", "--ext", "kv", "--kv", file, "test/fixtures/ext/kv.wasm", "get", "k"])).stdout, "get k = kept\n");
    assert.equal((await uniwasm(["run", "--ext", "kv", "test/fixtures/ext/kv.wasm", "get", "k"])).stdout, "get k: errno 44\n", "the default store is in memory");
    assert.equal((await uniwasm(["run", "--kv", file, "test/fixtures/ext/kv.wasm", "get", "k"])).stdout, "get k: errno 76\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the AssemblyScript binding works granted, and every call is refused ungranted", async () => {
  const granted = await uniwasm(["run", "--ext", "kv", "--ext", "log", "--ext", "variables", "--var", "greeting_name=Ada", "test/fixtures/ext/as-guest.wasm"]);
  assert.equal(granted.stdout, "log 0\nset 0\nruns 1\ngreeting hello from as\nkeys as:greeting,as:runs\nvariable Ada\n");
  assert.equal(granted.stderr, "[info] as guest starting\n");
  const refused = await uniwasm(["run", "test/fixtures/ext/as-guest.wasm"]);
  assert.equal(refused.stdout, "log 76\nset 76\nruns errno 76\ngreeting null\nkeys \nvariable errno 76\n");
  const strict = await uniwasm(["run", "--strict", "test/fixtures/ext/as-guest.wasm"]);
  assert.equal(strict.status, 126);
  assert.match(strict.stderr, /uniwasm:kv\.set \(needs extension "uniwasm:kv\/write"/);
});

test("run --ext http reaches only --allow-outbound destinations", async () => {
  const server = createServer((req, res) => res.end(`hi ${req.url}`));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  try {
    const ok = await uniwasm(["run", "--ext", "http", "--allow-outbound", `http://127.0.0.1:${port}`, "test/fixtures/ext/http.wasm", "GET", `http://127.0.0.1:${port}/a`]);
    assert.match(ok.stdout, /^status 200\nbody hi \/a\n/);
    const refused = await uniwasm(["run", "--ext", "http", "--allow-outbound", "http://*:*", "test/fixtures/ext/http.wasm", "GET", `http://127.0.0.1:${port}/a`]);
    assert.equal(refused.stdout, "errno 2\n");
    const bad = await uniwasm(["run", "--ext", "http", "--allow-outbound", "nope", "test/fixtures/ext/http.wasm", "GET", "x"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--allow-outbound nope: "nope" is not allowed; expected scheme:\/\/host\[:port\]/);
  } finally {
    server.close();
  }
});

test("--ext with an unknown name is a usage error naming the built-ins", async () => {
  const r = await uniwasm(["run", "--ext", "teleport", "test/fixtures/ext/kv.wasm"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--ext teleport: no such extension \(built in: env, uniwasm:log, uniwasm:kv/);
});

/** Runs the CLI with `input` on stdin. */
function uniwasmWithInput(args: string[], input: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { cwd: repo });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c) => (stdout += c));
    p.stderr.on("data", (c) => (stderr += c));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
    p.stdin.end(input);
  });
}

test("run --ext service calls local modules named with --service; ungranted names, cycles and no grant are refused", async () => {
  const svc = "test/fixtures/ext/service.wasm";
  const base = ["run", "--ext", "service", "--service", `back=${svc}`];
  assert.equal((await uniwasmWithInput([...base, svc], "call back hi")).stdout, "Content-Type: text/plain\n\nstatus 200: echo from ? for service.wasm: hi");
  assert.equal((await uniwasmWithInput([...base, svc], "call other hi")).stdout, "Content-Type: text/plain\n\nerrno 2\n");
  assert.equal((await uniwasmWithInput([...base, svc], "call back call back hi")).stdout, "Content-Type: text/plain\n\nstatus 200: errno 32\n");
  assert.equal((await uniwasmWithInput(["run", "--service", `back=${svc}`, svc], "call back hi")).stdout, "Content-Type: text/plain\n\nerrno 76\n");
});
