import { Command } from "commander";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The starter apps `uniwasm new` can make; each is a directory under templates/ in the package. */
export const TEMPLATES: Record<string, { summary: string; needs: string }> = {
  "wagi-c": { summary: "a WAGI handler in C: a fresh instance per request", needs: "clang lld wasi-libc libclang-rt-dev-wasm32" },
  "reactor-c": { summary: "a reactor HTTP handler in C: one warm instance, many requests", needs: "clang lld wasi-libc libclang-rt-dev-wasm32" },
  "wagi-cpp": { summary: "a WAGI handler in C++ (libc++)", needs: "clang lld wasi-libc libclang-rt-dev-wasm32 libc++-dev-wasm32" },
  "wagi-rust": { summary: "a WAGI handler in Rust (std only, built with rustc: no cargo, no crates)", needs: "rustc libstd-rust-dev-wasm32 lld" },
  "wagi-as": { summary: "a WAGI handler in AssemblyScript (asc and the WASI shim from npm)", needs: "npm install (assemblyscript, @assemblyscript/wasi-shim)" },
  "reactor-as": { summary: "a reactor HTTP handler in AssemblyScript", needs: "npm install (assemblyscript)" },
  "plugin-c": { summary: "a plugin in C that a Node program calls through uniwasm's library (and that uniwasm dev serves)", needs: "clang lld wasi-libc libclang-rt-dev-wasm32" },
};

export const DEFAULT_TEMPLATE = "wagi-c";

/** App names as the node takes them: lower-case letters, digits and inner dashes, 1-40 characters. */
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

export function templatesDir(): string {
  // dist/src/cli/commands -> the package root, where templates/ ships (package.json "files").
  return fileURLToPath(new URL("../../../../templates/", import.meta.url));
}

/** Files of a template, relative to it. `_gitignore` stands for `.gitignore` (npm leaves .gitignore files out of packages). */
function templateFiles(dir: string, sub = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, sub)).sort()) {
    const rel = sub ? `${sub}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) out.push(...templateFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

export class NewAppError extends Error {}

/** Creates the app `target` (its last path segment is the app's name) from `template`; returns the files written. */
export function createApp(target: string, template: string): string[] {
  const name = basename(resolve(target));
  if (!NAME_RE.test(name)) throw new NewAppError(`${JSON.stringify(name)} is not an app name: use lower-case letters, digits and inner dashes, 1-40 characters (e.g. hello-api)`);
  if (!TEMPLATES[template]) throw new NewAppError(`no template ${JSON.stringify(template)}; the templates are: ${Object.keys(TEMPLATES).join(", ")}`);
  const from = join(templatesDir(), template);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new NewAppError(`${target} already exists and is not an empty directory; choose another name`);
  }
  const written: string[] = [];
  for (const rel of templateFiles(from)) {
    const out = join(target, rel.replace(/(^|\/)_gitignore$/, "$1.gitignore"));
    mkdirSync(join(out, ".."), { recursive: true });
    writeFileSync(out, readFileSync(join(from, rel), "utf8").replaceAll("{{name}}", name));
    if (rel.endsWith(".sh")) chmodSync(out, 0o755);
    written.push(out);
  }
  return written;
}

export function registerNew(program: Command): void {
  program
    .command("new")
    .description("Create a starter app: source, uniwasm.toml, a build script for Debian's toolchains, and a README")
    .argument("<name>", "the app's directory; its last segment is the app's name")
    .option("-t, --template <template>", `starter to copy: ${Object.keys(TEMPLATES).join(", ")}`, DEFAULT_TEMPLATE)
    .addHelpText("after", `
Templates:
${Object.entries(TEMPLATES).map(([t, d]) => `  ${t.padEnd(11)} ${d.summary}\n  ${"".padEnd(11)} needs: ${d.needs}`).join("\n")}

Then: uniwasm dev NAME   (builds, serves on http://127.0.0.1:8080/, reloads on change)`)
    .action((target: string, flags: { template: string }) => {
      let files: string[];
      try {
        files = createApp(target, flags.template);
      } catch (err) {
        if (!(err instanceof NewAppError)) throw err;
        process.stderr.write(`uniwasm new: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      const t = TEMPLATES[flags.template]!;
      const shown = relative(process.cwd(), resolve(target)) || ".";
      process.stdout.write(`created ${basename(resolve(target))} from ${flags.template}: ${t.summary}\n`);
      for (const f of files) process.stdout.write(`  ${relative(process.cwd(), f)}\n`);
      process.stdout.write(`the build needs: ${t.needs}\nnext: uniwasm dev ${shown}   (npx uniwasm in a clone of uniwasm)\n`);
    });
}
