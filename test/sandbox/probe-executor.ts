/**
 * TEST ONLY: an "executor" build that looks around inside its sandbox and
 * reports on stderr (one JSON line), then exits; see tiers.test.ts. It runs
 * under the same wall as the real executor (SandboxLauncher's `entry` option).
 *
 *   --look PATH...   which of these paths exist
 *   --connect PORT   try a TCP connection to 127.0.0.1:PORT (the test's own listener)
 *   --forbidden      make a system call outside the allow-list (setpriority), then say it survived
 */
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { setPriority } from "node:os";

const argv = process.argv.slice(2);
const report: Record<string, unknown> = { root: readdirSync("/").sort(), uid: process.getuid?.() };

function after(flag: string): string[] {
  const i = argv.indexOf(flag);
  if (i < 0) return [];
  const out: string[] = [];
  for (let j = i + 1; j < argv.length && !argv[j]!.startsWith("--"); j++) out.push(argv[j]!);
  return out;
}

const look = after("--look");
if (look.length > 0) report.exists = Object.fromEntries(look.map((p) => [p, existsSync(p)]));

function done(): void {
  process.stderr.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

if (argv.includes("--forbidden")) {
  setPriority(0, 10);
  report.survived = true;
}

const port = after("--connect")[0];
if (port) {
  const s = connect(Number(port), "127.0.0.1");
  s.on("connect", () => {
    report.connect = "connected";
    s.destroy();
    done();
  });
  s.on("error", (err: NodeJS.ErrnoException) => {
    report.connect = err.code;
    done();
  });
} else done();
