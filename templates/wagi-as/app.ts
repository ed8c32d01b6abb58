// {{name}}: a WAGI handler in AssemblyScript (CGI over WASI). The node runs
// this WASI command once per request: the request's CGI variables are its
// environment, the query's &-separated words its arguments. It prints headers,
// an empty line, then the body. The WASI shim (@assemblyscript/wasi-shim) maps
// `process` onto wasi_snapshot_preview1.
function env(name: string): string {
  return process.env.has(name) ? process.env.get(name) : "";
}

const who = process.argv.length > 1 ? process.argv[1] : "world";
process.stdout.write("Content-Type: text/plain\n\n");
process.stdout.write("Hello, " + who + "! This is {{name}} (AssemblyScript), answering " + env("REQUEST_METHOD") + " " + env("PATH_INFO") + ".\n");
