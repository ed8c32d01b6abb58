// {{name}}: a WAGI handler in Rust (CGI over WASI). The node runs this
// ordinary WASI command once per request: the request's CGI variables
// (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE, HTTP_*) are its
// environment, the query's &-separated words its arguments, the body its
// stdin. It prints headers, an empty line, then the body. Only std: no crates
// to fetch, so Debian's rustc builds it offline.
use std::env;
use std::io::{self, Read, Write};

fn var(name: &str) -> String {
    env::var(name).unwrap_or_default()
}

fn main() -> io::Result<()> {
    let mut out = io::stdout();
    if var("PATH_INFO") == "/echo" {
        let mut body = Vec::new();
        io::stdin().read_to_end(&mut body)?;
        write!(out, "Content-Type: text/plain\n\n")?;
        return out.write_all(&body);
    }
    let who = env::args().nth(1).unwrap_or_else(|| "world".to_string());
    write!(out, "Content-Type: text/plain\n\n")?;
    write!(out, "Hello, {}! This is {{name}} (Rust), answering {} {}.\n", who, var("REQUEST_METHOD"), var("PATH_INFO"))
}
