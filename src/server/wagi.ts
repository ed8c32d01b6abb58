/**
 * The WAGI side of the gateway: CGI/1.1 variables for a request, and the
 * parser for the CGI response a guest writes to stdout (WAGI spec:
 * request metadata in env, body on stdin, `Status:`/`Content-Type:`/
 * `Location:` headers, an empty line, then the body).
 */
import type { IncomingMessage } from "node:http";
import { VERSION } from "../version.js";

export interface CgiRequestInfo {
  req: IncomingMessage;
  requestId: string;
  /** The request target's path (raw, still percent-encoded) and query, as the gateway parsed them. */
  target: RequestTarget;
  /** The matched route's path prefix ("/" or "/api"). */
  scriptName: string;
  route: string;
  host: string;
  serverPort: number;
  bodyLength: number;
}

/** Headers a guest never sees: credentials meant for the node, and hop-by-hop headers. */
const SERVER_SOFTWARE = `uniwasm/${VERSION}`;

const HIDDEN_HEADERS = new Set(["authorization", "proxy-authorization", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"]);

/** Where a request goes: its host and path (from an origin-form or absolute-form target). */
export interface RequestTarget {
  host: string;
  /** Raw path, starting with "/". */
  path: string;
  query: string;
  /** The URL as the guest sees it in X_FULL_URL. */
  fullUrl: string;
}

/** Why a request is malformed (a 400), for the gateway. */
export class BadRequest extends Error {}

/**
 * Parses a request's target (RFC 9112 3.2): origin-form `/path?query` with
 * the Host header, or absolute-form `http://host/path?query`, whose
 * authority wins over Host. Refuses duplicate Host headers (RFC 9112 3.2: a
 * 400), other target forms, and a path that decodes to a NUL byte (no guest
 * can receive it: CGI variables and the reactor's encoding are C strings).
 */
export function requestTarget(req: IncomingMessage): RequestTarget {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host") hosts++;
  if (hosts > 1) throw new BadRequest("the request has more than one Host header");
  const url = req.url ?? "/";
  let host: string;
  let rest: string;
  let fullUrl: string;
  if (url.startsWith("/")) {
    host = hostPart(String(req.headers.host ?? ""));
    rest = url;
    fullUrl = `http://${req.headers.host ?? host}${url}`;
  } else {
    const m = /^https?:\/\/([^/?#@]+)(.*)$/i.exec(url);
    if (!m) throw new BadRequest("the request target must be a path (/…) or an absolute http URL");
    host = hostPart(m[1]!);
    rest = m[2] === "" ? "/" : m[2]!.startsWith("?") ? "/" + m[2]! : m[2]!;
    if (!rest.startsWith("/")) throw new BadRequest("the request target must be a path (/…) or an absolute http URL");
    fullUrl = url;
  }
  const q = rest.indexOf("?");
  const path = q >= 0 ? rest.slice(0, q) : rest;
  if (/%00/.test(path)) throw new BadRequest("the path decodes to a NUL byte");
  return { host, path, query: q >= 0 ? rest.slice(q + 1) : "", fullUrl };
}

/** The host of a Host header or URI authority: lower case, port stripped. */
function hostPart(h: string): string {
  h = h.toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon >= 0 ? h.slice(0, colon) : h;
}

export function cgiEnv(info: CgiRequestInfo, appEnv: Record<string, string>): Record<string, string> {
  const { req } = info;
  const rawPath = info.target.path;
  const query = info.target.query;
  const prefix = info.scriptName === "/" ? "" : info.scriptName;
  const rawPathInfo = rawPath.slice(prefix.length);
  let pathInfo: string;
  try {
    pathInfo = decodeURIComponent(rawPathInfo);
  } catch {
    pathInfo = rawPathInfo;
  }
  const env: Record<string, string> = {
    ...appEnv,
    AUTH_TYPE: "",
    CONTENT_LENGTH: String(info.bodyLength),
    CONTENT_TYPE: String(req.headers["content-type"] ?? ""),
    GATEWAY_INTERFACE: "CGI/1.1",
    PATH_INFO: pathInfo,
    PATH_TRANSLATED: pathInfo,
    QUERY_STRING: query,
    REMOTE_ADDR: req.socket.remoteAddress ?? "",
    REMOTE_HOST: req.socket.remoteAddress ?? "",
    REMOTE_USER: "",
    REQUEST_METHOD: req.method ?? "GET",
    SCRIPT_NAME: prefix,
    SERVER_NAME: info.host,
    SERVER_PORT: String(info.serverPort),
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: SERVER_SOFTWARE,
    X_MATCHED_ROUTE: info.route,
    X_FULL_URL: info.target.fullUrl,
    X_RAW_PATH_INFO: rawPathInfo,
    X_REQUEST_ID: info.requestId,
  };
  const headers = req.headers;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const variable = headerVariable(name);
    if (variable === null) continue;
    env[variable] = Array.isArray(value) ? value.join(", ") : value;
  }
  return env;
}

// Header name -> CGI variable name (null: hidden), memoised: the same few
// names arrive on every request. Bounded, since clients choose the names.
const headerVariables = new Map<string, string | null>();
function headerVariable(name: string): string | null {
  let v = headerVariables.get(name);
  if (v === undefined) {
    v = HIDDEN_HEADERS.has(name) ? null : "HTTP_" + name.toUpperCase().replace(/-/g, "_");
    if (headerVariables.size >= 1024) headerVariables.clear();
    headerVariables.set(name, v);
  }
  return v;
}

/**
 * argv for a WAGI command: the script name, then each `&`-separated query
 * parameter, decoded. Throws BadRequest when one decodes to a NUL byte (an
 * argument is a C string).
 */
export function cgiArgs(scriptName: string, query: string): string[] {
  const args = [scriptName];
  if (query) {
    for (const part of query.split("&")) {
      if (!part) continue;
      let arg: string;
      try {
        arg = decodeURIComponent(part.replace(/\+/g, " "));
      } catch {
        arg = part;
      }
      if (arg.includes("\0")) throw new BadRequest(`query parameter ${JSON.stringify(part.slice(0, 40))} decodes to a NUL byte, which a WAGI program's arguments cannot carry`);
      args.push(arg);
    }
  }
  return args;
}

export interface CgiHead {
  status: number;
  headers: [string, string][];
}

export class CgiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CgiError";
  }
}

const MAX_HEAD = 64 * 1024;
/** Response headers a guest may not set: the node owns framing, the connection and the request id. */
const REFUSED_RESPONSE_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "trailer", "x-request-id"]);

/**
 * Incremental CGI response parser: feed stdout chunks; once the header block
 * is complete, `onHead` fires once and every later byte goes to `onBody`.
 */
export class CgiResponseParser {
  private head: Buffer[] = [];
  private headLen = 0;
  done = false;

  constructor(private readonly onHead: (head: CgiHead) => void, private readonly onBody: (chunk: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    if (this.done) {
      if (chunk.length > 0) this.onBody(chunk);
      return;
    }
    // A copy: the chunk may be lent (valid only during this call) and the head may span several.
    const buf = Buffer.from(chunk);
    this.head.push(buf);
    this.headLen += buf.length;
    const all = this.head.length === 1 ? buf : Buffer.concat(this.head);
    this.head = [all];
    const end = findHeadEnd(all);
    if (!end) {
      if (this.headLen > MAX_HEAD) throw new CgiError(`response headers exceed ${MAX_HEAD} bytes without an empty line`);
      return;
    }
    this.done = true;
    this.head = [];
    const head = parseHead(all.subarray(0, end.at).toString("latin1"));
    this.onHead(head);
    const rest = all.subarray(end.at + end.len);
    if (rest.length > 0) this.onBody(new Uint8Array(rest));
  }
}

function findHeadEnd(b: Buffer): { at: number; len: number } | undefined {
  // The first empty line ends the headers: "\n\n" or "\r\n\r\n" (CGI allows either).
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== 0x0a) continue;
    if (b[i + 1] === 0x0a) return { at: i, len: 2 };
    if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) return { at: i, len: 3 };
    if (i === 0) return { at: 0, len: 1 };
  }
  return undefined;
}

export function parseHead(text: string): CgiHead {
  const headers: [string, string][] = [];
  let status: number | undefined;
  let hasType = false;
  let location: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new CgiError(`malformed response header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new CgiError(`invalid response header name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (lower === "status") {
      const m = /^(\d{3})(\s.*)?$/.exec(value);
      // 1xx are interim responses the node would have to follow with a final one (101 would switch protocols on a kept-alive connection).
      if (!m || Number(m[1]) < 200 || Number(m[1]) > 599) throw new CgiError(`invalid Status header ${JSON.stringify(value)} (a final status from 200 to 599)`);
      status = Number(m[1]);
      continue;
    }
    if (REFUSED_RESPONSE_HEADERS.has(lower)) continue;
    if (lower === "content-type") hasType = true;
    if (lower === "location") location = value;
    headers.push([name, value]);
  }
  if (!hasType && location === undefined) throw new CgiError("response has neither Content-Type nor Location header");
  return { status: status ?? (location !== undefined ? 302 : 200), headers };
}
