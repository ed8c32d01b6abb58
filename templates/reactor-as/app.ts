// {{name}}: a reactor HTTP handler in AssemblyScript (the uniwasm reactor ABI,
// docs/abi-reactor.md). One warm instance serves many requests, so `served`
// survives between them. No WASI shim: the handler imports fd_write itself and
// writes the CGI response (headers, empty line, body) to fd 1.

@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;

let served: u32 = 0;

function write(s: string): void {
  const buf = String.UTF8.encode(s);
  const iov = memory.data(8);
  store<u32>(iov, changetype<usize>(buf));
  store<u32>(iov, buf.byteLength, 4);
  fd_write(1, iov, 1, memory.data(4));
}

/** The value of NAME in the request's NAME=VALUE\0 block, or "". */
function metaGet(meta: usize, len: u32, name: string): string {
  let at: usize = meta;
  const end = meta + len;
  const prefix = name + "=";
  while (at < end) {
    let n: usize = 0;
    while (load<u8>(at + n) != 0) n++;
    const entry = String.UTF8.decodeUnsafe(at, n);
    if (entry.startsWith(prefix)) return entry.substring(prefix.length);
    at += n + 1;
  }
  return "";
}

export function uniwasm_alloc(size: i32): usize {
  return heap.alloc(<usize>size);
}

export function uniwasm_free(ptr: usize): void {
  heap.free(ptr);
}

export function uniwasm_http_handle(req: usize, len: i32): i32 {
  const metaLen = load<u32>(req);
  const method = metaGet(req + 4, metaLen, "REQUEST_METHOD");
  const path = metaGet(req + 4, metaLen, "PATH_INFO");
  served++;
  write("Content-Type: text/plain\n\nHello from {{name}} (AssemblyScript), answering " + method + " " + path + " (request " + served.toString() + " of this warm instance).\n");
  return 0;
}
