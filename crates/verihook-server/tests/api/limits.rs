//! The HTTP server's own limits: a client that never finishes its headers is cut off.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connected");
        stream
            .write_all(b"GET /v1/customers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("sent");
        slow.push(stream);
    }
    // Served meanwhile.
    expect(app.request(Method::GET, "/healthz"), StatusCode::OK).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for mut stream in slow {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut buf = Vec::new();
        let read = tokio::time::timeout(left, stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a slow connection still open after 10 s");
    }
}
