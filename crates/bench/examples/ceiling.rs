//! The load benchmark's ceiling: a bare hyper HTTP/1.1 "hello world" on a multi-threaded Tokio
//! runtime, measured with the same wrk settings as Vexil (`bench/load.sh`).
//!
//! Usage: `cargo run --release -p vexil-bench --example ceiling -- 127.0.0.1:8399 [BODY_BYTES]`
//! (`BODY_BYTES` makes the response that long, to separate the cost of moving a realistic
//! `/flags` response from the cost of computing it.)

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8399".to_owned());
    let body = match std::env::args()
        .nth(2)
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(len) => Bytes::from(vec![b'x'; len]),
        None => Bytes::from_static(b"hello world"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
