//! Webhook secrets at rest (CONTRACT §8): with `VERIHOOK_SECRET_KEY` no secret is found
//! in the SQLite file or its companions; plaintext ones are sealed at the first start with
//! a key and keep signing; a sealed database refuses to start without its key.

use crate::support::*;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use verihook_receiver::Verifier;
use verihook_testkit::Receiver;

const ADMIN: &str = "secrets-admin";
/// 32 bytes in base64.
const KEY: &str = "q6Gv0Yd0Jx1mUu2mJ0f0kq3oV2pM5sN8tW1yZ4cB7eE=";

fn vars(db: &Path, key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(db, ADMIN);
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    if let Some(key) = key {
        vars.push(("VERIHOOK_SECRET_KEY", key.into()));
    }
    vars
}

/// Whether `needle` appears in the database file or its `-wal`/`-shm` companions.
fn stored_anywhere(db: &Path, needle: &str) -> bool {
    ["", "-wal", "-shm"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", db.display()))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

/// New secrets, made by idempotent requests (whose answers, holding the secrets, are
/// kept for replay): the one the organization was created with, an endpoint's, a rotation's.
async fn endpoint_secrets(client: &reqwest::Client, base: &str, org: &SendingOrg) -> Vec<String> {
    let create = || {
        client
            .post(format!("{base}/v1/endpoints"))
            .bearer_auth(&org.key)
            .header("Idempotency-Key", "endpoint-1")
            .json(&json!({ "url": "http://127.0.0.1:9/other" }))
    };
    let created = call(create()).await;
    assert_eq!(
        call(create()).await,
        created,
        "replayed from the sealed answer"
    );
    let rotated = call(
        client
            .post(format!("{base}/v1/webhook/rotate-secret"))
            .bearer_auth(&org.key)
            .header("Idempotency-Key", "rotation-1"),
    )
    .await;
    vec![
        org.secret.clone(),
        created["secret"].as_str().expect("secret").to_owned(),
        rotated["secret"].as_str().expect("secret").to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_no_secret_is_stored_in_plaintext() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sealed.db");
    let client = reqwest::Client::new();
    let mut node = start(&vars(&db, Some(KEY)));
    wait_ready(&client, &node.base).await;
    let org = org_sending_to(&client, &node.base, ADMIN, "http://127.0.0.1:9/hook").await;
    let secrets = endpoint_secrets(&client, &node.base, &org).await;
    assert!(terminate_and_wait(&mut node).success());
    for secret in &secrets {
        assert!(!stored_anywhere(&db, secret), "a secret in the file");
        assert!(!stored_anywhere(&db, &secret["whsec_".len()..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_secrets_are_sealed_at_the_first_start_with_a_key_and_keep_signing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("upgrade.db");
    let receiver = Receiver::http().await;
    let client = reqwest::Client::new();
    let mut plain = start(&vars(&db, None));
    wait_ready(&client, &plain.base).await;
    let org = org_sending_to(&client, &plain.base, ADMIN, &receiver.url).await;
    assert!(terminate_and_wait(&mut plain).success());
    assert!(
        stored_anywhere(&db, &org.secret),
        "without a key it is plaintext"
    );

    let sealed = start(&vars(&db, Some(KEY)));
    wait_ready(&client, &sealed.base).await;
    assert!(!stored_anywhere(&db, &org.secret), "sealed at start");
    call(
        client
            .post(format!("{}/v1/customers", sealed.base))
            .bearer_auth(&org.key)
            .json(&json!({ "type": "INDIVIDUAL", "email": "s@example.com", "firstName": "S", "lastName": "K" })),
    )
    .await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX);
    let r = &received[0];
    Verifier::new(&org.secret)
        .check_request_at(now, |name| r.header(name), &r.body)
        .expect("still signed with the same secret");
    drop(sealed);

    let refused = Command::new(binary())
        .arg("serve")
        .env_clear()
        .envs(vars(&db, None))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    assert!(!refused.status.success(), "a sealed database needs its key");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--secret-key"), "{stderr}");
}
