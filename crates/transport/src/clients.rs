//! `serve.clients` of the tcp transport: which peer IP is which client.
//!
//! A key is an IP (`192.168.1.2`, `fe80::1`) or a CIDR (`10.0.0.0/24`). A
//! CIDR's identity must contain `*`, which is replaced by the client's IP; an
//! IP's identity must not. The most specific mapping wins: an exact IP, then
//! the longest prefix. Every identity, after expansion, is a valid
//! [`ClientIdentity`].

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::Refused;
use crate::options::ClientMapping;
use crate::{ClientIdentity, TransportError};

/// A validated `serve.clients` map.
#[derive(Debug, Clone, Default)]
pub struct ClientMap {
    exact: HashMap<IpAddr, ClientIdentity>,
    /// Sorted by prefix length, longest first.
    nets: Vec<Net>,
}

#[derive(Debug, Clone)]
struct Net {
    /// The network address (host bits cleared), canonical family.
    addr: IpAddr,
    prefix: u8,
    /// The identity as written, with `*`.
    template: String,
    /// The key as written, for messages.
    pattern: String,
}

/// Validate `serve.clients` of a tcp server: every key parses as an IP or a
/// CIDR, no key appears twice, a CIDR's identity contains `*`, an IP's does
/// not, and every identity (expanded with the network's address for a CIDR)
/// is a valid [`ClientIdentity`].
pub fn validate_clients(clients: &[ClientMapping]) -> Result<ClientMap, TransportError> {
    let mut map = ClientMap::default();
    for m in clients {
        let bad = |why: String| {
            TransportError::config(format!(
                "serve.clients: \"{}\": \"{}\": {why}",
                m.pattern.escape_debug(),
                m.identity.escape_debug()
            ))
        };
        match parse_pattern(&m.pattern).map_err(|e| bad(e.to_string()))? {
            Pattern::Ip(ip) => {
                if m.identity.contains('*') {
                    return Err(bad(format!(
                        "the identity of a single IP cannot contain '*' (only a CIDR key expands it; use {ip}/{})",
                        max_prefix(ip)
                    )));
                }
                let id = ClientIdentity::parse(&m.identity).map_err(|e| bad(e.to_string()))?;
                if map.exact.insert(ip, id).is_some() {
                    return Err(bad(format!("IP {ip} is mapped more than once")));
                }
            }
            Pattern::Net(addr, prefix) => {
                if !m.identity.contains('*') {
                    return Err(bad(
                        "the identity of a CIDR key must contain '*', which expands to the client's IP (e.g. \"client-*\")".into(),
                    ));
                }
                let sample = expand(&m.identity, addr);
                ClientIdentity::parse(&sample)
                    .map_err(|e| bad(format!("expanded for {addr}: {e}")))?;
                if map
                    .nets
                    .iter()
                    .any(|n| n.addr == addr && n.prefix == prefix)
                {
                    return Err(bad(format!(
                        "network {addr}/{prefix} is mapped more than once"
                    )));
                }
                map.nets.push(Net {
                    addr,
                    prefix,
                    template: m.identity.clone(),
                    pattern: m.pattern.clone(),
                });
            }
        }
    }
    map.nets.sort_by_key(|n| std::cmp::Reverse(n.prefix));
    Ok(map)
}

impl ClientMap {
    /// The identity of a client connecting from `ip`, or why it is refused.
    pub fn lookup(&self, ip: IpAddr) -> Result<ClientIdentity, Refused> {
        let ip = ip.to_canonical();
        if let Some(id) = self.exact.get(&ip) {
            return Ok(id.clone());
        }
        let Some(net) = self.nets.iter().find(|n| contains(n.addr, n.prefix, ip)) else {
            return Err(Refused::NotInClients { ip });
        };
        let expanded = expand(&net.template, ip);
        ClientIdentity::parse(&expanded).map_err(|source| Refused::ExpandedIdentity {
            ip,
            pattern: net.pattern.clone(),
            source,
        })
    }

    /// Whether no client is mapped (every connection would be refused).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.nets.is_empty()
    }
}

enum Pattern {
    Ip(IpAddr),
    Net(IpAddr, u8),
}

/// Why a `serve.clients` key is neither an IP nor a CIDR (the caller names the key).
#[derive(Debug, thiserror::Error)]
enum PatternError {
    #[error("not an IP address or CIDR (e.g. 192.168.1.2, 10.0.0.0/24 or fd00::/64)")]
    NotAnAddress,
    #[error("the prefix length must be a number from 0 to {max}")]
    BadPrefix { max: u8 },
}

fn parse_pattern(s: &str) -> Result<Pattern, PatternError> {
    match s.split_once('/') {
        None => {
            let ip: IpAddr = s.parse().map_err(|_| PatternError::NotAnAddress)?;
            Ok(Pattern::Ip(ip.to_canonical()))
        }
        Some((ip, prefix)) => {
            let ip: IpAddr = ip.parse().map_err(|_| PatternError::NotAnAddress)?;
            let max = max_prefix(ip);
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(PatternError::BadPrefix { max })?;
            Ok(Pattern::Net(mask(ip, prefix), prefix))
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with all but the first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net
}

fn expand(template: &str, ip: IpAddr) -> String {
    template.replace('*', &ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_zfs::Classify;

    fn m(p: &str, id: &str) -> ClientMapping {
        ClientMapping {
            pattern: p.into(),
            identity: id.into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn most_specific_wins() {
        let map = validate_clients(&[
            m("10.0.0.0/8", "wide-*"),
            m("10.1.0.0/16", "narrow-*"),
            m("10.1.2.3", "exact"),
            m("fd00::/64", "v6-*"),
        ])
        .unwrap();
        assert_eq!(map.lookup(ip("10.1.2.3")).unwrap().as_str(), "exact");
        assert_eq!(
            map.lookup(ip("10.1.9.9")).unwrap().as_str(),
            "narrow-10.1.9.9"
        );
        assert_eq!(
            map.lookup(ip("10.2.0.1")).unwrap().as_str(),
            "wide-10.2.0.1"
        );
        assert_eq!(map.lookup(ip("::ffff:10.1.2.3")).unwrap().as_str(), "exact");
        assert_eq!(map.lookup(ip("fd00::7")).unwrap().as_str(), "v6-fd00::7");
        let e = map.lookup(ip("192.168.0.1")).unwrap_err();
        assert_eq!(e.to_string(), "192.168.0.1 is not in serve.clients");
        assert!(map.lookup(ip("fd01::1")).is_err());
    }

    #[test]
    fn host_bits_are_masked_and_zero_prefix_matches_all() {
        let map = validate_clients(&[m("10.0.0.77/24", "c-*"), m("0.0.0.0/0", "any-*")]).unwrap();
        assert_eq!(map.lookup(ip("10.0.0.1")).unwrap().as_str(), "c-10.0.0.1");
        assert_eq!(map.lookup(ip("8.8.8.8")).unwrap().as_str(), "any-8.8.8.8");
        assert!(map.lookup(ip("::1")).is_err());
    }

    #[test]
    fn refusals_name_key_and_value() {
        let cases: &[(&[ClientMapping], &str)] = &[
            (&[m("10.0.0.0/24", "client")], "must contain '*'"),
            (&[m("10.0.0.1", "client-*")], "cannot contain '*'"),
            (&[m("10.0.0.1", "a/b")], "invalid client identity"),
            (&[m("10.0.0.1", "")], "invalid client identity"),
            (&[m("10.0.0.0/24", "a@*")], "invalid client identity"),
            (&[m("nohost", "x")], "not an IP address or CIDR"),
            (&[m("10.0.0.0/33", "x-*")], "prefix length"),
            (&[m("10.0.0.0/x", "x-*")], "prefix length"),
            (&[m("10.0.0.1", "a"), m("10.0.0.1", "b")], "more than once"),
            (
                &[m("10.0.0.0/8", "a-*"), m("10.9.0.0/8", "b-*")],
                "more than once",
            ),
        ];
        for (clients, want) in cases {
            let e = validate_clients(clients).unwrap_err();
            let s = e.to_string();
            assert!(s.contains(want), "{clients:?}: {s}");
            assert!(s.contains("serve.clients"), "{s}");
            assert!(!e.is_temporary());
        }
    }

    #[test]
    fn expanded_identity_too_long_is_refused_at_lookup() {
        let long = format!("{}-*", "x".repeat(50));
        let map = validate_clients(&[m("::/0", &long)]).unwrap();
        let e = map
            .lookup(ip("2001:db8:1234:5678:9abc:def0:1234:5678"))
            .unwrap_err();
        assert!(matches!(e, Refused::ExpandedIdentity { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("matches serve.clients \"::/0\" but the expanded identity is invalid"),
            "{e}"
        );
    }
}
