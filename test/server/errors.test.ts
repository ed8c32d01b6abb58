import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ERROR_CATALOGUE, ERROR_CODES, ApiError } from "../../src/server/errors.js";

const doc = readFileSync("docs/api.md", "utf8");

test("every error code in the catalogue is documented in docs/api.md with its status", () => {
  const undocumented = ERROR_CODES.filter((code) => {
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${code}\` |`));
    return !row || !row.includes(`| ${ERROR_CATALOGUE[code].status} |`);
  });
  assert.deepEqual(undocumented, [], `undocumented (or documented with another status): ${undocumented.join(", ")}`);
});

test("docs/api.md documents no error code the catalogue does not have", () => {
  const documented = [...doc.matchAll(/^\| `([a-z_]+)` \| \d{3} \|/gm)].map((m) => m[1]!);
  const unknown = documented.filter((c) => !(c in ERROR_CATALOGUE));
  assert.deepEqual(unknown, []);
});

test("an ApiError carries its catalogue status and serialises as {error:{code,message}}", () => {
  const e = new ApiError("route_conflict", "taken");
  assert.equal(e.status, 409);
  assert.deepEqual(e.body(), { error: { code: "route_conflict", message: "taken" } });
  assert.deepEqual(new ApiError("guest_error").body("r1").error.requestId, "r1");
});
