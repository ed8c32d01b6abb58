/**
 * deploy/kubernetes/ checked without a cluster: every manifest parses (YAML),
 * has the shape its kind needs, and the pieces fit each other and the code
 * (selectors and labels, named ports, volumes, secrets, the NATS servers the
 * nodes dial, and `uniwasm serve` flags that exist).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { buildProgram } from "../../src/cli/main.js";
import { parseServers } from "../../src/cluster/connection.js";

const DIR = join(process.cwd(), "deploy", "kubernetes");

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = any;

const KINDS: Record<string, string> = {
  ConfigMap: "v1",
  Service: "v1",
  Secret: "v1",
  StatefulSet: "apps/v1",
  Deployment: "apps/v1",
  NetworkPolicy: "networking.k8s.io/v1",
};
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function load(): { file: string; doc: Obj }[] {
  const out: { file: string; doc: Obj }[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(DIR, file), "utf8"))) {
      assert.deepEqual(d.errors.map((e) => e.message), [], `${file}: YAML errors`);
      if (d.contents === null) continue;
      out.push({ file, doc: d.toJS() });
    }
  }
  return out;
}

const docs = load();
const ofKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const workloads = () => [...ofKind("Deployment"), ...ofKind("StatefulSet")];
const named = (kind: string, name: string) => ofKind(kind).find((d) => d.metadata.name === name);

test("every manifest is YAML with a known kind, its apiVersion and a valid name", () => {
  assert.ok(docs.length >= 6, `${docs.length} documents`);
  for (const { file, doc } of docs) {
    assert.ok(doc.kind in KINDS, `${file}: unknown kind ${doc.kind}`);
    assert.equal(doc.apiVersion, KINDS[doc.kind], `${file}: ${doc.kind} ${doc.metadata?.name}`);
    assert.match(doc.metadata?.name ?? "", DNS1123, `${file}: metadata.name`);
  }
  assert.ok(named("StatefulSet", "nats"), "a NATS StatefulSet");
  assert.ok(named("Deployment", "uniwasm"), "a uniwasm Deployment");
});

test("workloads: selectors match their pods, every container has an image, resources, probes on its own ports, mounted volumes, and runs as non-root", () => {
  for (const w of workloads()) {
    const where = `${w.kind}/${w.metadata.name}`;
    const labels = w.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) assert.equal(labels[k], v, `${where}: selector ${k}`);
    assert.equal(w.spec.template.spec.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
    const volumes = new Set([...(w.spec.template.spec.volumes ?? []).map((v: Obj) => v.name), ...(w.spec.volumeClaimTemplates ?? []).map((v: Obj) => v.metadata.name)]);
    for (const c of w.spec.template.spec.containers) {
      const cw = `${where} container ${c.name}`;
      assert.match(c.image, /^[a-z0-9./-]+:[\w.-]+$/, `${cw}: image with a tag`);
      for (const part of ["requests", "limits"]) for (const r of ["cpu", "memory"]) assert.ok(c.resources?.[part]?.[r], `${cw}: resources.${part}.${r}`);
      const ports = new Map((c.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
      for (const probe of ["livenessProbe", "readinessProbe"]) {
        const p = c[probe]?.httpGet;
        assert.ok(p, `${cw}: ${probe} over HTTP`);
        assert.ok(typeof p.port === "number" || ports.has(p.port), `${cw}: ${probe} port ${p.port} is one of its ports`);
      }
      for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${cw}: volume ${m.name} is declared`);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) assert.ok(ref.name && ref.key, `${cw}: env ${e.name} names a secret and key`);
      }
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${cw}: no privilege escalation`);
    }
  }
  const nats = named("StatefulSet", "nats");
  const headless = named("Service", nats.spec.serviceName);
  assert.equal(headless?.spec.clusterIP, "None", "the StatefulSet's serviceName is a headless Service");
  assert.ok(nats.spec.volumeClaimTemplates?.length, "JetStream on persistent volumes");
});

test("services select pods that exist and target ports those pods name", () => {
  for (const s of ofKind("Service")) {
    const pods = workloads().filter((w) => Object.entries(s.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
    assert.ok(pods.length > 0, `Service/${s.metadata.name} selects no workload`);
    const portNames = new Set(pods.flatMap((w) => w.spec.template.spec.containers.flatMap((c: Obj) => (c.ports ?? []).map((p: Obj) => p.name))));
    for (const p of s.spec.ports) assert.ok(typeof p.targetPort === "number" || portNames.has(p.targetPort), `Service/${s.metadata.name}: targetPort ${p.targetPort}`);
  }
  const gw = named("Service", "uniwasm-gateway");
  assert.ok(gw, "a Service for the gateway");
  assert.equal(gw.spec.ports[0].targetPort, "gateway");
});

test("the uniwasm Deployment runs `uniwasm serve` with flags that exist, probes /healthz on the API port, and can join the NATS of nats.yaml", () => {
  const d = named("Deployment", "uniwasm");
  const c = d.spec.template.spec.containers[0];
  const serve = buildProgram().commands.find((x) => x.name() === "serve")!;
  const known = new Set(serve.options.map((o) => o.long));
  assert.equal(c.args[0], "serve");
  const flags = new Map<string, string>();
  for (const a of c.args.slice(1)) {
    const m = /^(--[a-z-]+)(?:=(.*))?$/.exec(a);
    assert.ok(m, `argument ${a} is --flag or --flag=value`);
    assert.ok(known.has(m[1]), `uniwasm serve has no ${m[1]}`);
    flags.set(m[1]!, m[2] ?? "");
  }
  const portOf = (name: string) => c.ports.find((p: Obj) => p.name === name).containerPort;
  assert.equal(Number(flags.get("--port")), portOf("api"));
  assert.equal(Number(flags.get("--gateway-port")), portOf("gateway"));
  assert.equal(flags.get("--host"), "0.0.0.0", "reachable by the Services");
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    assert.equal(c[probe].httpGet.path, "/healthz", probe);
    assert.equal(c[probe].httpGet.port, "api", probe);
  }

  // The servers it dials are the StatefulSet's pods on their client port.
  const nats = named("StatefulSet", "nats");
  const servers = parseServers(flags.get("--cluster")!);
  const expected = Array.from({ length: nats.spec.replicas }, (_, i) => `nats://${nats.metadata.name}-${i}.${nats.spec.serviceName}:4222`);
  assert.deepEqual(servers, expected);
  assert.ok([1, 3, 5].includes(Number(flags.get("--js-replicas"))) && Number(flags.get("--js-replicas")) <= nats.spec.replicas, "--js-replicas fits the NATS cluster");

  // Credentials come from the Secret the NATS servers check (a node never joins without them).
  const env = new Map(c.env.map((e: Obj) => [e.name, e]));
  assert.ok((env.get("UNIWASM_NATS_USER") as Obj)?.value, "UNIWASM_NATS_USER");
  const pw = (env.get("UNIWASM_NATS_PASSWORD") as Obj)?.valueFrom?.secretKeyRef;
  const natsPw = nats.spec.template.spec.containers[0].env.find((e: Obj) => e.name === "NATS_PASSWORD").valueFrom.secretKeyRef;
  assert.deepEqual(pw, natsPw, "the node's password is the servers' client password");
  assert.ok(flags.get("--node-name")!.includes("$(POD_NAME)") && env.has("POD_NAME"), "each pod is its own node");
});

test("the NATS configuration turns JetStream on, clusters the StatefulSet's pods, and requires the password", () => {
  const conf: string = named("ConfigMap", "nats-config").data["nats.conf"];
  const nats = named("StatefulSet", "nats");
  assert.match(conf, /jetstream\s*\{[^}]*store_dir:\s*\/data\/jetstream/);
  const dataMount = nats.spec.template.spec.containers[0].volumeMounts.find((m: Obj) => m.mountPath === "/data");
  assert.ok(dataMount, "the JetStream directory is on the persistent volume");
  for (let i = 0; i < nats.spec.replicas; i++) assert.ok(conf.includes(`nats-route://nats-${i}.nats:6222`), `route to nats-${i}`);
  assert.match(conf, /authorization\s*\{\s*users:\s*\[\s*\{\s*user:\s*uniwasm,\s*password:\s*\$NATS_PASSWORD\s*\}/);
  assert.ok(nats.spec.template.spec.containers[0].args.join(" ").includes("/etc/nats/nats.conf"));
});

test("docs/cluster.md shows how to create the secret both manifests use", () => {
  const doc = readFileSync(join(process.cwd(), "docs", "cluster.md"), "utf8");
  assert.match(doc, /kubectl create secret generic uniwasm-nats --from-literal=password=/);
  for (const f of readdirSync(DIR)) assert.ok(doc.includes(`deploy/kubernetes/${f}`), `docs/cluster.md mentions ${f}`);
});
