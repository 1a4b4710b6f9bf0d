// Run with:
//   cargo run --release -p naive-axum-sse -- --listen 127.0.0.1:8090
// then subscribe with `curl -N http://127.0.0.1:8090/topics/demo` and publish with
// `curl -d hello http://127.0.0.1:8090/topics/demo`. `GET /stats` reports the events
// skipped by lagging subscribers. Used as a peer by scripts/bench/compare.

//! A naive axum SSE hub (see the library docs); prints `naive-axum-sse listening on http://ADDR`.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:8090".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(addr) => listen = addr,
                None => usage_exit("--listen needs an address"),
            },
            a if a.starts_with("--listen=") => listen = a["--listen=".len()..].to_owned(),
            "-h" | "--help" => {
                println!("usage: naive-axum-sse [--listen ADDR]   (default 127.0.0.1:8090)");
                return Ok(());
            }
            other => usage_exit(&format!("unknown argument {other:?}")),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "naive-axum-sse listening on http://{}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    naive_axum_sse::serve(listener).await
}

fn usage_exit(msg: &str) -> ! {
    eprintln!("naive-axum-sse: {msg}\nusage: naive-axum-sse [--listen ADDR]");
    std::process::exit(2)
}
