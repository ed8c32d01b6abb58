import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { deploy, gw, tenant, testNode } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";

test(
  "the dashboard, in real Chromium, signs in with a token and shows tenants, a deployed app with its syscall surface, instances and live charts",
  { skip: existsSync(CHROMIUM) ? false : "chromium not installed (apt-get install chromium)", timeout: 120_000 },
  async () => {
    const { chromium } = await import("playwright-core");
    const node = await testNode({ executors: 1 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    try {
      const t = await tenant(node, "shop");
      assert.equal((await deploy(node, t, "storefront", "reactor/hello.wasm", { abi: "reactor" })).status, 201);
      assert.equal((await deploy(node, t, "checkout", "wagi/handler.wasm")).status, 201);
      for (let i = 0; i < 20; i++) await gw(node, t.name, i % 2 ? "storefront" : "checkout", "/hello");

      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(node.dashboardUrl);
      await page.fill("#token", "uw_wrong");
      await page.click("button[type=submit]");
      await page.waitForSelector("#login-error:has-text('unauthorized')");

      await page.fill("#token", node.admin);
      await page.click("button[type=submit]");
      await page.waitForSelector("#apps tbody tr:has-text('storefront')");
      assert.match(await page.textContent("#who") ?? "", /admin/);
      assert.match(await page.textContent("#tenants") ?? "", /shop/);
      const apps = (await page.textContent("#apps")) ?? "";
      assert.match(apps, /storefront.*reactor.*running/s);
      assert.match(apps, /checkout.*wagi/s);
      assert.match(apps, /fd_write/, "the syscall surface is listed");
      await page.waitForSelector("#instances tbody tr:has-text('storefront')");
      assert.match(await page.textContent("#node") ?? "", /executor-pool\(1\)/);
      // The request-rate chart drew something: some non-blank pixels.
      // Runs in the page; typed loosely since this project compiles without the DOM lib.
      const inked = await page.$eval("#rate-chart", (c: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const data: Uint8ClampedArray = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
        return n;
      });
      assert.ok(inked > 50, `rate chart has ${inked} painted pixels`);
      assert.deepEqual(errors, []);

      mkdirSync("test-output", { recursive: true });
      const shot = join(process.cwd(), "test-output", "dashboard.png");
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot: ${shot}`);

      // A tenant token sees only its tenant and no node panel.
      const other = await tenant(node, "other");
      const page2 = await browser.newPage();
      await page2.goto(node.dashboardUrl);
      await page2.fill("#token", other.token);
      await page2.click("button[type=submit]");
      await page2.waitForSelector("#tenants tbody tr:has-text('other')");
      assert.doesNotMatch(await page2.textContent("#tenants") ?? "", /shop/);
      assert.equal(await page2.isVisible("#node-panel"), false);
    } finally {
      await browser.close();
      await node.close();
    }
  },
);
