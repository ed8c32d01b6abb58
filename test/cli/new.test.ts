/** `uniwasm new`: starter apps from the templates that ship with the package. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEMPLATES } from "../../src/cli/commands/new.js";
import { parseManifest } from "../../src/image/manifest.js";
import { ROOT, cli } from "./dev-helpers.js";

test("the templates directory holds exactly the templates uniwasm new offers, and the npm package ships it", () => {
  assert.deepEqual(readdirSync(join(ROOT, "templates")).sort(), Object.keys(TEMPLATES).sort());
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { files: string[] };
  assert.ok(pkg.files.includes("templates"));
});

test("uniwasm new makes every template's app: source, a valid uniwasm.toml named after the app, an executable build.sh that names its packages, a README", () => {
  const work = mkdtempSync(join(tmpdir(), "uniwasm-new-"));
  try {
    for (const t of Object.keys(TEMPLATES)) {
      const name = `app-${t}`;
      const r = cli(["new", name, "--template", t], work);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`created ${name} from ${t}`));
      assert.match(r.stdout, /next: uniwasm dev /);
      const dir = join(work, name);
      const files = readdirSync(dir);
      for (const f of ["uniwasm.toml", "build.sh", "README.md", ".gitignore"]) assert.ok(files.includes(f), `${t}: ${f} in ${files}`);
      assert.ok(!files.includes("_gitignore"));
      const manifest = parseManifest(readFileSync(join(dir, "uniwasm.toml"), "utf8"));
      assert.equal(manifest.name, name);
      assert.equal(manifest.triggers.http[0]?.route, "/");
      assert.ok(statSync(join(dir, "build.sh")).mode & 0o100, `${t}: build.sh is executable`);
      const build = readFileSync(join(dir, "build.sh"), "utf8");
      assert.match(build, t.endsWith("-as") ? /npm install/ : t.endsWith("-rust") ? /apt-get install rustc libstd-rust-dev-wasm32 lld/ : /apt-get install clang lld wasi-libc libclang-rt-dev-wasm32/, t);
      for (const f of files) {
        if (statSync(join(dir, f)).isFile()) assert.ok(!readFileSync(join(dir, f), "utf8").includes("{{name}}"), `${t}/${f} keeps a placeholder`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("uniwasm new refuses a name the node would refuse, an unknown template and a directory that is not empty", () => {
  const work = mkdtempSync(join(tmpdir(), "uniwasm-new-"));
  try {
    let r = cli(["new", "Hello_World"], work);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /"Hello_World" is not an app name: use lower-case letters, digits and inner dashes/);
    r = cli(["new", "hello", "--template", "wagi-cobol"], work);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no template "wagi-cobol"; the templates are: wagi-c, reactor-c/);
    mkdirSync(join(work, "taken"));
    writeFileSync(join(work, "taken", "notes.txt"), "mine");
    r = cli(["new", "taken"], work);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists and is not an empty directory/);
    assert.equal(readFileSync(join(work, "taken", "notes.txt"), "utf8"), "mine");
    assert.ok(!existsSync(join(work, "hello")));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
