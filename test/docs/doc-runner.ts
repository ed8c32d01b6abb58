/**
 * Runs a doc's runnable blocks (see doc-blocks.ts) as a new user would: in a
 * fresh copy of the repository (its files as git sees them, plus the built
 * dist/ and node_modules/ a `npm install` makes), with a fresh empty HOME, in
 * a private network namespace (bubblewrap) so the documented ports (7070,
 * 7080, 5000) are free and nothing on the machine is touched. `npx uniwasm`
 * runs the clone's own bin (what npx does in a clone, without its start-up
 * cost; a separate test checks real npx). The blocks run one after the other
 * in one session: exported variables and the working directory carry over.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DocBlock } from "./doc-blocks.js";

/** What a `needs=` word asks for: a command on PATH, and the Debian packages that give it. */
const NEEDS: Record<string, { command: string; packages: string }> = {
  clang: { command: "clang", packages: "clang lld wasi-libc libclang-rt-dev-wasm32" },
  "clang++": { command: "clang++", packages: "clang lld wasi-libc libclang-rt-dev-wasm32 libc++-dev-wasm32" },
  registry: { command: "docker-registry", packages: "docker-registry" },
  curl: { command: "curl", packages: "curl" },
  "nats-server": { command: "nats-server", packages: "nats-server" },
  git: { command: "git", packages: "git" },
  rustc: { command: "rustc", packages: "rustc libstd-rust-dev-wasm32 lld" },
};

export interface BlockResult {
  block: DocBlock;
  /** Exit status (a background block: 0 once it printed, else how it ended). */
  status: number;
  /** stdout and stderr together, as a terminal shows them. */
  output: string;
}

export interface DocRunResult {
  /** The blocks that ran, in order; the run stops after the first failing one. */
  results: BlockResult[];
  /** `git status --porcelain` of the clone after the run: files the docs left that git would pick up. */
  strayFiles: string[];
}

const SANDBOX = ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "--"];

/** Why docs cannot run on this machine (no private network namespace), or undefined. */
export function isolationProblem(): string | undefined {
  const r = spawnSync(SANDBOX[0]!, [...SANDBOX.slice(1), "true"], { stdio: "ignore", timeout: 30_000 });
  if (r.error || r.status !== 0) return "needs bubblewrap with network namespaces (apt-get install bubblewrap), so the documented ports are the doc's own";
  return undefined;
}

/** Why a block cannot run on this machine (a tool it needs is missing), or undefined. */
export function missingNeed(block: DocBlock): string | undefined {
  for (const need of block.runnable?.needs ?? []) {
    const n = NEEDS[need];
    if (!n) throw new Error(`line ${block.line}: unknown need ${JSON.stringify(need)} (known: ${Object.keys(NEEDS).join(", ")})`);
    const found = spawnSync("sh", ["-c", `command -v ${n.command}`], { stdio: "ignore" }).status === 0;
    if (!found) return `needs ${n.command} (apt-get install ${n.packages})`;
  }
  return undefined;
}

/** A fresh clone of `root`: its tracked and unignored files, committed, with dist/ and node_modules/ linked in. */
export function freshClone(root: string, into: string): string {
  const clone = join(into, "repo");
  const ls = spawnSync("git", ["-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { encoding: "utf8" });
  if (ls.status !== 0) throw new Error(`git ls-files: ${ls.stderr}`);
  for (const f of ls.stdout.split("\0").filter(Boolean)) {
    const from = join(root, f);
    if (!existsSync(from)) continue; // deleted in the work tree
    mkdirSync(dirname(join(clone, f)), { recursive: true });
    cpSync(from, join(clone, f), { verbatimSymlinks: true });
  }
  symlinkSync(join(root, "node_modules"), join(clone, "node_modules"));
  symlinkSync(join(root, "dist"), join(clone, "dist"));
  const git = (...args: string[]) => {
    const r = spawnSync("git", ["-c", "user.name=docs", "-c", "user.email=docs@localhost", "-c", "commit.gpgsign=false", ...args], { cwd: clone, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  git("init", "-q");
  // The links stand for what `npm install` makes; they are not the doc's doing.
  writeFileSync(join(clone, ".git", "info", "exclude"), "/node_modules\n/dist\n");
  git("add", "-A");
  git("commit", "-q", "-m", "clone");
  return clone;
}

const PRELUDE = `# Sourced by every block: \`npx uniwasm\` runs the clone's own CLI.
npx() { if [ "\${1-}" = uniwasm ]; then shift; node "$DOCS_REPO/bin/uniwasm.js" "$@"; else command npx "$@"; fi; }
`;

/** Runs the runnable blocks of one doc but `skip`; stops at the first block that fails. */
export async function runDoc(root: string, blocks: readonly DocBlock[], opts: { blockTimeoutS?: number; skip?: ReadonlySet<DocBlock> } = {}): Promise<DocRunResult> {
  const runnable = blocks.filter((b) => b.runnable && !opts.skip?.has(b));
  const work = mkdtempSync(join(tmpdir(), "uniwasm-docs-"));
  try {
    const clone = freshClone(root, work);
    const run = join(work, "run");
    const home = join(work, "home");
    mkdirSync(run);
    mkdirSync(home);
    writeFileSync(join(run, "prelude.sh"), PRELUDE);
    const timeout = opts.blockTimeoutS ?? 240;
    const steps: string[] = [];
    runnable.forEach((b, n) => {
      const env = `source "$R/env.sh"\ncd "$(cat "$R/cwd")"\nsource "$R/prelude.sh"\n`;
      const save = b.runnable!.background ? "" : `trap 'declare -px | grep -Ev "^declare -[a-zA-Z]*r|^declare -x (BASHOPTS|SHELLOPTS|SHLVL|PWD|OLDPWD|_)=" > "$R/env.sh"; pwd > "$R/cwd"' EXIT\n`;
      writeFileSync(join(run, `block-${n}.sh`), `${env}${save}set -euo pipefail\n${b.script}\n`);
      if (b.runnable!.needs.includes("registry")) steps.push("start_registry || exit 0");
      if (b.runnable!.background) writeFileSync(join(run, `${n}.ready`), b.runnable!.ready ?? "");
      steps.push(b.runnable!.background ? `run_bg ${n} || exit 0` : `run_fg ${n} ${timeout} ${b.runnable!.exit} || exit 0`);
    });
    writeFileSync(join(run, "driver.sh"), driver(steps));
    const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"], HOME: home, USER: process.env["USER"] ?? "user", LANG: "C.UTF-8", TERM: "dumb", DOCS_REPO: clone, R: run, TMPDIR: join(work, "tmp") };
    mkdirSync(env["TMPDIR"]!);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(SANDBOX[0]!, [...SANDBOX.slice(1), "bash", join(run, "driver.sh")], { cwd: clone, env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`docs driver exited ${code}: ${stderr}`))));
    });
    const results: BlockResult[] = [];
    runnable.forEach((b, n) => {
      const rc = join(run, `${n}.rc`);
      if (!existsSync(rc)) return;
      results.push({ block: b, status: Number(readFileSync(rc, "utf8").trim()), output: readFileSync(join(run, `${n}.out`), "utf8") });
    });
    const status = spawnSync("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: clone, encoding: "utf8" });
    return { results, strayFiles: status.stdout.split("\n").filter(Boolean) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The session, in bash: foreground blocks one after the other, background
 * ones in their own process group until the end, an OCI registry on
 * 127.0.0.1:5000 when a block needs one. Results go to $R/<n>.rc and .out.
 */
function driver(steps: string[]): string {
  return `set -u
declare -px | grep -Ev "^declare -[a-zA-Z]*r|^declare -x (BASHOPTS|SHELLOPTS|SHLVL|PWD|OLDPWD|_)=" > "$R/env.sh"
pwd > "$R/cwd"
groups=()
stop_all() {
  for g in "\${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
  for _ in $(seq 150); do
    alive=0
    for g in "\${groups[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return
    sleep 0.1
  done
  for g in "\${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
}
trap stop_all EXIT
run_fg() {
  timeout -k 5 "$2" bash "$R/block-$1.sh" > "$R/$1.out" 2>&1 < /dev/null
  local rc=$?
  echo $rc > "$R/$1.rc"
  [ $rc = "$3" ]
}
run_bg() {
  setsid bash "$R/block-$1.sh" > "$R/$1.out" 2>&1 < /dev/null &
  local pid=$!
  groups+=($pid)
  for _ in $(seq 1200); do
    if [ -s "$R/$1.out" ] && grep -qF -- "$(cat "$R/$1.ready")" "$R/$1.out"; then echo 0 > "$R/$1.rc"; return 0; fi
    if ! kill -0 $pid 2>/dev/null; then wait $pid; echo $? > "$R/$1.rc"; return 1; fi
    sleep 0.1
  done
  echo 124 > "$R/$1.rc"
  return 1
}
registry_started=0
start_registry() {
  [ $registry_started = 1 ] && return 0
  registry_started=1
  mkdir -p "$R/registry"
  printf 'version: 0.1\\nlog:\\n  level: error\\nstorage:\\n  filesystem:\\n    rootdirectory: %s\\nhttp:\\n  addr: 127.0.0.1:5000\\n' "$R/registry/data" > "$R/registry/config.yml"
  setsid docker-registry serve "$R/registry/config.yml" > "$R/registry/log" 2>&1 < /dev/null &
  groups+=($!)
  for _ in $(seq 200); do
    curl -s -o /dev/null http://127.0.0.1:5000/v2/ && return 0
    sleep 0.05
  done
  echo "the registry did not start: $(cat "$R/registry/log")" >&2
  return 1
}
${steps.join("\n")}
`;
}
