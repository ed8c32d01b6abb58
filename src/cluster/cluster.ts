/**
 * A node's membership in a cluster: one NATS connection, and on it the
 * control log (replicated control state), membership heartbeats, the
 * scheduler lease, placements and replica reports (KV buckets), request
 * routing between nodes and quota gossip. `joinCluster` connects and catches
 * up with the control state (before the node serves its API); `start` then
 * announces the node and begins placing and running replicas.
 */
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AppRecord, LogRepo, NodeStore } from "../store/index.js";
import { ControlError } from "../manager/index.js";
import { connectCluster, ClusterConfigError, Link, type ClusterCredentials, type ClusterTls } from "./connection.js";
import { JetStreamControlState } from "./control-log.js";
import { openBucket, WatchedBucket } from "./kv.js";
import { Membership, NODES_BUCKET, type MemberInfo } from "./membership.js";
import { Election, LEADER_BUCKET } from "./election.js";
import { ClusterScheduler, PLACEMENTS_BUCKET, REPLICAS_BUCKET, type PlacementRecord, type ReplicaStatus } from "./scheduler.js";
import { ReplicaAgent, type LocalRuntime } from "./agent.js";
import { Router, type ForwardRequest, type ForwardResult, type ServiceAnswer, type ServiceCallRequest } from "./routing.js";
import { QuotaGossip, type TenantMeters } from "./quota.js";
import { JetStreamKv } from "./kv-store.js";
import { ClusterLogs, type AppLogs } from "./logs.js";
import type { ServerResponse } from "node:http";

export interface ClusterOptions {
  /** NATS URLs (`nats://HOST:PORT` or `tls://HOST:PORT`). */
  servers: string[];
  credentials: ClusterCredentials;
  tls?: ClusterTls;
  /** This node's name in the cluster (unique; lower-case letters, digits, dashes). */
  nodeName: string;
  /** Failure domain for zone spread. Default "default". */
  zone?: string;
  /** JetStream replicas of the cluster's stream, buckets and object store (3 on a 3-server NATS cluster). Default 1. */
  jsReplicas?: number;
  /** Heartbeat period, ms. Default 1000. */
  heartbeatMs?: number;
  /** A node not heard from for this long is dead and loses its replicas, ms. Default 4 heartbeats. */
  deadAfterMs?: number;
  /** Longest a deploy waits for its replicas to report, ms. Default 60 000. */
  rolloutTimeoutMs?: number;
  /** How often the scheduling node deletes blobs no image records, and how old they must be, ms. Default 60 000 and 10 minutes. */
  blobSweepMs?: number;
  blobGraceMs?: number;
}

/** What the cluster needs of the node it runs in. */
export interface LocalNode {
  runtime: LocalRuntime;
  meters: TenantMeters;
  /** Unix socket of this node's gateway for forwarded requests. */
  socketPath: string;
  apiUrl: string;
  gatewayUrl: string;
  memoryMiB: number;
  reservedMiB: () => number;
  version: string;
  onEvent?: (appId: string, line: string) => void;
  /** Serves a service call another node sent to an app running here. */
  onService?: (call: ServiceCallRequest) => Promise<ServiceAnswer>;
  /** This node's log lines (other nodes read and follow them through the cluster). */
  logs: LogRepo;
}

export interface ClusterLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Connects, opens the replicated control state and applies it up to date. */
export async function joinCluster(store: NodeStore, opts: ClusterOptions, log: ClusterLog): Promise<Cluster> {
  if (!NAME_RE.test(opts.nodeName)) throw new ClusterConfigError(`--node-name ${JSON.stringify(opts.nodeName)}: use 1-63 lower-case letters, digits and inner dashes`);
  const zone = opts.zone ?? "default";
  if (!NAME_RE.test(zone)) throw new ClusterConfigError(`--zone ${JSON.stringify(zone)}: use 1-63 lower-case letters, digits and inner dashes`);
  const jsReplicas = opts.jsReplicas ?? 1;
  if (![1, 3, 5].includes(jsReplicas)) throw new ClusterConfigError("JetStream replicas must be 1, 3 or 5");
  const nc = await connectCluster({ servers: opts.servers, credentials: opts.credentials, ...(opts.tls ? { tls: opts.tls } : {}), name: `uniwasm-${opts.nodeName}` });
  const link = new Link(nc);
  try {
    const state = await JetStreamControlState.open(store, nc, { replicas: jsReplicas, link, onError: (err) => log.warn({ err }, "control log") });
    const kv = await JetStreamKv.open(nc, jsReplicas);
    return new Cluster(nc, link, state, kv, { ...opts, zone, jsReplicas }, log);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

export class Cluster {
  readonly instance = randomBytes(6).toString("hex");
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  private local: LocalNode | undefined;
  private membership: Membership | undefined;
  private election: Election | undefined;
  private scheduler: ClusterScheduler | undefined;
  private agent: ReplicaAgent | undefined;
  private router: Router | undefined;
  private quota: QuotaGossip | undefined;
  private logsGossip: ClusterLogs | undefined;
  private placements: WatchedBucket<PlacementRecord> | undefined;
  private replicas: WatchedBucket<ReplicaStatus> | undefined;
  private startedAt = Date.now();

  constructor(
    readonly nc: NatsConnection,
    private readonly link: Link,
    readonly state: JetStreamControlState,
    /** uniwasm:kv's data, shared by every node. */
    readonly kv: JetStreamKv,
    readonly opts: ClusterOptions & { zone: string; jsReplicas: number },
    private readonly log: ClusterLog,
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.deadAfterMs = opts.deadAfterMs ?? 4 * this.heartbeatMs;
    link.onChange((up, server) => {
      if (up) log.info({ server }, "cluster: NATS connection back; catching up");
      else log.warn({ server }, "cluster: NATS connection lost; serving what runs here, reconnecting");
    });
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  /** Announces this node, then takes part in scheduling, runs its replicas and answers forwarded requests. */
  async start(local: LocalNode): Promise<void> {
    this.local = local;
    this.startedAt = Date.now();
    const replicas = this.opts.jsReplicas;
    const onError = (err: Error) => this.log.warn({ err }, "cluster");
    const [nodesKv, leaderKv, placementsKv, replicasKv] = await Promise.all([
      openBucket(this.nc, NODES_BUCKET, { replicas, ttlMs: Math.max(60_000, 10 * this.deadAfterMs) }),
      openBucket(this.nc, LEADER_BUCKET, { replicas, ttlMs: this.deadAfterMs }),
      openBucket(this.nc, PLACEMENTS_BUCKET, { replicas }),
      openBucket(this.nc, REPLICAS_BUCKET, { replicas }),
    ]);
    this.placements = new WatchedBucket<PlacementRecord>(placementsKv);
    this.replicas = new WatchedBucket<ReplicaStatus>(replicasKv);
    await Promise.all([this.placements.start(), this.replicas.start()]);
    await Promise.all([this.placements.ready, this.replicas.ready]);

    this.membership = new Membership(nodesKv, () => this.announcement(), { heartbeatMs: this.heartbeatMs, deadAfterMs: this.deadAfterMs, onError });
    await this.membership.join();

    this.router = new Router(this.nc, { socketPath: local.socketPath, link: this.link, onError, ...(local.onService ? { onService: local.onService } : {}) });
    this.quota = new QuotaGossip(this.nc, this.instance, local.meters);
    this.quota.start();
    const membership = this.membership;
    this.logsGossip = new ClusterLogs(this.nc, this.opts.nodeName, local.logs, () => membership.live().length, this.link);
    this.logsGossip.start();

    this.scheduler = new ClusterScheduler({
      placements: this.placements,
      replicas: this.replicas,
      membership: this.membership,
      state: this.state,
      deadAfterMs: this.deadAfterMs,
      heartbeatMs: this.heartbeatMs,
      connectedSince: () => this.link.since,
      onError,
    });
    const scheduler = this.scheduler;
    // A node joining or leaving changes placements at once; heartbeats alone only refresh liveness (the tick checks it).
    const known = new Set<string>();
    this.membership.members.onChange((name, entry) => {
      const had = known.has(name);
      if (entry) known.add(name);
      else known.delete(name);
      if (had !== (entry !== undefined)) scheduler.poke();
    });
    this.state.onChange((c) => {
      if (c.command.op.startsWith("app.") || c.command.op === "tenant.delete") scheduler.poke();
    });
    const tick = setInterval(() => scheduler.poke(), this.heartbeatMs);
    tick.unref();
    // Blobs of deleted images leave the object store too; the scheduling node sweeps.
    const sweep = setInterval(() => {
      if (!scheduler.isLeader) return;
      this.state.sweepBlobs(this.opts.blobGraceMs ?? 600_000).then(
        (gone) => gone.length > 0 && this.log.info({ blobs: gone.length }, "cluster: blobs no image records were deleted"),
        (err: unknown) => onError(err as Error),
      );
    }, this.opts.blobSweepMs ?? 60_000);
    sweep.unref();
    this.election = new Election(leaderKv, { name: this.opts.nodeName, instance: this.instance }, {
      intervalMs: this.heartbeatMs,
      onChange: (leader) => {
        this.log.info({ node: this.opts.nodeName }, leader ? "cluster: this node schedules placements now" : "cluster: this node no longer schedules placements");
        scheduler.setLeader(leader);
      },
    });
    this.election.start();
    this.stopTick = () => {
      clearInterval(tick);
      clearInterval(sweep);
    };

    this.agent = new ReplicaAgent({
      node: this.opts.nodeName,
      placements: this.placements,
      replicas: replicasKv,
      state: this.state,
      runtime: local.runtime,
      sink: this.router,
      ...(local.onEvent ? { onEvent: local.onEvent } : {}),
      onError,
    });
    this.agent.start(Math.max(1000, 2 * this.heartbeatMs));
    this.log.info({ node: this.opts.nodeName, zone: this.opts.zone, servers: this.opts.servers }, "cluster: joined");
  }

  private stopTick: () => void = () => undefined;

  private announcement(): MemberInfo {
    const l = this.local!;
    return {
      name: this.opts.nodeName,
      zone: this.opts.zone,
      instance: this.instance,
      memoryMiB: l.memoryMiB,
      reservedMiB: l.reservedMiB(),
      apiUrl: l.apiUrl,
      gatewayUrl: l.gatewayUrl,
      version: l.version,
      startedAt: this.startedAt,
      at: Date.now(),
    };
  }

  /** Forwards a gateway request for an app that has no replica here. */
  forward(f: ForwardRequest, res: ServerResponse): Promise<ForwardResult> {
    if (!this.router) return Promise.resolve({ error: { code: "app_unavailable", message: "This node has not joined its cluster yet; retry shortly.", retryAfter: 1 } });
    return this.router.forward(f, res);
  }

  /** An app's logs from every node (the API's reads and follows). */
  get logs(): AppLogs | undefined {
    return this.logsGossip;
  }

  /** A service call to an app with no replica here, made on a node that runs one. */
  callService(call: ServiceCallRequest): Promise<ServiceAnswer> {
    if (!this.router) return Promise.resolve({ status: 503, body: new TextEncoder().encode(JSON.stringify({ error: { message: "this node has not joined its cluster yet" } })) });
    return this.router.callService(call);
  }

  /** A run finished here: counted toward its tenant's cluster-wide rate and CPU. */
  ran(tenantId: string, request: boolean, cpuMs: number): void {
    this.quota?.ran(tenantId, request, cpuMs);
  }

  /** Replica reports of an app, one per node that holds it. */
  replicasOf(appId: string): ReplicaStatus[] {
    const p = this.placements?.get(appId)?.value;
    if (!p || !this.replicas) return [];
    return p.nodes.map((n) => this.replicas!.get(`${appId}.${n}`)?.value ?? { app: appId, node: n, revision: 0, state: "starting" as const, at: 0 });
  }

  placementOf(appId: string): PlacementRecord | undefined {
    return this.placements?.get(appId)?.value;
  }

  /**
   * Waits until every node the app is placed on has reported on this
   * revision; resolves when at least one runs it (or, at the timeout, when
   * the deploy should be reported as still starting), and throws when no node
   * can place or start it (the deployer then restores the previous record).
   */
  awaitRollout(app: AppRecord): Promise<void> {
    const placements = this.placements!;
    const replicas = this.replicas!;
    return new Promise((resolve, reject) => {
      const offs: (() => void)[] = [];
      const done = (err?: Error) => {
        clearTimeout(timer);
        for (const off of offs) off();
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        const p = placements.get(app.id)?.value;
        if (!p) return;
        if (p.nodes.length === 0) {
          if (p.short) done(new ControlError("node_overloaded", `No node of the cluster can run app ${app.name}: ${p.short}.`));
          return;
        }
        const reports = p.nodes.map((n) => replicas.get(`${app.id}.${n}`)?.value).filter((r): r is ReplicaStatus => r !== undefined && r.revision === app.revision);
        if (reports.length < p.nodes.length || reports.some((r) => r.state === "starting")) return;
        if (reports.some((r) => r.state === "ready")) return done();
        done(new ControlError("invalid_module", `The app failed to start: ${reports.map((r) => `on ${r.node}: ${r.message ?? "failed"}`).join("; ")}`));
      };
      const timer = setTimeout(() => done(), this.opts.rolloutTimeoutMs ?? 60_000);
      offs.push(placements.onChange(check), replicas.onChange(check));
      check();
    });
  }

  /** For `GET /v1/cluster` and `/v1/node`. */
  info() {
    const now = Date.now();
    return {
      node: this.opts.nodeName,
      zone: this.opts.zone,
      connected: this.link.connected,
      scheduler: this.scheduler?.isLeader ?? false,
      controlLogSeq: this.state.appliedSeq,
      placements: [...(this.placements?.entries.values() ?? [])].map((e) => e.value),
      members: (this.membership?.all() ?? []).map((e) => ({
        name: e.value.name,
        zone: e.value.zone,
        live: now - e.seenAt <= this.deadAfterMs,
        lastHeartbeatMsAgo: now - e.seenAt,
        memoryMiB: e.value.memoryMiB,
        reservedMiB: e.value.reservedMiB,
        gatewayUrl: e.value.gatewayUrl,
        apiUrl: e.value.apiUrl,
        version: e.value.version,
      })),
    };
  }

  /**
   * Leaves: stops answering forwarded requests, hands the lease and this
   * node's membership back (its replicas are re-placed at once), stops its
   * replicas' agent. The node closes its own instances afterwards.
   */
  async close(): Promise<void> {
    this.agent?.stop();
    this.router?.close();
    this.stopTick();
    this.quota?.stop();
    this.logsGossip?.stop();
    await this.election?.resign();
    await this.membership?.leave();
    this.placements?.stop();
    this.replicas?.stop();
    await this.state.close();
    await this.nc.close().catch(() => undefined);
  }

  /** Stops everything without telling the cluster (tests: a node that dies). */
  async abandon(): Promise<void> {
    this.agent?.stop();
    this.router?.close();
    this.stopTick();
    this.quota?.stop();
    this.logsGossip?.stop();
    this.election?.stop();
    this.membership?.stop();
    this.placements?.stop();
    this.replicas?.stop();
    await this.state.close();
    await this.nc.close().catch(() => undefined);
  }
}
