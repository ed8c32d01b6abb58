import { test } from "node:test";
import assert from "node:assert/strict";
import { place, type PlacementNode } from "../../src/cluster/placement.js";

const nodes = (...spec: [string, string, number][]): PlacementNode[] => spec.map(([name, zone, memoryMiB]) => ({ name, zone, memoryMiB }));
const none = new Map<string, string[]>();

test("replicas spread over zones before they double up in one", () => {
  const n = nodes(["a1", "a", 1000], ["a2", "a", 1000], ["b1", "b", 100]);
  const p = place([{ id: "app", replicas: 2, needMiB: 64 }], n, none).get("app")!;
  assert.deepEqual(p.nodes.sort(), ["a1", "b1"], "the second replica goes to zone b although a2 has more room");
});

test("within a zone, the node with the most free memory budget gets the replica", () => {
  const n = nodes(["x", "z", 500], ["y", "z", 900]);
  assert.deepEqual(place([{ id: "app", replicas: 1, needMiB: 64 }], n, none).get("app")!.nodes, ["y"]);
});

test("a node's budget is never overfilled: what does not fit is placed short, with the reason", () => {
  const n = nodes(["x", "z", 100], ["y", "z", 100]);
  const out = place(
    [
      { id: "big", replicas: 2, needMiB: 80 },
      { id: "small", replicas: 2, needMiB: 30 },
    ],
    n,
    none,
  );
  assert.deepEqual(out.get("big")!.nodes.sort(), ["x", "y"]);
  assert.deepEqual(out.get("small")!.nodes, []);
  assert.match(out.get("small")!.short!, /2 replica\(s\) short: no other live node has 30 MiB/);
});

test("replicas stay where they run while their node lives (no reshuffle when a node joins)", () => {
  const before = place([{ id: "app", replicas: 1, needMiB: 64 }], nodes(["old", "z", 100]), none);
  const after = place([{ id: "app", replicas: 1, needMiB: 64 }], nodes(["old", "z", 100], ["new", "z", 10_000]), new Map([["app", before.get("app")!.nodes]]));
  assert.deepEqual(after.get("app")!.nodes, ["old"]);
});

test("a dead node's replica moves to a live node; scaling down keeps the first ones", () => {
  const n = nodes(["b", "z", 100], ["c", "z", 100]);
  const moved = place([{ id: "app", replicas: 2, needMiB: 10 }], n, new Map([["app", ["a", "b"]]]));
  assert.deepEqual(moved.get("app")!.nodes, ["b", "c"]);
  const down = place([{ id: "app", replicas: 1, needMiB: 10 }], n, new Map([["app", ["c", "b"]]]));
  assert.deepEqual(down.get("app")!.nodes, ["c"]);
});

test('"all" asks for one replica per live node, and says so when a node has no room', () => {
  const n = nodes(["a", "z", 100], ["b", "z", 100], ["c", "z", 10]);
  const p = place([{ id: "app", replicas: "all", needMiB: 50 }], n, none).get("app")!;
  assert.equal(p.wanted, 3);
  assert.deepEqual(p.nodes.sort(), ["a", "b"]);
  assert.match(p.short!, /1 replica\(s\) short/);
});

test("more replicas than nodes: every node gets one, and the shortfall names the node count", () => {
  const p = place([{ id: "app", replicas: 5, needMiB: 1 }], nodes(["a", "z", 100], ["b", "z", 100]), none).get("app")!;
  assert.deepEqual(p.nodes.sort(), ["a", "b"]);
  assert.equal(p.short, "3 replica(s) short: only 2 live node(s)");
});

test("placement is deterministic: the same inputs give the same answer in any order", () => {
  const n = nodes(["a", "z1", 300], ["b", "z2", 300], ["c", "z1", 300], ["d", "z2", 300]);
  const apps = [
    { id: "p", replicas: 2, needMiB: 100 },
    { id: "q", replicas: 3, needMiB: 50 },
    { id: "r", replicas: "all" as const, needMiB: 20 },
  ];
  const one = place(apps, n, none);
  const two = place([...apps].reverse(), [...n].reverse(), none);
  for (const id of ["p", "q", "r"]) assert.deepEqual(one.get(id)!.nodes.sort(), two.get(id)!.nodes.sort());
});
