/** The examples' HTTP triggers are real: each one a manifest declares answers through a node's gateway. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar } from "../../src/image/index.js";
import { call, gw, tempDataDir, tenant, testNode } from "./helpers.js";

const EXAMPLES = join(process.cwd(), "examples");

test("every example that declares an HTTP trigger answers it through a node's gateway", async () => {
  const dirs = readdirSync(EXAMPLES).filter((d) => existsSync(join(EXAMPLES, d, "uniwasm.toml")));
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "examples");
    const answered: string[] = [];
    for (const d of dirs) {
      const store = new ImageStore(tempDataDir());
      const built = await buildImage(store, { dir: join(EXAMPLES, d) });
      if (built.manifest.triggers.http.length === 0) continue;
      const { tar } = await saveImagesToTar(store, [built.digest]);
      const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, tar, { "content-type": "application/x-tar" });
      assert.equal(up.status, 201, `examples/${d}: ${up.text}`);
      const app = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/${d}`, t.token, { image: up.json.digest });
      assert.equal(app.status, 201, `examples/${d}: ${app.text}`);
      for (const trigger of built.manifest.triggers.http) {
        const r = await gw(node, t.name, d, trigger.route);
        assert.equal(r.status, 200, `examples/${d}: GET ${trigger.route} answered ${r.status}: ${r.text}`);
        assert.ok(r.text.length > 0, `examples/${d}: GET ${trigger.route} answered an empty body`);
        answered.push(`${d} ${trigger.route}`);
      }
    }
    assert.ok(answered.includes("hello-image /hello"), answered.join(", "));
    // The greeting comes from the file bundled in the image, in the manifest's language, to the query's name.
    assert.equal((await gw(node, t.name, "hello-image", "/hello?you")).text, "Bonjour, you!\n");
  } finally {
    await node.close();
  }
});
