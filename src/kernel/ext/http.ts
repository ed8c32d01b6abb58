/**
 * `uniwasm:http`: outbound HTTP requests to the hosts an app is allowed
 * (`allowed_outbound_hosts`), through a checked client supplied from above
 * (manager/outbound-http.ts: allow-list, SSRF rules, byte caps, timeout,
 * redirects re-checked). The response is buffered (within its cap) and read
 * by the guest in chunks.
 *
 *   send(method_ptr, method_len, url_ptr, url_len, headers_ptr, headers_len,
 *        body_ptr, body_len, status_out, response_out) -> errno
 *   response_headers(response, buf_ptr, buf_cap, len_out) -> errno
 *   response_read(response, buf_ptr, buf_cap, len_out) -> errno   (*len_out = 0 at the end)
 *   response_close(response) -> errno
 *
 * Headers are "Name: value" lines separated by "\n". The provider is
 * asynchronous: a guest granted uniwasm:http runs in an executor.
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import { defineExtension } from "../extensions.js";
import { BufferedResponse, HandleTable, readBytes, readString, responseCalls, writeResult } from "./abi-helpers.js";

export interface OutboundRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array;
}

export interface OutboundResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

export interface HttpProvider {
  /**
   * Sends the request: ExtensionDenied(EACCES) for a destination not allowed,
   * EFBIG for a response over its cap, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, ...
   */
  request(req: OutboundRequest): OutboundResponse | Promise<OutboundResponse>;
}

export const HTTP_ABI_LIMITS = Object.freeze({
  methodBytes: 16,
  urlBytes: 8192,
  headerBytes: 64 * 1024,
  /** Request body copied out of the guest; the provider's cap is usually lower. */
  bodyBytes: 64 * 1024 * 1024,
  openResponses: 8,
});

const METHOD_RE = /^[A-Z]{1,16}$/;
const HEADER_NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** "Name: value\n" lines -> pairs; EINVAL for a malformed line or a value with CR/LF/NUL. */
export function parseHeaderLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const i = line.indexOf(":");
    const name = i > 0 ? line.slice(0, i).trim() : "";
    const value = i > 0 ? line.slice(i + 1).trim() : "";
    if (!HEADER_NAME_RE.test(name) || /[\r\0]/.test(value)) throw new WasiError(Errno.INVAL, `bad header line ${JSON.stringify(line.slice(0, 80))}`);
    out.push([name, value]);
  }
  return out;
}

type HttpState = HandleTable<BufferedResponse>;

export const httpExtension = defineExtension<HttpState, HttpProvider>({
  name: "uniwasm:http",
  summary: "Outbound HTTP to allowed hosts only (allow-list, SSRF rules, byte caps, timeout, redirects re-checked).",
  needsProvider: true,
  state: () => new HandleTable<BufferedResponse>(HTTP_ABI_LIMITS.openResponses, "response"),
  functions: {
    send: {
      params: [["method_ptr", "i32"], ["method_len", "i32"], ["url_ptr", "i32"], ["url_len", "i32"], ["headers_ptr", "i32"], ["headers_len", "i32"], ["body_ptr", "i32"], ["body_len", "i32"], ["status_out", "i32"], ["response_out", "i32"]],
      result: "errno",
      summary: "Send a request; on SUCCESS *status_out is the HTTP status and *response_out a response to read and close.",
      handler: (ctx, mp: number, ml: number, up: number, ul: number, hp: number, hl: number, bp: number, bl: number, statusOut: number, respOut: number) => {
        const method = readString(ctx.memory, mp, ml, HTTP_ABI_LIMITS.methodBytes, "the method");
        if (!METHOD_RE.test(method)) throw new WasiError(Errno.INVAL, `${JSON.stringify(method)} is not an HTTP method`);
        const url = readString(ctx.memory, up, ul, HTTP_ABI_LIMITS.urlBytes, "the URL");
        const headers = parseHeaderLines(readString(ctx.memory, hp, hl, HTTP_ABI_LIMITS.headerBytes, "the headers"));
        const body = readBytes(ctx.memory, bp, bl, HTTP_ABI_LIMITS.bodyBytes, "the request body", Errno.FBIG);
        ctx.memory.check(statusOut, 4);
        ctx.memory.check(respOut, 4);
        if (ctx.state.size >= HTTP_ABI_LIMITS.openResponses) throw new WasiError(Errno.MFILE, `at most ${HTTP_ABI_LIMITS.openResponses} open responses; close one first`);
        const r = ctx.provider.request({ method, url, headers, body }) as OutboundResponse;
        const handle = ctx.state.add(new BufferedResponse(r.status, r.headers, r.body));
        ctx.memory.setU32(statusOut, r.status);
        ctx.memory.setU32(respOut, handle);
        return Errno.SUCCESS;
      },
    },
    response_headers: {
      params: [["response", "i32"], ["buf_ptr", "i32"], ["buf_cap", "i32"], ["len_out", "i32"]],
      result: "errno",
      summary: "The response's headers as \"name: value\\n\" lines (ENOBUFS and *len_out when the buffer is too small).",
      handler: (ctx, h: number, buf: number, cap: number, lenOut: number) => writeResult(ctx.memory, buf, cap, lenOut, ctx.state.get(h).headerLines()),
    },
    ...responseCalls<HttpProvider>("the response body"),
  },
});
