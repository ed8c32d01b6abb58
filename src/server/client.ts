import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/** Where the CLI keeps `{node, token}`: $UNIWASM_CONFIG, else ~/.uniwasm/config.json. */
export function clientConfigPath(): string {
  return process.env["UNIWASM_CONFIG"] ?? join(homedir(), ".uniwasm", "config.json");
}

export interface ClientConfig {
  node?: string;
  token?: string;
}

export function readClientConfig(path = clientConfigPath()): ClientConfig {
  if (!existsSync(path)) return {};
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as ClientConfig;
    return { ...(typeof c.node === "string" ? { node: c.node } : {}), ...(typeof c.token === "string" ? { token: c.token } : {}) };
  } catch (err) {
    throw new ClientError("bad_config", `${path} is not valid JSON (${(err as Error).message}); fix it or rewrite it with \`uniwasm node-config\``);
  }
}

/** Writes the config with mode 0600: it holds a token. */
export function writeClientConfig(c: ClientConfig, path = clientConfigPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(c, null, 2) + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Flags beat environment (UNIWASM_NODE, UNIWASM_TOKEN), which beats the config file. */
export function resolveClientConfig(flags: ClientConfig): Required<ClientConfig> {
  const file = readClientConfig();
  const node = flags.node ?? process.env["UNIWASM_NODE"] ?? file.node ?? "http://127.0.0.1:7070";
  const token = flags.token ?? process.env["UNIWASM_TOKEN"] ?? file.token;
  if (!token) {
    throw new ClientError(
      "no_token",
      "no API token: pass --token, set UNIWASM_TOKEN, or run `uniwasm node-config --token TOKEN` (a new node prints its admin token and writes it to <data>/bootstrap-token)",
    );
  }
  return { node: node.replace(/\/+$/, ""), token };
}

export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ClientError";
  }
}

/** A typed HTTP client of the node's control-plane API (what the CLI uses). */
export class NodeClient {
  constructor(
    readonly node: string,
    private readonly token: string,
  ) {}

  async request<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: string | Uint8Array | undefined;
    if (body instanceof Uint8Array) {
      payload = body;
      headers["content-type"] = contentType ?? "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["content-type"] = "application/json";
    }
    let res: Response;
    try {
      res = await fetch(this.node + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    } catch (err) {
      throw new ClientError("unreachable", `cannot reach the node at ${this.node} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is \`uniwasm serve\` running?`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ClientError("bad_response", `the node answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      const e = (json as { error?: { code: string; message: string } })?.error;
      throw new ClientError(e?.code ?? "http_error", e?.message ?? `HTTP ${res.status}`, res.status);
    }
    return json as T;
  }

  /** The tenant to act on: the given name, else the token's own tenant. */
  async tenant(name?: string): Promise<string> {
    if (name) return name;
    const who = await this.request<{ scope: string; tenant: { name: string } | null }>("GET", "/v1/whoami");
    if (!who.tenant) throw new ClientError("tenant_required", "this is an admin token: say which tenant with --tenant NAME");
    return who.tenant.name;
  }

  /** Streams an app's logs (Server-Sent Events) to `onEntry` until aborted. */
  async follow(path: string, onEntry: (e: { seq: number; ts: number; stream: string; line: string }) => void, signal?: AbortSignal): Promise<void> {
    const res = await fetch(this.node + path, { headers: { authorization: `Bearer ${this.token}`, accept: "text/event-stream" }, ...(signal ? { signal } : {}) });
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
      throw new ClientError(body.error?.code ?? "http_error", body.error?.message ?? `HTTP ${res.status}`, res.status);
    }
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of event.split("\n")) if (line.startsWith("data: ")) onEntry(JSON.parse(line.slice(6)));
        }
      }
    } catch (err) {
      if ((err as Error).name !== "AbortError") throw err;
    }
  }
}

export function clientFrom(flags: ClientConfig): NodeClient {
  const c = resolveClientConfig(flags);
  return new NodeClient(c.node, c.token);
}

/** Connection flags every node command takes. */
export interface NodeFlags {
  node?: string;
  token?: string;
}

/** Runs a CLI action; a ClientError prints one line `uniwasm: code: message` and exits 1. */
export async function cliAction(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ClientError) {
      process.stderr.write(`uniwasm: ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

/** Left-aligned columns for `ps`, `tenants`, `tokens`. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}
