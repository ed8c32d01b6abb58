/** Runs the real CLI: `uniwasm new` into a temp dir, then `uniwasm dev` on a free port, reading what it prints. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = join(ROOT, "bin", "uniwasm.js");

export function cli(args: string[], cwd: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Why a template cannot build here (its toolchain is missing), or false. */
/** Debian's rustc when installed (a rustup one may come first on PATH), for the Rust template. */
export const RUSTC = existsSync("/usr/bin/rustc") ? "/usr/bin/rustc" : "rustc";

export function toolchainMissing(template: string): string | false {
  if (template.endsWith("-as")) return false; // asc comes from npm (a devDependency of uniwasm)
  if (template.endsWith("-rust")) {
    const sysroot = spawnSync(RUSTC, ["--print", "sysroot"], { encoding: "utf8" });
    const lib = join(sysroot.stdout?.trim() ?? "", "lib", "rustlib");
    if (sysroot.status !== 0 || !(existsSync(join(lib, "wasm32-wasi")) || existsSync(join(lib, "wasm32-wasip1")))) return "needs rustc with the wasm32-wasi standard library (apt-get install rustc libstd-rust-dev-wasm32 lld)";
    return false;
  }
  const cc = template.endsWith("-cpp") ? "clang++" : "clang";
  const probe = template.endsWith("-cpp") ? "#include <string>\nint main(){std::string s;return 0;}\n" : "#include <stdio.h>\nint main(void){return 0;}\n";
  const r = spawnSync(cc, ["--target=wasm32-wasi", "-x", template.endsWith("-cpp") ? "c++" : "c", "-fsyntax-only", "-"], { input: probe, encoding: "utf8" });
  if (r.error || r.status !== 0) return `needs ${cc} for wasm32-wasi (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32${template.endsWith("-cpp") ? " libc++-dev-wasm32" : ""})`;
  return false;
}

export interface NewApp {
  work: string;
  dir: string;
  cleanup(): void;
}

/** `uniwasm new <work>/<name> --template T`; an AssemblyScript app gets uniwasm's node_modules, as `npm install` would give it. */
export function newApp(name: string, template: string): NewApp {
  const work = mkdtempSync(join(tmpdir(), "uniwasm-new-"));
  const r = cli(["new", name, "--template", template], work);
  if (r.status !== 0) throw new Error(`uniwasm new: ${r.stderr}`);
  const dir = join(work, name);
  if (template.endsWith("-as")) symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return { work, dir, cleanup: () => rmSync(work, { recursive: true, force: true }) };
}

/** A running `uniwasm dev`: its output so far, and waits on it. */
export class Dev {
  output = "";
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];
  url = "";

  constructor(dir: string, cwd: string, env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [BIN, "dev", dir, "--port", "0"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const take = (d: Buffer) => {
      this.output += d.toString();
      for (const w of this.waiters.splice(0)) w();
    };
    this.child.stdout!.on("data", take);
    this.child.stderr!.on("data", take);
    this.child.on("exit", () => take(Buffer.from("")));
  }

  /** Resolves with the match once the output matches `re` (searched from `from`), or rejects after `ms`. */
  async waitFor(re: RegExp, ms = 60_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.output.slice(from).match(re);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`uniwasm dev exited ${this.child.exitCode}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; uniwasm dev printed:\n${this.output}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  async ready(): Promise<string> {
    const m = await this.waitFor(/serving \S+ at (http:\/\/127\.0\.0\.1:\d+\/)/);
    this.url = m[1]!;
    return this.url;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once("exit", (code) => resolve(code)));
    this.child.kill("SIGTERM");
    return exited;
  }
}
