/**
 * `bash examples/secure-microservices/demo.sh` runs from start to end on a
 * throw-away node and prints what it promises (its own file: the demo drives
 * the CLI, a process per command, and needs most of a file's time budget).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { have, runDemo } from "./helpers.js";

const missing = ["bash", "curl"].filter((c) => !have(c));

test("the secure-microservices demo shops, is attacked by a hostile cart refused everywhere, and cleans up", { skip: missing.length ? `needs ${missing.join(" and ")}` : false }, async () => {
  const r = await runDemo("secure-microservices");
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /^order 1 for alice$/m);
  assert.match(r.out, /^26 attempts: 25 refused, 1 allowed$/m);
  assert.match(r.out, /^cart\s+shop\s+wagi\s+running\s+2\s+\d+\s+(?:executor|inline)\s+(?:isolate|process|gvisor)\s+21\s/m, "ps shows the refusals");
  assert.match(r.out, /service call to checkout refused: not in allowed_services/);
  assert.match(r.out, /^ {2}uniwasm:kv\.open +6$/m);
  assert.match(r.out, /^\(unchanged\)$/m);
  assert.match(r.out, /^cake 2$/m, "the real cart is back");
  const data = /data in (\S+)\/node\)/.exec(r.out)?.[1];
  assert.ok(data, "the demo says where its node kept its data");
  assert.equal(existsSync(data), false, "the demo removes its temp directory");
});
