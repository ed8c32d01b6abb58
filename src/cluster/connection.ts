/**
 * The node's connection to the cluster's NATS servers. A node never joins
 * without credentials (user/password or an nkey), so an unauthenticated
 * process on the network cannot read the control log or answer for apps; TLS
 * is used when a CA, certificate or a `tls://` URL is given.
 */
import { readFileSync } from "node:fs";
import { connect, nkeyAuthenticator, usernamePasswordAuthenticator, type NatsConnection } from "@nats-io/transport-node";

/**
 * Whether the connection is up now, and since when: writes and forwarded
 * requests fail at once while it is down (rather than waiting out a
 * timeout), and the scheduler waits after it comes back.
 */
export class Link {
  connected = true;
  since = Date.now();
  private readonly listeners = new Set<(up: boolean, server: string) => void>();

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") this.set(false, String((s as { server?: string }).server ?? ""));
        else if (s.type === "reconnect") this.set(true, String((s as { server?: string }).server ?? ""));
      }
    })().catch(() => undefined);
  }

  private set(up: boolean, server: string): void {
    if (up === this.connected) return;
    this.connected = up;
    if (up) this.since = Date.now();
    for (const l of this.listeners) l(up, server);
  }

  onChange(fn: (up: boolean, server: string) => void): void {
    this.listeners.add(fn);
  }
}

export interface ClusterCredentials {
  user?: string;
  password?: string;
  /** An nkey seed (`SU…`), the user's private key; the server knows only its public key. */
  nkeySeed?: string;
}

export interface ClusterTls {
  /** CA bundle that signed the servers' certificates. */
  caFile?: string;
  /** Client certificate and key, when the servers verify clients. */
  certFile?: string;
  keyFile?: string;
}

export interface ConnectOptions {
  /** `nats://HOST:PORT` or `tls://HOST:PORT`, one or more. */
  servers: string[];
  credentials: ClusterCredentials;
  tls?: ClusterTls;
  /** Shown in the servers' connection list (`uniwasm-<node>`). */
  name: string;
  /** Time to connect the first time, ms. Default 5000. */
  timeoutMs?: number;
}

/** Refused before any network traffic: bad URLs, missing or contradictory credentials. */
export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterConfigError";
  }
}

/** Checks and normalises the `--cluster` list: `nats://` or `tls://` URLs without embedded credentials. */
export function parseServers(list: string): string[] {
  const servers = list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (servers.length === 0) throw new ClusterConfigError("--cluster needs at least one nats://HOST:PORT");
  for (const s of servers) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ClusterConfigError(`--cluster: ${JSON.stringify(s)} is not a URL (expected nats://HOST:PORT)`);
    }
    if (u.protocol !== "nats:" && u.protocol !== "tls:") throw new ClusterConfigError(`--cluster: ${JSON.stringify(s)} must start with nats:// or tls://`);
    if (u.username || u.password) throw new ClusterConfigError(`--cluster: ${u.host} has credentials in the URL; give them with --nats-user/--nats-password-file or --nats-nkey-file instead (URLs show up in process listings)`);
    if (!u.hostname || !u.port) throw new ClusterConfigError(`--cluster: ${JSON.stringify(s)} needs a host and a port`);
  }
  return servers;
}

function authenticatorOf(c: ClusterCredentials) {
  const hasUser = c.user !== undefined && c.user !== "";
  const hasNkey = c.nkeySeed !== undefined && c.nkeySeed !== "";
  if (!hasUser && !hasNkey) {
    throw new ClusterConfigError("refusing to join the cluster without NATS credentials: give --nats-user with --nats-password-file, or --nats-nkey-file (or UNIWASM_NATS_USER/UNIWASM_NATS_PASSWORD, UNIWASM_NATS_NKEY_SEED)");
  }
  if (hasUser && hasNkey) throw new ClusterConfigError("give either a NATS user and password or an nkey, not both");
  if (hasUser) {
    if (!c.password) throw new ClusterConfigError(`NATS user ${c.user} has no password (--nats-password-file or UNIWASM_NATS_PASSWORD)`);
    return usernamePasswordAuthenticator(c.user!, c.password);
  }
  const seed = c.nkeySeed!.trim();
  if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw new ClusterConfigError("the NATS nkey seed is not a user seed (expected 58 characters starting with SU)");
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}

/** Connects (reconnecting forever afterwards: a node keeps serving through NATS outages and catches up). */
export async function connectCluster(opts: ConnectOptions): Promise<NatsConnection> {
  const authenticator = authenticatorOf(opts.credentials);
  const wantTls = opts.tls?.caFile !== undefined || opts.tls?.certFile !== undefined || opts.servers.some((s) => s.startsWith("tls://"));
  if ((opts.tls?.certFile === undefined) !== (opts.tls?.keyFile === undefined)) throw new ClusterConfigError("a NATS client certificate needs its key, and a key its certificate");
  let tls: { ca?: string; cert?: string; key?: string } | undefined;
  if (wantTls) {
    tls = {};
    // Read here so that a missing file is a startup error naming the file.
    const read = (what: string, file: string) => {
      try {
        return readFileSync(file, "utf8");
      } catch (err) {
        throw new ClusterConfigError(`cannot read the NATS TLS ${what} ${file}: ${(err as Error).message}`);
      }
    };
    if (opts.tls?.caFile) tls.ca = read("CA", opts.tls.caFile);
    if (opts.tls?.certFile) tls.cert = read("certificate", opts.tls.certFile);
    if (opts.tls?.keyFile) tls.key = read("key", opts.tls.keyFile);
  }
  try {
    return await connect({
      servers: opts.servers.map((s) => s.replace(/^tls:\/\//, "nats://")),
      name: opts.name,
      authenticator,
      ...(tls ? { tls } : {}),
      timeout: opts.timeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      // An Error (with a stack) per request is a visible share of a forwarded request's CPU.
      noAsyncTraces: true,
    });
  } catch (err) {
    const msg = (err as Error).message;
    if (/authorization|authentication/i.test(msg)) throw new ClusterConfigError(`the NATS servers refused this node's credentials (${msg})`);
    throw new Error(`cannot reach the cluster's NATS servers ${opts.servers.join(", ")}: ${msg}`);
  }
}
