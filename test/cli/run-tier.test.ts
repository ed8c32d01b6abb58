/**
 * `uniwasm run --tier` and `uniwasm call --tier`: the same module, the same
 * flags, the same results on every tier available here (a tier whose tool is
 * missing is skipped with the reason).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TIERS, tierUnavailable } from "../../src/sandbox/tiers/tier.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(repo, "bin/uniwasm.js");

function uniwasm(args: string[], input = "") {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: "utf8", input, timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

for (const tier of TIERS) {
  const why = tierUnavailable(tier);
  describe(`uniwasm run/call --tier ${tier}`, { skip: why ? `the ${tier} tier is not available here: ${why}` : false }, () => {
    test("a command with a granted dir, env and args: same output, same files written, same exit code, a symlink escape refused", () => {
      const outside = realpathSync(mkdtempSync(join(tmpdir(), "uniwasm-tier-outside-")));
      const dir = realpathSync(mkdtempSync(join(tmpdir(), "uniwasm-tier-dir-")));
      try {
        writeFileSync(join(outside, "secret.txt"), "secret\n");
        writeFileSync(join(dir, "in.txt"), "first line\n");
        symlinkSync(outside, join(dir, "link-out"));
        const r = uniwasm(["run", "--tier", tier, "--dir", `${dir}::/sandbox`, "--env", "GREETING=hi", "test/fixtures/node-wasi/command.wasm", "tiers", "7"]);
        assert.equal(r.status, 7, r.stderr);
        assert.equal(r.stdout, "hello tiers, GREETING=hi\nin: first line\nescape: refused\n");
        assert.equal(readFileSync(join(dir, "out.txt"), "utf8"), "written by tiers\n");
      } finally {
        rmSync(outside, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
    test("stdin reaches the guest", () => {
      const r = uniwasm(["run", "--tier", tier, "test/fixtures/c-sandbox/stdin-upper.wasm"], "shout\n");
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "SHOUT\n");
    });
    test("a limit ends the guest with its exit status and one line naming it", () => {
      const r = uniwasm(["run", "--tier", tier, "--timeout", "300ms", "test/fixtures/c-sandbox/spin.wasm"]);
      assert.equal(r.status, 124);
      assert.match(r.stderr, /deadline_exceeded: deadline of 300 ms exceeded/);
      const m = uniwasm(["run", "--tier", tier, "--max-memory", "16M", "test/fixtures/c-sandbox/memhog.wasm", "32"]);
      assert.equal(m.status, 137, m.stderr);
    });
    test("call: an export of a reactor", () => {
      const r = uniwasm(["call", "--tier", tier, "test/fixtures/c-sandbox/values-reactor.wasm", "add_i32", "2", "3"]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "5\n");
    });
    if (tier !== "isolate") {
      test("a listening socket is refused before anything runs, naming the tier", () => {
        const r = uniwasm(["run", "--tier", tier, "--tcplisten", "127.0.0.1:0", "test/fixtures/c-sandbox/hello.wasm"]);
        assert.equal(r.status, 126);
        assert.match(r.stderr, new RegExp(`not available on the ${tier} tier`));
        assert.equal(r.stdout, "");
      });
    }
  });
}

test("run --tier refuses an unknown tier, naming the choices", () => {
  const r = uniwasm(["run", "--tier", "vm", "test/fixtures/c-sandbox/hello.wasm"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /isolate, process, gvisor/);
});
