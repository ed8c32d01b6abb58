/**
 * Top frames of a V8 CPU profile (`node --cpu-prof`), by self time, with the
 * share of the whole profile and of the non-idle part:
 *   node dist/bench/profile-top.js FILE.cpuprofile [N]
 * Used for the gateway's profiles in bench/README.md.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export function topFrames(file: string, n = 25): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!)!;
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = node.callFrame;
    if (f.functionName === "(idle)") idle += dt;
    const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, "$1/").replace(/^node:/, "node:")}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const busy = total - idle;
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  const lines = [`total ${(total / 1e6).toFixed(2)} s, idle ${((idle / total) * 100).toFixed(1)}%`, "self%  busy%  frame"];
  for (const [k, v] of rows) lines.push(`${((v / total) * 100).toFixed(1).padStart(5)}  ${((v / busy) * 100).toFixed(1).padStart(5)}  ${k}`);
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(topFrames(process.argv[2]!, Number(process.argv[3] ?? 25)) + "\n");
}
