//! A network namespace of the test's own, joined to the host by two links (veth pairs):
//! one carries the API and the deliveries, the other the database's traffic, so that the
//! database link can be cut while the node stays reachable. Needs root and iproute2.

use std::net::Ipv4Addr;

const IP: &str = "/usr/sbin/ip";

pub struct Namespace {
    name: String,
    /// The host's end and the namespace's end of the API link.
    pub host_api: Ipv4Addr,
    pub inside_api: Ipv4Addr,
    /// The host's end of the database link (where PostgreSQL listens).
    pub host_db: Ipv4Addr,
    db_link: String,
}

impl Namespace {
    pub fn create() -> Result<Self, String> {
        let tag = std::process::id() % 10_000;
        let net = 200 + u8::try_from(tag % 50).unwrap_or(0);
        let name = format!("vh-{tag}");
        let (api_link, db_link) = (format!("vha{tag}"), format!("vhd{tag}"));
        let ns = Self {
            host_api: Ipv4Addr::new(10, net, 1, 1),
            inside_api: Ipv4Addr::new(10, net, 1, 2),
            host_db: Ipv4Addr::new(10, net, 2, 1),
            name: name.clone(),
            db_link: db_link.clone(),
        };
        ip(&["netns", "add", &name])?;
        ns.link(&api_link, ns.host_api, ns.inside_api)?;
        ns.link(&db_link, ns.host_db, Ipv4Addr::new(10, net, 2, 2))?;
        ip(&["netns", "exec", &name, IP, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair `link` (host) – `link`i (namespace), each end addressed in a /24.
    fn link(&self, link: &str, host: Ipv4Addr, inside: Ipv4Addr) -> Result<(), String> {
        let peer = format!("{link}i");
        ip(&["link", "add", link, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &self.name])?;
        ip(&["addr", "add", &format!("{host}/24"), "dev", link])?;
        ip(&["link", "set", link, "up"])?;
        let inside = format!("{inside}/24");
        ip(&[
            "netns", "exec", &self.name, IP, "addr", "add", &inside, "dev", &peer,
        ])?;
        ip(&["netns", "exec", &self.name, IP, "link", "set", &peer, "up"])
    }

    /// The command that runs a program inside.
    pub fn wrapper(&self) -> [&str; 4] {
        [IP, "netns", "exec", &self.name]
    }

    /// Cuts the database link: packets are dropped, nothing is refused, as when a
    /// network partitions.
    pub fn cut_database(&self) -> Result<(), String> {
        ip(&["link", "set", &self.db_link, "down"])
    }

    pub fn restore_database(&self) -> Result<(), String> {
        ip(&["link", "set", &self.db_link, "up"])
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its ends of the links, and with them the pairs.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    crate::harness::run(IP, args)
}
