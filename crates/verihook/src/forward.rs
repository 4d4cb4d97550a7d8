//! `verihook listen --forward-to URL --api BASE --api-key KEY` (CONTRACT §10): local
//! development without a tunnel. It follows the organization's event stream
//! (`GET /v1/events/stream`) and POSTs each event to a local URL with exactly the headers
//! and body it carried, so the receiver verifies it as it would a real delivery. When the
//! connection drops (the server restarts, the network blips) it reconnects by itself with
//! `Last-Event-ID`, and the server replays every event since: each is forwarded once.

use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// The longest wait between reconnections.
const MOST_BACKOFF: Duration = Duration::from_secs(5);
/// The server sends a comment every 10 s: this long without a byte, the connection is dead.
const SILENCE: Duration = Duration::from_secs(30);
/// How long the local receiver may take to answer.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Forward {
    pub to: String,
    pub api: String,
    pub api_key: String,
    pub json: bool,
}

/// One message of the stream.
struct Message {
    id: String,
    data: String,
}

pub async fn run(forward: Forward) -> Result<(), String> {
    let client = reqwest::Client::new();
    let mut last: Option<String> = None;
    let mut backoff = Duration::from_millis(250);
    let stopped = crate::serve::shutdown_signal();
    tokio::pin!(stopped);
    loop {
        let session = follow(&client, &forward, &mut last);
        let result = tokio::select! {
            result = session => result,
            () = &mut stopped => return Ok(()),
        };
        match result {
            Err(Fatal(message)) => return Err(message),
            Ok(Ended { received }) => {
                if received {
                    backoff = Duration::from_millis(250);
                }
                eprintln!("event stream lost; reconnecting in {backoff:?}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut stopped => return Ok(()),
        }
        backoff = (backoff * 2).min(MOST_BACKOFF);
    }
}

/// An answer that no reconnection will change (a wrong key, no webhook set).
struct Fatal(String);

/// A session that ended on its own (the connection dropped or could not be made).
struct Ended {
    /// It got at least one message: the next wait starts short again.
    received: bool,
}

/// One connection: opens the stream after `last` and forwards each event, until it ends.
async fn follow(
    client: &reqwest::Client,
    forward: &Forward,
    last: &mut Option<String>,
) -> Result<Ended, Fatal> {
    let url = format!("{}/v1/events/stream", forward.api.trim_end_matches('/'));
    let mut request = client.get(&url).bearer_auth(&forward.api_key);
    if let Some(id) = last.as_deref() {
        request = request.header("last-event-id", id);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            eprintln!("cannot reach {url}: {e}");
            return Ok(Ended { received: false });
        }
    };
    let status = response.status();
    if status.is_client_error() && status.as_u16() != 429 {
        let body = response.text().await.unwrap_or_default();
        return Err(Fatal(format!("{url} answered {status}: {body}")));
    }
    if !status.is_success() {
        eprintln!("{url} answered {status}");
        return Ok(Ended { received: false });
    }
    if last.is_none() {
        eprintln!("forwarding the events of {} to {}", forward.api, forward.to);
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut received = false;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(SILENCE, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(message) = next_message(&mut buffer) {
            deliver(client, forward, &message).await;
            *last = Some(message.id);
            received = true;
        }
    }
    Ok(Ended { received })
}

/// Takes the next whole message out of `buffer` (comments and blank blocks skipped).
fn next_message(buffer: &mut String) -> Option<Message> {
    loop {
        let end = buffer.find("\n\n")?;
        let block: String = buffer.drain(..end + 2).collect();
        let (mut id, mut data) = (None, Vec::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim_start().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if let (Some(id), false) = (id, data.is_empty()) {
            return Some(Message {
                id,
                data: data.join("\n"),
            });
        }
    }
}

/// POSTs the event to the local URL with its headers and body, and prints the answer.
async fn deliver(client: &reqwest::Client, forward: &Forward, message: &Message) {
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&message.data) else {
        eprintln!("{}: not a webhook request; skipped", message.id);
        return;
    };
    let body = data["body"].as_str().unwrap_or_default().to_owned();
    let mut request = client.post(&forward.to).timeout(LOCAL_TIMEOUT).body(body);
    let mut event_type = "?";
    if let Some(headers) = data["headers"].as_object() {
        for (name, value) in headers {
            let value = value.as_str().unwrap_or_default();
            if name == "x-webhook-event-type" {
                event_type = value;
            }
            request = request.header(name, value);
        }
    }
    let started = Instant::now();
    let answer = request.send().await;
    let took = started.elapsed();
    let (status, error) = match &answer {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if forward.json {
        let line = serde_json::json!({
            "eventId": message.id,
            "type": event_type,
            "status": status,
            "error": error,
            "ms": took.as_millis(),
        });
        println!("{line}");
        return;
    }
    let outcome = match (status, error) {
        (Some(code), _) => code.to_string(),
        (None, Some(e)) => format!("failed: {e}"),
        (None, None) => "?".into(),
    };
    println!(
        "{}  {event_type:<26} {}  → {outcome} ({} ms)",
        crate::listen::clock(),
        message.id,
        took.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_blank_lines_and_comments_skipped() {
        let mut buffer =
            String::from(": keep-alive\n\nid: evt_1\ndata: {\"a\":1}\n\nid: evt_2\nda");
        let first = next_message(&mut buffer).expect("one whole message");
        assert_eq!(
            (first.id.as_str(), first.data.as_str()),
            ("evt_1", "{\"a\":1}")
        );
        assert!(
            next_message(&mut buffer).is_none(),
            "the second is not whole yet"
        );
        buffer.push_str("ta: x\ndata: y\n\n");
        let second = next_message(&mut buffer).expect("now whole");
        assert_eq!(
            (second.id.as_str(), second.data.as_str()),
            ("evt_2", "x\ny")
        );
    }
}
