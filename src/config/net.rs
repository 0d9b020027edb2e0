//! IP networks as the `trusted_proxy` setting writes them: one address (`10.0.0.1`,
//! `::1`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`), and whether an address is in
//! one. IPv4 addresses written in IPv6's mapped form (`::ffff:10.0.0.1`) count as the
//! IPv4 address, on both sides. Pure data and parsing; no IO.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and how many of its leading bits matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The first address of the network (the bits past `prefix` are zero).
    addr: IpAddr,
    /// The prefix length: at most 32 for IPv4, 128 for IPv6.
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits; `None` when `prefix` is longer
    /// than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let addr = addr.to_canonical();
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= bits).then(|| Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network holding just `addr`.
    pub fn host(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `addr` with the bits past the first `prefix` set to zero.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix.min(32)));
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep.unwrap_or(0)))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix.min(128)));
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep.unwrap_or(0)))
        }
    }
}

/// Why a text is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an IP address or a CIDR block such as 10.0.0.0/8")]
pub struct IpNetError;

impl FromStr for IpNet {
    type Err = IpNetError;

    /// `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`. Bits past the prefix must be zero
    /// (`10.0.0.1/8` is refused: it reads like a mistake).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.split_once('/') {
            None => text.parse().map(Self::host).map_err(|_| IpNetError),
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| IpNetError)?;
                let digits = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit());
                let prefix: u8 = if digits {
                    prefix.parse().map_err(|_| IpNetError)?
                } else {
                    return Err(IpNetError);
                };
                // A mapped IPv4 address's prefix counts the IPv6 bits.
                let prefix = match addr {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() && prefix >= 96 => prefix - 96,
                    _ => prefix,
                };
                let net = Self::new(addr, prefix).ok_or(IpNetError)?;
                if net.addr == addr.to_canonical() {
                    Ok(net)
                } else {
                    Err(IpNetError)
                }
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == host {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_blocks_parse_and_contain() {
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(one.contains(ip("::ffff:127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert_eq!(one.to_string(), "127.0.0.1");
        let block: IpNet = " 10.0.0.0/8 ".parse().unwrap();
        assert!(block.contains(ip("10.255.1.2")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(!block.contains(ip("::a00:1")));
        assert_eq!(block.to_string(), "10.0.0.0/8");
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let mapped: IpNet = "::ffff:192.168.0.0/112".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.168.0.0/16");
        assert!(mapped.contains(ip("192.168.3.4")));
        assert!("::1".parse::<IpNet>().unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_texts_are_refused() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.1/8",
            "::/129",
            "1.2.3.4:80",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(bad.parse::<IpNet>(), Err(IpNetError), "{bad:?}");
        }
    }
}
