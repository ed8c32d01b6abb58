/**
 * The checked HTTP client behind uniwasm:http. A guest reaches exactly the
 * destinations its app's `allowed_outbound_hosts` lists, and never this
 * machine or its private networks by a side door:
 *
 * - allow-list entries are `scheme://host[:port]` as Spin writes them: a
 *   host may be `*` (any) or `*.example.com` (its subdomains), a port `*`;
 *   without a port, the scheme's default (80, 443) is the only one allowed;
 * - URLs are parsed by the WHATWG parser, so decimal, octal and hex IPv4
 *   spellings (`http://2130706433/`, `http://0177.0.0.1/`) become the
 *   address they mean before they are checked;
 * - a loopback, private, link-local, CGNAT, multicast or otherwise special
 *   address is refused unless an entry names that address literally (or
 *   `localhost`, for loopback): a wildcard or a DNS name never reaches one.
 *   Names are resolved once, checked, and connected to as resolved (no
 *   rebinding between check and connect);
 * - every redirect is followed by the client and checked again, at most
 *   `maxRedirects` times; credentials are dropped when the origin changes;
 * - request and response bodies are capped, the whole exchange has a timeout.
 *
 * Refusals by policy are ExtensionDenied(EACCES) (the guest's errno, counted
 * as a denied call); network failures are errnos too, never host faults.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import type { Agent } from "undici";
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import { ExtensionDenied } from "../kernel/extensions.js";
import type { OutboundRequest, OutboundResponse } from "../kernel/ext/http.js";

export interface OutboundLimits {
  /** Largest request body, bytes. Default 1 MiB. */
  maxRequestBytes: number;
  /** Largest response body, bytes; past it the request fails with EFBIG. Default 4 MiB. */
  maxResponseBytes: number;
  /** The whole exchange, redirects included, ms. Default 10 000. */
  timeoutMs: number;
  /** Redirects followed (each checked again). Default 5. */
  maxRedirects: number;
}

export const DEFAULT_OUTBOUND_LIMITS: Readonly<OutboundLimits> = Object.freeze({ maxRequestBytes: 1024 * 1024, maxResponseBytes: 4 * 1024 * 1024, timeoutMs: 10_000, maxRedirects: 5 });

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

interface AllowEntry {
  scheme: string; // "http", "https" or "*"
  host: string; // lower-case; "*", "*.example.com", a name, an IPv4 literal or a bracket-less IPv6 literal
  port: number | "*" | undefined;
  /** The host is an IP literal or "localhost": it may name a special address explicitly. */
  literal: boolean;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** Parses `allowed_outbound_hosts`; throws naming a bad entry (the manifest checks these first). */
export function parseAllowList(entries: readonly string[]): AllowEntry[] {
  return entries.map((e) => {
    const m = /^([a-z][a-z0-9+.-]*|\*):\/\/(\[[0-9a-fA-F:.]+\]|[^/:]+)(?::(\d+|\*))?\/?$/.exec(e.trim());
    if (!m) throw new Error(`allowed_outbound_hosts: ${JSON.stringify(e)} is not scheme://host[:port]`);
    let host = m[2]!.toLowerCase();
    if (host.startsWith("[")) host = host.slice(1, -1);
    if (isIP(host) === 4) host = canonicalIpv4(host);
    return { scheme: m[1]!, host, port: m[3] === undefined ? undefined : m[3] === "*" ? "*" : Number(m[3]), literal: isIP(host) !== 0 || host === "localhost" };
  });
}

function canonicalIpv4(h: string): string {
  return new URL(`http://${h}/`).hostname;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

function allowedBy(list: readonly AllowEntry[], scheme: string, host: string, port: number): AllowEntry | undefined {
  return list.find((e) => (e.scheme === "*" || e.scheme === scheme) && hostMatches(e.host, host) && (e.port === "*" || (e.port ?? DEFAULT_PORTS[scheme]) === port));
}

/** Addresses a guest may reach only when an allow-list entry names them literally. */
const SPECIAL = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.88.99.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24],
  ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) SPECIAL.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["fec0::", 10], ["ff00::", 8], ["100::", 64], ["2001:db8::", 32]] as const) SPECIAL.addSubnet(net, bits, "ipv6");

/** The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), to check it as IPv4. */
function embeddedIpv4(v6: string): string | undefined {
  const m = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(v6);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(v6);
  if (hex) {
    const a = parseInt(hex[1]!, 16);
    const b = parseInt(hex[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  const six = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4}):/i.exec(v6);
  if (six) {
    const a = parseInt(six[1]!, 16);
    const b = parseInt(six[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return undefined;
}

/** Whether an address is loopback, private, link-local or otherwise not a public destination. */
export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return SPECIAL.check(address, "ipv4");
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    return (v4 !== undefined && SPECIAL.check(v4, "ipv4")) || SPECIAL.check(address, "ipv6");
  }
  return true; // not an address at all: refuse
}

const isLoopback = (a: string): boolean => a === "::1" || (isIP(a) === 4 && a.startsWith("127.")) || embeddedIpv4(a)?.startsWith("127.") === true;

/** Whether the allow-list names `address` literally (or `localhost` for a loopback address). */
function namedLiterally(list: readonly AllowEntry[], address: string): boolean {
  return list.some((e) => e.literal && (e.host === address || (e.host === "localhost" && isLoopback(address))));
}

/** `privateNetworks` as a BlockList ("any": undefined); throws naming an entry that is not an address or CIDR network. */
export function privateNetworkList(networks: "any" | readonly string[]): BlockList | undefined {
  if (networks === "any") return undefined;
  const list = new BlockList();
  for (const n of networks) {
    const [address, bits, extra] = n.trim().split("/");
    const family = isIP(address ?? "");
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new Error(`${JSON.stringify(n)} is not an IP address or CIDR network (e.g. 127.0.0.1, 10.1.0.0/16, fd00::/8)`);
    }
    list.addSubnet(address!, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

const denied = (message: string): ExtensionDenied => new ExtensionDenied(Errno.ACCES, message);

const HOP_BY_HOP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "content-length", "proxy-authorization", "proxy-connection"]);
const CREDENTIALS = new Set(["authorization", "cookie"]);

/** undici (and Node's net) errors -> errnos: network failures are the guest's to handle. */
function networkErrno(err: unknown): WasiError {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof WasiError) return e;
    const code = (e as { code?: string }).code;
    switch (code) {
      case "ECONNREFUSED": return new WasiError(Errno.CONNREFUSED, "connection refused");
      case "ECONNRESET": case "UND_ERR_SOCKET": return new WasiError(Errno.CONNRESET, "connection reset");
      case "ENOTFOUND": case "EAI_AGAIN": case "EAI_NONAME": return new WasiError(Errno.HOSTUNREACH, "the host name does not resolve");
      case "EHOSTUNREACH": case "ENETUNREACH": return new WasiError(Errno.HOSTUNREACH, "host unreachable");
      case "ETIMEDOUT": case "UND_ERR_CONNECT_TIMEOUT": case "UND_ERR_HEADERS_TIMEOUT": case "UND_ERR_BODY_TIMEOUT": case "ABORT_ERR":
        return new WasiError(Errno.TIMEDOUT, "timed out");
    }
    if ((e as Error).name === "TimeoutError" || (e as Error).name === "AbortError") return new WasiError(Errno.TIMEDOUT, "timed out");
    if (typeof code === "string" && /CERT|SSL|TLS/.test(code)) return new WasiError(Errno.ACCES, `TLS: ${(e as Error).message}`);
    e = (e as { cause?: unknown }).cause;
  }
  return new WasiError(Errno.IO, `request failed: ${(err as Error)?.message ?? String(err)}`);
}

type Undici = typeof import("undici");
let undici: Promise<Undici> | undefined;

/**
 * Loads undici on first use, without letting it become Node's global
 * dispatcher: on import it installs its Agent under the symbol that Node's
 * own (older, bundled) undici reads when none is there yet, and Node's
 * global fetch then fails on uploads (UND_ERR_INVALID_ARG). A data: fetch
 * first makes Node's fetch install its own. This client passes its agents
 * explicitly, so it needs no global one.
 */
function loadUndici(): Promise<Undici> {
  return (undici ??= fetch("data:,").then(
    () => import("undici"),
    () => import("undici"),
  ));
}

export interface OutboundHttpOptions {
  limits?: Partial<OutboundLimits>;
  /**
   * Which loopback, private or link-local addresses an allow-list may name literally. "any" (the
   * default, for the command line: the user's own machine) lets a literal entry reach any of them;
   * a node passes the networks its admin opened (`uniwasm serve --outbound-private`, none by
   * default), because there the allow-list is written by tenants, and a tenant must not reach the
   * node's loopback services, the cloud's metadata address or the LAN by naming them.
   */
  privateNetworks?: "any" | readonly string[];
  /** How names resolve (tests inject one); default the system resolver. */
  resolve?: Resolver;
}

/** One client per node (or command line). Each request gets its own connection agent, whose resolver checks every address against that app's list. */
export class OutboundHttp {
  /** Loads the HTTP client now rather than at the first request (its ~100 ms of module loading then lands on nobody's request). */
  static warm(): Promise<void> {
    return loadUndici().then(() => undefined);
  }

  readonly limits: OutboundLimits;
  private readonly resolve: Resolver;
  private readonly privateNetworks: BlockList | undefined;

  /** Throws when a `privateNetworks` entry is not an address or CIDR network. */
  constructor(opts: OutboundHttpOptions = {}) {
    this.limits = { ...DEFAULT_OUTBOUND_LIMITS, ...(opts.limits ?? {}) };
    this.resolve = opts.resolve ?? ((h) => dnsLookup(h, { all: true, verbatim: true }));
    this.privateNetworks = privateNetworkList(opts.privateNetworks ?? "any");
  }

  /** A special address is reachable when the app's list names it literally and the operator opened its network. */
  private specialAllowed(list: readonly AllowEntry[], address: string): boolean {
    if (!namedLiterally(list, address)) return false;
    if (!this.privateNetworks) return true;
    const family = isIP(address);
    const v4 = family === 6 ? embeddedIpv4(address) : undefined;
    return v4 !== undefined ? this.privateNetworks.check(v4, "ipv4") : this.privateNetworks.check(address, family === 4 ? "ipv4" : "ipv6");
  }

  private specialRefusal(list: readonly AllowEntry[], what: string, address: string): ExtensionDenied {
    return namedLiterally(list, address)
      ? denied(`${what} ${address}, a loopback, private or link-local address in a network this node does not open to apps (its operator opens networks with uniwasm serve --outbound-private)`)
      : denied(`${what} ${address}, a loopback, private or link-local address; allowed only when listed literally in allowed_outbound_hosts`);
  }

  /** Checks a URL against the list; returns it parsed. Throws ExtensionDenied / WasiError(EINVAL). */
  check(list: readonly AllowEntry[], raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new WasiError(Errno.INVAL, `${JSON.stringify(raw.slice(0, 200))} is not a URL`);
    }
    const scheme = url.protocol.slice(0, -1);
    if (scheme !== "http" && scheme !== "https") throw new WasiError(Errno.INVAL, `${scheme}: only http and https URLs`);
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port ? Number(url.port) : DEFAULT_PORTS[scheme]!;
    if (!allowedBy(list, scheme, host, port)) throw denied(`${scheme}://${url.host} is not in allowed_outbound_hosts`);
    if (isIP(host) && isSpecialAddress(host) && !this.specialAllowed(list, host)) throw this.specialRefusal(list, "the URL names", host);
    return url;
  }

  /** An agent whose every connection resolves the name once and checks each address it gets. */
  private agent(u: Undici, list: readonly AllowEntry[], timeoutMs: number): Agent {
    const resolve = this.resolve;
    return new u.Agent({
      connect: {
        timeout: timeoutMs,
        lookup: (hostname: string, options: { all?: boolean }, callback: (err: Error | null, address?: unknown, family?: number) => void) => {
          resolve(hostname).then(
            (addrs) => {
              const bad = addrs.find((a) => isSpecialAddress(a.address) && !this.specialAllowed(list, a.address));
              if (bad) return callback(this.specialRefusal(list, `${hostname} resolves to`, bad.address));
              if (addrs.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }));
              if (options.all) callback(null, addrs);
              else callback(null, addrs[0]!.address, addrs[0]!.family);
            },
            (err) => callback(err as Error),
          );
        },
      } as never,
    });
  }

  /** Sends one request for a guest whose app allows `allowed`; follows and re-checks redirects. */
  async request(allowed: readonly string[], req: OutboundRequest): Promise<OutboundResponse> {
    const list = parseAllowList(allowed);
    const limits = this.limits;
    if (req.body.length > limits.maxRequestBytes) throw new WasiError(Errno.FBIG, `the request body is ${req.body.length} bytes; at most ${limits.maxRequestBytes}`);
    let url = this.check(list, req.url);
    let method = req.method;
    let body: Uint8Array | undefined = req.body.length > 0 ? req.body : undefined;
    let headers = req.headers.filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase()));
    const u = await loadUndici(); // before the clock starts: the first load is not the destination's time
    const signal = AbortSignal.timeout(limits.timeoutMs);
    const agent = this.agent(u, list, limits.timeoutMs);
    try {
      for (let hops = 0; ; hops++) {
        let res;
        try {
          res = await u.request(url, { method: method as never, headers: headers.flat(), body, dispatcher: agent, signal } as never);
        } catch (err) {
          throw findDenied(err) ?? networkErrno(err);
        }
        const status = res.statusCode;
        const location = res.headers["location"];
        if ([301, 302, 303, 307, 308].includes(status) && typeof location === "string") {
          await res.body.dump().catch(() => undefined);
          if (hops >= limits.maxRedirects) throw new WasiError(Errno.LOOP, `more than ${limits.maxRedirects} redirects`);
          const next = this.check(list, new URL(location, url).href);
          if (status === 303 || ((status === 301 || status === 302) && method === "POST")) {
            method = "GET";
            body = undefined;
          }
          if (next.origin !== url.origin) headers = headers.filter(([k]) => !CREDENTIALS.has(k.toLowerCase()));
          url = next;
          continue;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        try {
          for await (const chunk of res.body) {
            size += (chunk as Buffer).length;
            if (size > limits.maxResponseBytes) {
              res.body.destroy();
              throw new WasiError(Errno.FBIG, `the response body is over ${limits.maxResponseBytes} bytes`);
            }
            chunks.push(chunk as Buffer);
          }
        } catch (err) {
          throw err instanceof WasiError ? err : networkErrno(err);
        }
        const out: [string, string][] = [];
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
        }
        return { status, headers: out, body: new Uint8Array(Buffer.concat(chunks)) };
      }
    } finally {
      void agent.close().catch(() => undefined);
    }
  }
}

function findDenied(err: unknown): ExtensionDenied | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof ExtensionDenied) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
