//! Several PostgreSQL servers in one URL, as libpq reads them, so that a node finds the
//! primary after a failover: `postgres://user@db1:5432,db2:5432/verihook?target_session_attrs=read-write`.
//!
//! sqlx takes one host per connection; what libpq does with a host list is done here:
//! each new connection tries the hosts in the order given and takes the first that
//! answers and, under `target_session_attrs=read-write` (or `primary`), accepts writes.
//! A standby that was promoted is found by the next connection after the old primary's
//! connections break; a primary demoted to a standby is skipped.

use crate::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use std::str::FromStr;
use std::time::Duration;

/// How long one host may take to accept a connection before the next is tried: a host
/// cut off by the network drops packets rather than refusing them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Which server a connection must reach (libpq's `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionAttrs {
    /// The first server that answers.
    Any,
    /// A server whose sessions are read-write (`transaction_read_only` off).
    ReadWrite,
    /// A server not in recovery.
    Primary,
}

impl SessionAttrs {
    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "any" => Ok(Self::Any),
            "read-write" => Ok(Self::ReadWrite),
            "primary" => Ok(Self::Primary),
            other => Err(StoreError::Config(format!(
                "target_session_attrs `{other}` is not supported: verihook writes, so use \
                 read-write, primary or any"
            ))),
        }
    }
}

/// The servers of a `--database-url`, in order, and what a connection must find there.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    servers: Vec<PgConnectOptions>,
    attrs: SessionAttrs,
}

impl Hosts {
    /// Splits `url`'s host list (`h1:p1,h2:p2`) into one sqlx URL per host, and takes
    /// `target_session_attrs` out of the query (sqlx does not know it).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let (url, attrs) = take_session_attrs(url)?;
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let servers = hostlist
            .split(',')
            .map(|host| {
                let one = format!(
                    "{}{userinfo}{host}{}",
                    &url[..scheme_end],
                    &rest[authority_end..]
                );
                PgConnectOptions::from_str(&one).map_err(StoreError::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hostlist.split(',').any(str::is_empty) && servers.len() > 1 {
            return Err(StoreError::Config(
                "--database-url has an empty host in its host list".into(),
            ));
        }
        Ok(Self { servers, attrs })
    }

    /// The same hosts with `f` applied to each one's options.
    pub fn map(mut self, f: impl Fn(PgConnectOptions) -> PgConnectOptions) -> Self {
        self.servers = self.servers.into_iter().map(f).collect();
        self
    }

    /// A connection to the first host, in order, that answers and meets the session
    /// attributes, made with that host's options passed through `f`; and the host's own
    /// options (for the pools).
    pub async fn connect_with(
        &self,
        f: impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> Result<(PgConnection, PgConnectOptions), StoreError> {
        let mut last = None;
        for options in &self.servers {
            match self.try_one(&f(options.clone())).await {
                Ok(conn) => return Ok((conn, options.clone())),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Config("--database-url names no host".into())))
    }

    async fn try_one(&self, options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| StoreError::Timeout(CONNECT_TIMEOUT))??;
        if self.attrs == SessionAttrs::Any {
            return Ok(conn);
        }
        let row = sqlx::query(
            "SELECT pg_is_in_recovery() AS recovery, \
             current_setting('transaction_read_only') = 'on' AS read_only",
        )
        .fetch_one(&mut conn)
        .await?;
        let recovery: bool = row.try_get("recovery")?;
        let read_only: bool = row.try_get("read_only")?;
        let acceptable = match self.attrs {
            SessionAttrs::Any => true,
            SessionAttrs::ReadWrite => !recovery && !read_only,
            SessionAttrs::Primary => !recovery,
        };
        if acceptable {
            Ok(conn)
        } else {
            let _ = conn.close().await;
            Err(StoreError::Config(format!(
                "{}:{} is not a primary that accepts writes (target_session_attrs)",
                options.get_host(),
                options.get_port()
            )))
        }
    }
}

/// `url` without its `target_session_attrs` parameter, and that parameter's value.
fn take_session_attrs(url: &str) -> Result<(String, SessionAttrs), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SessionAttrs::Any));
    };
    let mut attrs = SessionAttrs::Any;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("target_session_attrs", value)) => attrs = SessionAttrs::parse(value)?,
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<(String, u16, String)> {
        let parsed = Hosts::parse(url).expect("parses");
        parsed
            .servers
            .iter()
            .map(|o| {
                let db = o.get_database().unwrap_or_default().to_owned();
                (o.get_host().to_owned(), o.get_port(), db)
            })
            .collect()
    }

    #[test]
    fn a_host_list_becomes_one_server_each_with_the_same_user_and_database() {
        let url = "postgres://app:pw@db1:5433,db2,[::1]:5434/verihook?sslmode=disable&target_session_attrs=read-write";
        assert_eq!(
            hosts(url),
            vec![
                ("db1".into(), 5433, "verihook".into()),
                ("db2".into(), 5432, "verihook".into()),
                ("[::1]".into(), 5434, "verihook".into()),
            ]
        );
        let parsed = Hosts::parse(url).expect("parses");
        assert_eq!(parsed.attrs, SessionAttrs::ReadWrite);
        assert!(parsed.servers.iter().all(|o| o.get_username() == "app"));
    }

    #[test]
    fn one_host_is_read_as_before() {
        let url = "postgres://postgres@127.0.0.1:5432/test";
        assert_eq!(hosts(url), vec![("127.0.0.1".into(), 5432, "test".into())]);
        assert_eq!(
            Hosts::parse(url).map(|h| h.attrs).ok(),
            Some(SessionAttrs::Any)
        );
    }

    #[test]
    fn unsupported_session_attrs_and_empty_hosts_are_refused() {
        let standby = Hosts::parse("postgres://a,b/db?target_session_attrs=standby");
        assert!(matches!(standby, Err(StoreError::Config(m)) if m.contains("standby")));
        assert!(Hosts::parse("postgres://a,,b/db").is_err());
    }
}
