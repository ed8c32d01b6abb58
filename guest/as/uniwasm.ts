// AssemblyScript binding of uniwasm's built-in host extensions
// (docs/extensions.md; the C binding is guest/c/). Import what you use:
//
//   import { log, kv, variables, http, service, lastErrno } from "../path/to/guest/as/uniwasm";
//
// Each extension links only when the host grants it (capabilities.extensions,
// or --ext); an ungranted call returns ENOTCAPABLE (76). Functions that can
// fail return null / a status and leave the errno in `lastErrno`.

// ---- raw imports ---------------------------------------------------------------

@external("uniwasm:log", "write")
declare function _log_write(level: i32, ptr: usize, len: usize): i32;

@external("uniwasm:kv", "open")
declare function _kv_open(name: usize, nameLen: usize, storeOut: usize): i32;
@external("uniwasm:kv", "get")
declare function _kv_get(store: u32, key: usize, keyLen: usize, buf: usize, cap: usize, lenOut: usize): i32;
@external("uniwasm:kv", "list")
declare function _kv_list(store: u32, prefix: usize, prefixLen: usize, cursor: u32, buf: usize, cap: usize, usedOut: usize, nextOut: usize): i32;
@external("uniwasm:kv", "set")
declare function _kv_set(store: u32, key: usize, keyLen: usize, value: usize, valueLen: usize): i32;
@external("uniwasm:kv", "delete")
declare function _kv_delete(store: u32, key: usize, keyLen: usize): i32;
@external("uniwasm:kv", "increment")
declare function _kv_increment(store: u32, key: usize, keyLen: usize, delta: i64, valueOut: usize): i32;
@external("uniwasm:kv", "compare_and_set")
declare function _kv_compare_and_set(store: u32, key: usize, keyLen: usize, old: usize, oldLen: usize, value: usize, valueLen: usize): i32;

@external("uniwasm:variables", "get")
declare function _variables_get(name: usize, nameLen: usize, buf: usize, cap: usize, lenOut: usize): i32;

@external("uniwasm:http", "send")
declare function _http_send(method: usize, methodLen: usize, url: usize, urlLen: usize, headers: usize, headersLen: usize, body: usize, bodyLen: usize, statusOut: usize, responseOut: usize): i32;
@external("uniwasm:http", "response_headers")
declare function _http_response_headers(response: u32, buf: usize, cap: usize, lenOut: usize): i32;
@external("uniwasm:http", "response_read")
declare function _http_response_read(response: u32, buf: usize, cap: usize, lenOut: usize): i32;
@external("uniwasm:http", "response_close")
declare function _http_response_close(response: u32): i32;

@external("uniwasm:service", "call")
declare function _service_call(app: usize, appLen: usize, input: usize, inputLen: usize, statusOut: usize, responseOut: usize): i32;
@external("uniwasm:service", "response_read")
declare function _service_response_read(response: u32, buf: usize, cap: usize, lenOut: usize): i32;
@external("uniwasm:service", "response_close")
declare function _service_response_close(response: u32): i32;

// ---- helpers -------------------------------------------------------------------

export const ESUCCESS: i32 = 0;
export const EACCES: i32 = 2;
export const ECANCELED: i32 = 11;
export const EDQUOT: i32 = 19;
export const EFAULT: i32 = 21;
export const EFBIG: i32 = 22;
export const ELOOP: i32 = 32;
export const ENAMETOOLONG: i32 = 37;
export const ENOBUFS: i32 = 42;
export const ENOENT: i32 = 44;
export const ENOTCAPABLE: i32 = 76;

/** The errno of the last call that returned null (or a non-zero status). */
export let lastErrno: i32 = 0;

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}
function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}
/** Scratch for out-parameters (u32/u64). */
const out = new ArrayBuffer(16);
function outAt(offset: usize): usize {
  return changetype<usize>(out) + offset;
}

// AssemblyScript functions cannot capture locals, so each variable-size read
// below repeats the same protocol: ask with a small buffer, and on ENOBUFS
// once more with a buffer of the size the host reported in *len_out.
const SMALL: i32 = 256;

/** The `len` bytes of `buf` as a new buffer. */
function result(buf: ArrayBuffer, e: i32): ArrayBuffer | null {
  lastErrno = e;
  return e == 0 ? buf.slice(0, load<u32>(outAt(0))) : null;
}

/** Reads a buffered response (http or service) to its end through `which`'s read function. */
function readAll(which: i32, handle: u32): ArrayBuffer {
  const parts = new Array<ArrayBuffer>();
  let total = 0;
  const chunk = new ArrayBuffer(4096);
  while (true) {
    const e = which == 0 ? _http_response_read(handle, ptr(chunk), chunk.byteLength, outAt(8)) : _service_response_read(handle, ptr(chunk), chunk.byteLength, outAt(8));
    const n = load<u32>(outAt(8));
    if (e != 0 || n == 0) break;
    parts.push(chunk.slice(0, n));
    total += n;
  }
  const all = new ArrayBuffer(total);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    memory.copy(ptr(all) + at, ptr(parts[i]), parts[i].byteLength);
    at += parts[i].byteLength;
  }
  return all;
}

// ---- uniwasm:log -----------------------------------------------------------------

export namespace log {
  export const DEBUG: i32 = 0;
  export const INFO: i32 = 1;
  export const WARN: i32 = 2;
  export const ERROR: i32 = 3;
  /** One log line; EDQUOT when dropped by the flood bound. */
  export function write(level: i32, message: string): i32 {
    const b = utf8(message);
    return (lastErrno = _log_write(level, ptr(b), b.byteLength));
  }
}

// ---- uniwasm:kv ------------------------------------------------------------------

export namespace kv {
  /** The app's own store. */
  export const DEFAULT: u32 = 0;

  /** Opens a (shared) store by name; check lastErrno (EACCES: not granted). */
  export function open(name: string): u32 {
    const b = utf8(name);
    lastErrno = _kv_open(ptr(b), b.byteLength, outAt(0));
    return lastErrno == 0 ? load<u32>(outAt(0)) : 0;
  }

  export function get(store: u32, key: string): ArrayBuffer | null {
    const k = utf8(key);
    let buf = new ArrayBuffer(SMALL);
    let e = _kv_get(store, ptr(k), k.byteLength, ptr(buf), buf.byteLength, outAt(0));
    if (e == ENOBUFS) {
      buf = new ArrayBuffer(load<u32>(outAt(0)));
      e = _kv_get(store, ptr(k), k.byteLength, ptr(buf), buf.byteLength, outAt(0));
    }
    return result(buf, e);
  }

  export function getString(store: u32, key: string): string | null {
    const v = get(store, key);
    return v === null ? null : String.UTF8.decode(v);
  }

  export function set(store: u32, key: string, value: ArrayBuffer): i32 {
    const k = utf8(key);
    return (lastErrno = _kv_set(store, ptr(k), k.byteLength, ptr(value), value.byteLength));
  }

  export function setString(store: u32, key: string, value: string): i32 {
    return set(store, key, utf8(value));
  }

  export function remove(store: u32, key: string): i32 {
    const k = utf8(key);
    return (lastErrno = _kv_delete(store, ptr(k), k.byteLength));
  }

  /** Adds delta to the decimal integer at the key (absent = 0); check lastErrno. */
  export function increment(store: u32, key: string, delta: i64): i64 {
    const k = utf8(key);
    lastErrno = _kv_increment(store, ptr(k), k.byteLength, delta, outAt(0));
    return lastErrno == 0 ? load<i64>(outAt(0)) : 0;
  }

  /** Replaces the value when it is `old` (null: when absent); ECANCELED when it was not. */
  export function compareAndSet(store: u32, key: string, old: ArrayBuffer | null, value: ArrayBuffer): i32 {
    const k = utf8(key);
    const oldPtr: usize = old === null ? 0 : ptr(old);
    const oldLen: usize = old === null ? <usize>0xffffffff : old.byteLength;
    return (lastErrno = _kv_compare_and_set(store, ptr(k), k.byteLength, oldPtr, oldLen, ptr(value), value.byteLength));
  }

  /** Every key starting with prefix (all pages). */
  export function list(store: u32, prefix: string): string[] {
    const p = utf8(prefix);
    const keys = new Array<string>();
    let buf = new ArrayBuffer(1024);
    let cursor: u32 = 0;
    do {
      let e = _kv_list(store, ptr(p), p.byteLength, cursor, ptr(buf), buf.byteLength, outAt(0), outAt(4));
      if (e == ENOBUFS) {
        buf = new ArrayBuffer(load<u32>(outAt(0)));
        e = _kv_list(store, ptr(p), p.byteLength, cursor, ptr(buf), buf.byteLength, outAt(0), outAt(4));
      }
      lastErrno = e;
      if (e != 0) break;
      const used = load<u32>(outAt(0));
      let at: u32 = 0;
      while (at < used) {
        const n = load<u32>(ptr(buf) + at);
        keys.push(String.UTF8.decode(buf.slice(at + 4, at + 4 + n)));
        at += 4 + n;
      }
      cursor = load<u32>(outAt(4));
    } while (cursor != 0);
    return keys;
  }
}

// ---- uniwasm:variables -------------------------------------------------------------

export namespace variables {
  /** The value, or null (lastErrno: ENOENT not set, EACCES not granted). */
  export function get(name: string): string | null {
    const n = utf8(name);
    let buf = new ArrayBuffer(SMALL);
    let e = _variables_get(ptr(n), n.byteLength, ptr(buf), buf.byteLength, outAt(0));
    if (e == ENOBUFS) {
      buf = new ArrayBuffer(load<u32>(outAt(0)));
      e = _variables_get(ptr(n), n.byteLength, ptr(buf), buf.byteLength, outAt(0));
    }
    const v = result(buf, e);
    return v === null ? null : String.UTF8.decode(v);
  }
}

// ---- uniwasm:http ------------------------------------------------------------------

export class HttpResponse {
  constructor(public status: u32, private handle: u32) {}
  headers(): string {
    let buf = new ArrayBuffer(SMALL);
    let e = _http_response_headers(this.handle, ptr(buf), buf.byteLength, outAt(0));
    if (e == ENOBUFS) {
      buf = new ArrayBuffer(load<u32>(outAt(0)));
      e = _http_response_headers(this.handle, ptr(buf), buf.byteLength, outAt(0));
    }
    const b = result(buf, e);
    return b === null ? "" : String.UTF8.decode(b);
  }
  body(): ArrayBuffer {
    return readAll(0, this.handle);
  }
  close(): void {
    _http_response_close(this.handle);
  }
}

export namespace http {
  /** Sends a request (headers: "Name: value" lines); null on failure (lastErrno: EACCES not allowed, ETIMEDOUT, ...). */
  export function send(method: string, url: string, headers: string, body: ArrayBuffer): HttpResponse | null {
    const m = utf8(method);
    const u = utf8(url);
    const h = utf8(headers);
    lastErrno = _http_send(ptr(m), m.byteLength, ptr(u), u.byteLength, ptr(h), h.byteLength, ptr(body), body.byteLength, outAt(0), outAt(4));
    return lastErrno == 0 ? new HttpResponse(load<u32>(outAt(0)), load<u32>(outAt(4))) : null;
  }
}

// ---- uniwasm:service -------------------------------------------------------------------

export class ServiceResponse {
  constructor(public status: u32, private handle: u32) {}
  body(): ArrayBuffer {
    return readAll(1, this.handle);
  }
  close(): void {
    _service_response_close(this.handle);
  }
}

export namespace service {
  /** Calls an app of this tenant with input as its request body; null on failure (lastErrno: ENOENT, EACCES, ELOOP). */
  export function call(app: string, input: ArrayBuffer): ServiceResponse | null {
    const a = utf8(app);
    lastErrno = _service_call(ptr(a), a.byteLength, ptr(input), input.byteLength, outAt(0), outAt(4));
    return lastErrno == 0 ? new ServiceResponse(load<u32>(outAt(0)), load<u32>(outAt(4))) : null;
  }
}
