//! Who sent a request: the peer address of the connection (the server puts
//! `ConnectInfo<SocketAddr>` in the request's extensions) and, only when that peer is
//! in `[karajo] trusted_proxy`, what the proxy says about the client: its address in
//! `X-Forwarded-For` and HTTPS in `X-Forwarded-Proto` or `Forwarded: proto=`. A
//! request from anyone else is taken at face value and those headers are ignored, so
//! a client cannot pick its own address (to dodge the login throttle) or claim HTTPS.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

use crate::config::IpNet;

/// What is known about the client of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address: the peer's, or the one a trusted proxy forwarded; `None`
    /// when the server did not say who the peer is.
    pub client: Option<IpAddr>,
    /// The peer is a trusted proxy.
    pub via_proxy: bool,
    /// A trusted proxy says the request came over HTTPS.
    pub https: bool,
}

/// Works out [`Peer`] from the connection's address, the trusted proxies and the
/// request's headers.
pub fn peer(trusted: &[IpNet], connect: Option<SocketAddr>, headers: &HeaderMap) -> Peer {
    let addr = connect.map(|a| a.ip().to_canonical());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    match addr {
        Some(ip) if is_trusted(ip) => Peer {
            client: Some(forwarded_for(headers, is_trusted).unwrap_or(ip)),
            via_proxy: true,
            https: forwarded_https(headers),
        },
        _ => Peer {
            client: addr,
            via_proxy: false,
            https: false,
        },
    }
}

/// The client in `X-Forwarded-For` (every such header, in order): the right-most
/// address that is not a trusted proxy. Each proxy appends the address it got the
/// request from, so entries to the left of that one are whatever the client wrote.
/// `None` without a usable entry.
fn forwarded_for(headers: &HeaderMap, is_trusted: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut last_proxy = None;
    for entry in entries.into_iter().rev() {
        let Some(ip) = parse_forwarded_ip(entry) else {
            break;
        };
        if !is_trusted(ip) {
            return Some(ip);
        }
        last_proxy = Some(ip);
    }
    last_proxy
}

/// `1.2.3.4`, `2001:db8::1`, and the forms with a port (`1.2.3.4:5`, `[2001:db8::1]:5`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim_matches('"');
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// Whether the first hop of `X-Forwarded-Proto` or `Forwarded` says `https`.
fn forwarded_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn without_a_trusted_proxy_the_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4;proto=https"),
        ]);
        let p = peer(&[], addr("192.0.2.1:5000"), &h);
        assert_eq!(p.client, ip("192.0.2.1"));
        assert!(!p.https && !p.via_proxy);
        let other: IpNet = "10.0.0.1".parse().unwrap();
        let p = peer(&[other], addr("[::ffff:192.0.2.1]:5000"), &h);
        assert_eq!(p.client, ip("192.0.2.1"));
        assert!(!p.https);
        let p = peer(&[], None, &h);
        assert_eq!(p.client, None);
        assert!(!p.https);
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let from = addr("127.0.0.1:1234");
        // The right-most untrusted entry; a client's own entries to its left are not
        // believed.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        let p = peer(&trusted, from, &h);
        assert_eq!(p.client, ip("203.0.113.7"));
        assert!(p.via_proxy && !p.https);
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:443")]);
        assert_eq!(peer(&trusted, from, &h).client, ip("2001:db8::5"));
        // Only proxies, garbage, or nothing: the last proxy or the peer itself.
        let h = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(peer(&trusted, from, &h).client, ip("10.0.0.9"));
        let h = headers(&[("x-forwarded-for", "nonsense")]);
        assert_eq!(peer(&trusted, from, &h).client, ip("127.0.0.1"));
        assert_eq!(
            peer(&trusted, from, &HeaderMap::new()).client,
            ip("127.0.0.1")
        );
        // HTTPS, as either header says for the first hop.
        for h in [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("x-forwarded-proto", "HTTPS, http")]),
            headers(&[("forwarded", "for=1.2.3.4;proto=https")]),
            headers(&[("forwarded", "proto=\"https\", proto=http")]),
        ] {
            assert!(peer(&trusted, from, &h).https, "{h:?}");
        }
        for h in [
            headers(&[("x-forwarded-proto", "http, https")]),
            headers(&[("forwarded", "proto=http, proto=https")]),
            HeaderMap::new(),
        ] {
            assert!(!peer(&trusted, from, &h).https, "{h:?}");
        }
    }
}
