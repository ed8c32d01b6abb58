/**
 * File times to the nanosecond on host directories (issue 9). The conformance
 * programs *_one_time_leaves_the_other_to_the_ns check what a guest sees, on
 * both backends, with the addon or the fallback; these check what the host's
 * disk holds, and that the way it is done is stated.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kernel } from "../../src/kernel/kernel.js";
import { FstFlags } from "../../src/kernel/abi.js";
import { HostFs } from "../../src/kernel/fs-host.js";
import { fileTimesSupport } from "../../src/kernel/file-times.js";

const support = fileTimesSupport();
const A1 = 1234567890123456789n;
const M1 = 1111111111987654321n;
const M2 = 1222222222000000007n;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-times-"));
  try {
    writeFileSync(join(dir, "f"), "x");
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("how file times are set is stated (addon built or not, and why)", () => {
  assert.match(support.reason, support.native ? /nanosecond/ : /not built|disabled|did not load/);
});

test("with the addon, times a guest sets are on disk to the nanosecond and the one it leaves is not rewritten", { skip: support.native ? false : support.reason }, () => {
  withDir((dir) => {
    const k = new Kernel({ preopens: [{ guest: "/d", host: dir }] });
    try {
      k.fs.pathSetTimes(3, 0, "f", A1, M1, FstFlags.ATIM | FstFlags.MTIM);
      let st = statSync(join(dir, "f"), { bigint: true });
      assert.equal(st.atimeNs, A1);
      assert.equal(st.mtimeNs, M1);
      k.fs.pathSetTimes(3, 0, "f", 0n, M2, FstFlags.MTIM);
      st = statSync(join(dir, "f"), { bigint: true });
      assert.equal(st.mtimeNs, M2);
      assert.equal(st.atimeNs, A1, "the access time another process sees is untouched");
      k.fs.pathSetTimes(3, 0, "f", 0n, 0n, FstFlags.ATIM_NOW);
      st = statSync(join(dir, "f"), { bigint: true });
      assert.equal(st.mtimeNs, M2);
      assert.ok(st.atimeNs > M2);
    } finally {
      k.close();
    }
  });
});

test("without the addon, the fallback keeps guest-set times exact inside the instance (microseconds on disk)", () => {
  withDir((dir) => {
    const fs = new HostFs(dir, { nativeTimes: false });
    try {
      fs.setTimes(fs.root, "f", A1, M1);
      fs.setTimes(fs.root, "f", null, M2);
      const seen = fs.stat(fs.root, "f");
      assert.equal(seen.atim, A1);
      assert.equal(seen.mtim, M2);
      const disk = statSync(join(dir, "f"), { bigint: true });
      assert.ok(disk.atimeNs - A1 < 1000n && A1 - disk.atimeNs < 1000n, `disk atime ${disk.atimeNs} within a microsecond of ${A1}`);
    } finally {
      fs.close();
    }
  });
});
