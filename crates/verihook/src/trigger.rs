//! `verihook trigger TYPE --api BASE --api-key KEY` (CONTRACT §10): makes one event of a
//! type happen, through the public API of a sandbox organization, as an integration
//! would see it: a customer is created and, as the type needs, changed or moved to a
//! status (the sandbox forces any). Prints the customer's id and its events' ids.

use serde_json::{json, Value};
use verihook_core::EventType;

#[derive(clap::Args)]
pub struct TriggerArgs {
    /// The event type: customer.created, customer.updated, customer.status_changed,
    /// verification.completed or verification.rfi_required.
    #[arg(value_parser = parse_type)]
    event_type: EventType,
    /// The verihook API, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "BASE")]
    api: String,
    /// The sandbox organization's API key.
    #[arg(
        long,
        env = "VERIHOOK_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: String,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

fn parse_type(s: &str) -> Result<EventType, String> {
    EventType::parse(s).ok_or_else(|| {
        let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!("not an event type; one of {}", all.join(", "))
    })
}

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.client.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {answer}"));
        }
        Ok(answer)
    }

    async fn set_status(
        &self,
        customer: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), String> {
        let mut body = json!({ "status": status });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        let path = format!("/v1/sandbox/customers/{customer}/status");
        self.call(reqwest::Method::POST, &path, Some(body)).await?;
        Ok(())
    }
}

pub async fn run(args: TriggerArgs) -> Result<(), String> {
    let api = Api {
        client: reqwest::Client::new(),
        base: args.api,
        key: args.api_key,
    };
    let tag = verihook_core::id::random_token();
    let customer = json!({
        "type": "INDIVIDUAL",
        "email": format!("trigger-{}@example.com", tag.to_lowercase()),
        "firstName": "Trigger",
        "lastName": "Test",
    });
    let created = api
        .call(reqwest::Method::POST, "/v1/customers", Some(customer))
        .await?;
    let id = created["id"]
        .as_str()
        .ok_or("no customer id in the answer")?
        .to_owned();
    match args.event_type {
        EventType::CustomerCreated => {}
        EventType::CustomerUpdated => {
            let path = format!("/v1/customers/{id}");
            let change = json!({ "firstName": "Triggered" });
            api.call(reqwest::Method::PATCH, &path, Some(change))
                .await?;
        }
        EventType::CustomerStatusChanged => api.set_status(&id, "UNDER_REVIEW", None).await?,
        EventType::VerificationCompleted => api.set_status(&id, "ACTIVE", None).await?,
        EventType::VerificationRfiRequired => {
            let reason = "Proof of address required (verihook trigger)";
            api.set_status(&id, "NEEDS_ADDITIONAL_INFORMATION", Some(reason))
                .await?;
        }
        EventType::CustomerDeleted => {
            let path = format!("/v1/customers/{id}");
            api.call(reqwest::Method::DELETE, &path, None).await?;
        }
    }
    let path = format!("/v1/events?customerId={id}&limit=100");
    let events = api.call(reqwest::Method::GET, &path, None).await?;
    let mut listed: Vec<(String, String)> = events["data"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|e| {
                    let field = |name: &str| e[name].as_str().unwrap_or_default().to_owned();
                    (field("id"), field("type"))
                })
                .collect()
        })
        .unwrap_or_default();
    listed.reverse(); // oldest first
    report(&id, &listed, args.json);
    Ok(())
}

fn report(customer: &str, events: &[(String, String)], json: bool) {
    if json {
        let events: Vec<Value> = events
            .iter()
            .map(|(id, t)| json!({ "id": id, "type": t }))
            .collect();
        println!("{}", json!({ "customerId": customer, "events": events }));
        return;
    }
    println!("customer {customer}");
    for (id, event_type) in events {
        println!("  {id}  {event_type}");
    }
}
