/** `uniwasm dev` refuses what it cannot serve, saying what to do. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Dev, cli, newApp, toolchainMissing } from "./dev-helpers.js";

const skip = toolchainMissing("wagi-c");

test("uniwasm dev refuses a directory without uniwasm.toml, and a port that is taken", { skip, timeout: 60_000 }, async () => {
  const app = newApp("taken", "wagi-c");
  try {
    const r = cli(["dev", app.work, "--port", "0"], app.work);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /uniwasm dev: no uniwasm\.toml in .*; create an app with `uniwasm new NAME`/);
    const first = new Dev("taken", app.work);
    try {
      const port = new URL(await first.ready()).port;
      const second = cli(["dev", "taken", "--port", port], app.work);
      assert.equal(second.status, 1);
      assert.match(second.stderr, new RegExp(`port ${port} is in use; pick another with --port N`));
    } finally {
      await first.stop();
    }
  } finally {
    app.cleanup();
  }
});
