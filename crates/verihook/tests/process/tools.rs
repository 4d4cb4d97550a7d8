//! `verihook sign`, `verify` and `listen`, driven as processes.

use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_cli_test";
const BODY: &str = r#"{"type":"customer.created","payload":{"customerId":"cus_0000000000000000000000aa","customerType":"INDIVIDUAL","status":"CREATED","email":"jane.smith@example.com","firstName":"Jane","lastName":"Smith","createdAt":"2025-11-05T10:00:00Z"},"metadata":{"eventId":"evt_0000000000000000000000aa","occurredAt":"2025-11-05T10:00:00Z","organizationId":"org_0000000000000000000000aa"}}"#;

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

/// Runs `verihook ARGS` with `stdin` as its standard input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("written");
    child.wait_with_output().expect("finishes")
}

fn sign(timestamp: i64, body: &str) -> String {
    let ts = timestamp.to_string();
    let out = run(
        &["sign", "--secret", SECRET, "--timestamp", &ts],
        body.as_bytes(),
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

fn verify(timestamp: i64, signature: &str, body: &[u8], extra: &[&str]) -> (bool, String) {
    let ts = timestamp.to_string();
    let mut args = vec![
        "verify",
        "--secret",
        SECRET,
        "--timestamp",
        &ts,
        "--signature",
        signature,
    ];
    args.extend_from_slice(extra);
    let out = run(&args, body);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sign_matches_an_independent_vector() {
    // From tests/vectors/vectors.json of verihook-receiver (computed with Python's hmac).
    let out = run(
        &[
            "sign",
            "--secret",
            "whsec_test",
            "--timestamp",
            "1699104000",
        ],
        r#"{"type":"customer.created","x":"é/"}"#.as_bytes(),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3565c7c51788ae5482cfbd0ba6f8a99b03a38547528d00fd1525eae7adf951ef"
    );
}

#[test]
fn verify_accepts_what_sign_made_and_says_why_it_refuses() {
    let t = now();
    let signature = sign(t, BODY);
    let (ok, said) = verify(t, &signature, BODY.as_bytes(), &[]);
    assert!(ok && said.trim() == "valid", "{said}");

    let (ok, why) = verify(t, &signature, format!("{BODY}\n").as_bytes(), &[]);
    assert!(!ok && why.contains("trailing newline"), "{why}");
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(BODY).expect("JSON"))
        .expect("pretty");
    let (ok, why) = verify(t, &signature, pretty.as_bytes(), &[]);
    assert!(
        !ok && (why.contains("does not match") || why.contains("re-formatted")),
        "{why}"
    );
    let tampered = BODY.replace("Jane", "Joan");
    let (ok, why) = verify(t, &signature, tampered.as_bytes(), &[]);
    assert!(!ok && why.contains("does not match"), "{why}");
    let (ok, why) = verify(t, "zz", BODY.as_bytes(), &[]);
    assert!(!ok && why.contains("64 hex digits"), "{why}");

    let stale = t - 3_600;
    let old_signature = sign(stale, BODY);
    let (ok, why) = verify(stale, &old_signature, BODY.as_bytes(), &[]);
    assert!(
        !ok && why.contains("matches") && why.contains("old"),
        "{why}"
    );
    assert!(
        verify(
            stale,
            &old_signature,
            BODY.as_bytes(),
            &["--tolerance", "0s"]
        )
        .0
    );
    let future = t + 3_600;
    let (ok, why) = verify(future, &sign(future, BODY), BODY.as_bytes(), &[]);
    assert!(!ok && why.contains("future"), "{why}");
}

struct Listening {
    running: Running,
    url: String,
}

fn listen(extra: &[&str]) -> Listening {
    listen_with(SECRET, extra)
}

fn listen_with(secret: &str, extra: &[&str]) -> Listening {
    let mut args = vec!["listen", "--port", "0", "--secret", secret];
    args.extend_from_slice(extra);
    let mut child = Command::new(binary())
        .args(&args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("banner");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("banner")
        .to_owned();
    let base = url.clone();
    Listening {
        running: Running {
            child,
            stdout,
            base,
        },
        url,
    }
}

fn next_line(l: &mut Listening) -> String {
    let mut line = String::new();
    l.running.stdout.read_line(&mut line).expect("a line");
    line
}

async fn deliver(client: &reqwest::Client, url: &str, body: &str, signature: &str, ts: i64) -> u16 {
    client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Webhook-Timestamp", ts.to_string())
        .header("X-Webhook-Signature", signature)
        .header("X-Webhook-Attempt", "1")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn listen_verifies_prints_and_fails_on_request() {
    let mut l = listen(&["--fail-first", "1", "--status", "503"]);
    let client = reqwest::Client::new();
    let t = now();
    let signature = sign(t, BODY);
    assert_eq!(deliver(&client, &l.url, BODY, &signature, t).await, 503);
    let first = next_line(&mut l);
    assert!(
        first.contains("customer.created") && first.contains("→ 503"),
        "{first}"
    );
    assert_eq!(deliver(&client, &l.url, BODY, &signature, t).await, 200);
    let second = next_line(&mut l);
    assert!(
        second.contains("(duplicate)") && second.contains("→ 200"),
        "{second}"
    );
    assert_eq!(
        deliver(
            &client,
            &l.url,
            &BODY.replace("Jane", "Joan"),
            &signature,
            t
        )
        .await,
        401
    );
    let refused = next_line(&mut l);
    assert!(refused.contains("rejected (401)"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_delivers_to_listen() {
    let dir = tempfile::tempdir().expect("dir");
    let mut vars = base_vars(&dir.path().join("e2e.db"), "e2e-admin");
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    let server = start(&vars);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let base = server.base.clone();
    let org = call(
        client
            .post(format!("{base}/v1/admin/organizations"))
            .bearer_auth("e2e-admin")
            .json(&json!({ "name": "E2E" })),
    )
    .await;
    let org_id = org["id"].as_str().expect("id");
    let key = org["apiKey"].as_str().expect("key");
    // A listener with the organization's secret, at the organization's URL.
    let placeholder = call(
        client
            .put(format!("{base}/v1/admin/organizations/{org_id}/webhook"))
            .bearer_auth("e2e-admin")
            .json(&json!({ "url": "http://127.0.0.1:9/placeholder" })),
    )
    .await;
    let secret = placeholder["secret"].as_str().expect("secret").to_owned();
    let mut child = Command::new(binary())
        .args(["listen", "--port", "0", "--json", "--secret", &secret])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut banner = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut banner)
        .expect("banner");
    let url = banner
        .trim()
        .strip_prefix("listening on ")
        .expect("banner")
        .to_owned();
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut listener = Running {
        child,
        stdout,
        base: url.clone(),
    };
    call(
        client
            .put(format!("{base}/v1/webhook"))
            .bearer_auth(key)
            .json(&json!({ "url": url })),
    )
    .await;
    let customer = call(
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .json(&json!({ "type": "INDIVIDUAL", "email": "e2e@example.com", "firstName": "E", "lastName": "E" })),
    )
    .await;
    let mut line = String::new();
    listener.stdout.read_line(&mut line).expect("an event line");
    let printed: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(printed["verified"], true, "{printed}");
    assert_eq!(printed["type"], "customer.created");
    assert_eq!(printed["event"]["payload"]["customerId"], customer["id"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = call(client.get(format!("{base}/v1/events")).bearer_auth(key)).await;
        if page["data"][0]["deliveryStatus"] == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(listener);
}

#[test]
fn sign_and_verify_speak_standard_webhooks() {
    // The Standard Webhooks reference libraries' own example.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = r#"{"test": 2432232314}"#;
    let scheme = [
        "--scheme",
        "standard-webhooks",
        "--id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ];
    let mut args = vec!["sign", "--secret", secret, "--timestamp", "1614265330"];
    args.extend(scheme);
    let out = run(&args, body.as_bytes());
    let signature = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(
        signature.trim(),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    let check = |body: &str| {
        let mut args = vec![
            "verify",
            "--secret",
            secret,
            "--timestamp",
            "1614265330",
            "--signature",
            signature.trim(),
            "--tolerance",
            "0s",
        ];
        args.extend(scheme);
        run(&args, body.as_bytes()).status.success()
    };
    assert!(check(body));
    assert!(!check(r#"{"test": 2432232315}"#));
    let without_id = run(
        &["sign", "--secret", secret, "--scheme", "standard-webhooks"],
        b"{}",
    );
    assert!(!without_id.status.success());
}

#[tokio::test]
async fn listen_verifies_standard_webhooks_requests() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut l = listen_with(secret, &["--scheme", "standard-webhooks"]);
    let key = verihook_receiver::standard_webhooks::key(secret).expect("base64");
    let t = now();
    let id = "evt_0000000000000000000000aa";
    let signature = verihook_receiver::standard_webhooks::sign(&key, id, t, BODY.as_bytes());
    let client = reqwest::Client::new();
    let send = |body: String| {
        client
            .post(&l.url)
            .header("webhook-id", id)
            .header("webhook-timestamp", t.to_string())
            .header("webhook-signature", signature.clone())
            .body(body)
            .send()
    };
    let genuine = send(BODY.to_owned()).await.expect("sent");
    assert_eq!(genuine.status().as_u16(), 200);
    let tampered = send(BODY.replace("Jane", "Joan")).await.expect("sent");
    assert_eq!(tampered.status().as_u16(), 401);
    let line = next_line(&mut l);
    assert!(line.contains("customer.created"), "{line}");
}

#[test]
fn verify_accepts_any_of_several_secrets_and_either_signature_header() {
    let t = now();
    let ts = t.to_string();
    let by_old = sign(t, BODY);
    let new = "whsec_cli_new";
    let out = run(
        &["sign", "--secret", new, "--timestamp", &ts],
        BODY.as_bytes(),
    );
    let by_new = String::from_utf8(out.stdout).expect("UTF-8");
    let check = |secrets: &[&str], next: Option<&str>| {
        let mut args = vec!["verify", "--timestamp", &ts, "--signature", &by_old];
        for s in secrets {
            args.extend(["--secret", s]);
        }
        if let Some(next) = next {
            args.extend(["--signature-next", next]);
        }
        run(&args, BODY.as_bytes()).status.success()
    };
    assert!(check(&["whsec_other", SECRET], None), "any of the secrets");
    assert!(
        check(&[new], Some(by_new.trim())),
        "the new secret, by the -Next header"
    );
    assert!(
        !check(&[new], None),
        "without the -Next header the new secret has nothing"
    );
    assert!(!check(&["whsec_other"], Some(by_new.trim())));
}

fn check(url: &str, extra: &[&str]) -> (bool, Value) {
    let output = Command::new(binary())
        .args(["check", url, "--secret", SECRET, "--json"])
        .args(extra)
        .env_clear()
        .output()
        .expect("check runs");
    let report = serde_json::from_slice(&output.stdout).expect("a JSON report");
    (output.status.success(), report)
}

fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["verdict"] == "FAIL")
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `verihook check` passes a correct receiver (`listen`: plain http is its one warning),
/// and fails one that takes anything on exactly the four checks it breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_grades_a_receiver_against_the_checklist() {
    let good = listen(&[]);
    let (ok, report) = check(&good.url, &[]);
    assert!(ok, "{report}");
    assert_eq!(
        (report["fail"].clone(), report["warn"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(12));

    let lax = verihook_testkit::Receiver::http().await;
    let (ok, report) = check(&lax.url, &[]);
    assert!(!ok, "a receiver that takes anything fails");
    assert_eq!(
        failed(&report),
        [
            "a wrong signature refused",
            "a tampered body refused",
            "a timestamp 10 minutes old refused",
            "a request without signature headers refused",
        ]
    );
    let requests = lax.received();
    assert!(requests
        .iter()
        .all(|r| r.header("x-webhook-check") == Some("true")));
    assert!(requests
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("\"customerId\":\"cus_check")));

    let down = verihook_testkit::Receiver::http().await;
    down.always(verihook_testkit::Reply::Status(503));
    let (ok, report) = check(&down.url, &[]);
    assert!(!ok);
    assert_eq!(
        failed(&report).len(),
        7,
        "five types, the unknown one, the duplicate"
    );
}
