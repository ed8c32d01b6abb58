import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { call, deploy, gw, tempDataDir, tenant, testNode, wasm } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";

function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: "warn" }, stream), lines };
}

test("a corrupt blob on disk quarantines its image at start-up: the node starts, other apps serve, the API, logs and dashboard say which image and why, and uploading it again restores the app", { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir();
  let node = await testNode({ dataDir, executors: 1 });
  const admin = node.admin;
  const acme = await tenant(node, "acme");
  const beta = await tenant(node, "beta");
  const broken = await deploy(node, acme, "broken", "wagi/handler.wasm");
  assert.equal(broken.status, 201);
  assert.equal((await deploy(node, beta, "fine", "wagi/hello.wasm")).status, 201);
  const digest = broken.json.image as string;
  await node.close();

  const blob = join(dataDir, "blobs", "sha256", digest.slice(7));
  writeFileSync(blob, "not the module any more");
  const { logger, lines } = capturedLog();
  node = Object.assign(await testNode({ dataDir, executors: 1, logger }), { admin });
  try {
    assert.equal((await gw(node, "beta", "fine", "/")).status, 200, "every other app serves");
    const down = await gw(node, "acme", "broken", "/hello");
    assert.equal(down.status, 503);
    assert.equal(JSON.parse(down.text).error.code, "app_unavailable");

    const app = (await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/broken", acme.token)).json;
    assert.equal(app.status, "quarantined");
    assert.match(app.problem, new RegExp(`image ${digest} is quarantined: blob ${digest} is corrupt on disk .*; upload the image again to restore the app`));
    const image = (await call(node.apiUrl, "GET", `/v1/tenants/acme/images/${digest}`, acme.token)).json;
    assert.deepEqual(image.quarantined, { missingBlobs: [digest], fix: "upload the image again" });
    const quarantine = (await call(node.apiUrl, "GET", "/v1/node", admin)).json.quarantine;
    assert.equal(quarantine.length, 1);
    assert.equal(quarantine[0].digest, digest);
    assert.deepEqual(quarantine[0].images, [{ tenant: "acme", name: "broken", digest }]);
    assert.deepEqual(quarantine[0].apps, [{ tenant: "acme", name: "broken" }]);
    assert.ok(existsSync(quarantine[0].path) && !existsSync(blob), "the corrupt bytes are kept aside, not under their digest");
    assert.ok(lines.some((l) => l["msg"] === "image quarantined: a blob is corrupt on disk; its apps are not started" && l["app"] === "broken" && l["tenant"] === "acme"), JSON.stringify(lines));
    node.store.flush();
    const events = (await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/broken/logs", acme.token)).json.logs.map((l: { line: string }) => l.line);
    assert.ok(events.some((l: string) => l.startsWith(`not started after restart: image ${digest} is quarantined`)), events.join("\n"));

    if (existsSync(CHROMIUM)) {
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
      try {
        const page = await browser.newPage();
        await page.goto(node.dashboardUrl);
        await page.fill("#token", admin);
        await page.click("button[type=submit]");
        await page.waitForSelector("#apps tbody tr:has-text('broken')");
        assert.match((await page.textContent("#apps")) ?? "", /broken.*quarantined: image sha256:/s);
        assert.match((await page.textContent("#node")) ?? "", new RegExp(`quarantine.*blob ${digest.slice(7, 19)} \\(acme/broken; apps not started: acme/broken\\)`, "s"));
      } finally {
        await browser.close();
      }
    }

    // Uploading the module again heals the blob and starts the app.
    const up = await call(node.apiUrl, "POST", "/v1/tenants/acme/images?name=broken", acme.token, wasm("wagi/handler.wasm"), { "content-type": "application/wasm" });
    assert.equal(up.status, 201, up.text);
    assert.equal((await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/broken", acme.token)).json.status, "running");
    assert.equal((await gw(node, "acme", "broken", "/hello")).text, "hello from wagi\n");
    assert.deepEqual((await call(node.apiUrl, "GET", "/v1/node", admin)).json.quarantine, []);
  } finally {
    await node.close();
  }
});

test("a node restarted with an image's blob still missing starts, and reports that image as quarantined", async () => {
  const dataDir = tempDataDir();
  let node = await testNode({ dataDir, executors: 1 });
  const admin = node.admin;
  const acme = await tenant(node, "acme");
  const d = await deploy(node, acme, "gone", "wagi/hello.wasm");
  await node.close();
  const { rmSync } = await import("node:fs");
  rmSync(join(dataDir, "blobs", "sha256", (d.json.image as string).slice(7)));
  node = Object.assign(await testNode({ dataDir, executors: 1 }), { admin });
  try {
    const app = (await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/gone", acme.token)).json;
    assert.equal(app.status, "quarantined");
    assert.match(app.problem, /blob\(s\) sha256:[0-9a-f]{64} missing on this node; upload the image again/);
  } finally {
    await node.close();
  }
});
