/**
 * Placement: which nodes run a replica of which app. A pure function of the
 * live nodes (zone, memory budget), the apps (replicas wanted, memory per
 * replica) and the current placement, so every scheduler computes the same
 * answer and it can be tested without a cluster.
 *
 * - Stability first: a replica stays where it is while its node lives and the
 *   app still wants it (no reshuffling when a node joins).
 * - A new replica goes to a node without one, in the zone with the fewest
 *   replicas of that app (zone spread), then to the node with the most free
 *   memory budget, then by name (deterministic).
 * - A node's budget is filled by the memory the placed apps need
 *   (`needMiB` each), never past it; an app that finds no room is placed
 *   short, with the reason.
 */

export interface PlacementNode {
  name: string;
  zone: string;
  /** Memory budget placement may fill, MiB. */
  memoryMiB: number;
}

export interface PlacementApp {
  id: string;
  /** Replicas wanted; "all" = one on every live node. */
  replicas: number | "all";
  /** Memory one replica needs, MiB (its memory limit times its warm instances, at least one). */
  needMiB: number;
}

export interface Placement {
  nodes: string[];
  /** Replicas wanted (for "all": the number of live nodes). */
  wanted: number;
  /** Why fewer than `wanted` were placed. */
  short?: string;
}

export function place(apps: readonly PlacementApp[], nodes: readonly PlacementNode[], current: ReadonlyMap<string, readonly string[]>): Map<string, Placement> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const used = new Map(nodes.map((n) => [n.name, 0]));
  const out = new Map<string, Placement>();
  const sorted = [...apps].sort((a, b) => b.needMiB - a.needMiB || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Keep what runs on live nodes, up to what each app wants.
  for (const app of sorted) {
    const wanted = app.replicas === "all" ? nodes.length : app.replicas;
    const keep = (current.get(app.id) ?? []).filter((n) => byName.has(n)).slice(0, wanted);
    for (const n of keep) used.set(n, used.get(n)! + app.needMiB);
    out.set(app.id, { nodes: keep, wanted });
  }

  // Then add replicas where they are missing.
  for (const app of sorted) {
    const p = out.get(app.id)!;
    while (p.nodes.length < p.wanted) {
      const zoneCount = new Map<string, number>();
      for (const n of p.nodes) {
        const z = byName.get(n)!.zone;
        zoneCount.set(z, (zoneCount.get(z) ?? 0) + 1);
      }
      let best: PlacementNode | undefined;
      let bestKey: [number, number, string] | undefined;
      for (const n of nodes) {
        if (p.nodes.includes(n.name)) continue;
        const free = n.memoryMiB - used.get(n.name)!;
        if (free < app.needMiB) continue;
        const key: [number, number, string] = [zoneCount.get(n.zone) ?? 0, -free, n.name];
        if (!bestKey || key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
          best = n;
          bestKey = key;
        }
      }
      if (!best) {
        const missing = p.wanted - p.nodes.length;
        p.short = nodes.every((n) => p.nodes.includes(n.name))
          ? `${missing} replica(s) short: only ${nodes.length} live node(s)`
          : `${missing} replica(s) short: no other live node has ${app.needMiB} MiB of its memory budget free`;
        break;
      }
      p.nodes.push(best.name);
      used.set(best.name, used.get(best.name)! + app.needMiB);
    }
  }
  return out;
}
