//! Which servers a client of this crate may talk to without TLS.
//!
//! Two clients here handle something an attacker on the network path could abuse: the
//! operator CLI sends an API key, and a data-plane node fetches the public keys it will trust
//! (whoever substitutes one can forge any credential). Over plain http both are safe only when
//! the traffic never leaves the machine, so both refuse plain http to any other host unless
//! told so explicitly, and refuse before connecting.
//!
//! Loopback is decided from the URL's host alone, never by resolving a name (a resolver can
//! be told anything): `localhost`, an address in 127.0.0.0/8, or `::1` (IPv4-mapped forms
//! included). Everything else, `0.0.0.0` and private ranges included, is remote.

use std::net::IpAddr;

/// How a URL's server would be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`: encrypted and authenticated.
    Tls,
    /// `http://` to this machine: the traffic never reaches a network.
    LoopbackPlaintext,
    /// `http://` to any other host: readable and alterable on the path.
    RemotePlaintext,
}

/// Why a URL names no server a client can reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("use http://host:port or https://host:port")]
    Scheme,
    #[error("no host in the URL")]
    NoHost,
}

/// Whether `host`, as written in a URL (a name, an IPv4 address, or an IPv6 address in
/// brackets), is this machine for certain.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// How the server of `url` (`http://host:port` or `https://host:port`) would be reached.
pub fn transport(url: &str) -> Result<Transport, EndpointError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| EndpointError::Invalid(e.to_string()))?;
    let https = match uri.scheme() {
        Some(s) if *s == http::uri::Scheme::HTTPS => true,
        Some(s) if *s == http::uri::Scheme::HTTP => false,
        _ => return Err(EndpointError::Scheme),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(EndpointError::NoHost)?;
    Ok(if https {
        Transport::Tls
    } else if is_loopback_host(host) {
        Transport::LoopbackPlaintext
    } else {
        Transport::RemotePlaintext
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_localhost_127_8_and_ipv6_loopback_only() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "[::]",
            "10.0.0.1",
            "192.168.1.1",
            "128.0.0.1",
            "[::2]",
            "[::ffff:10.0.0.1]",
            "localhost.",
            "localhost.example.com",
            "my-localhost",
            "127.0.0.1.nip.io",
            "authcell",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn transport_of_urls() {
        use Transport::*;
        let cases = [
            ("https://authcell.example.com:443", Tls),
            ("HTTPS://10.0.0.1:8443", Tls),
            ("https://127.0.0.1:8443", Tls),
            ("http://127.0.0.1:8080", LoopbackPlaintext),
            ("http://localhost:8080", LoopbackPlaintext),
            ("HTTP://LOCALHOST:8080/", LoopbackPlaintext),
            ("http://[::1]:8080", LoopbackPlaintext),
            ("http://10.255.255.1:1", RemotePlaintext),
            ("http://authcell:8080", RemotePlaintext),
            ("http://0.0.0.0:8080", RemotePlaintext),
            ("http://[2001:db8::1]:8080", RemotePlaintext),
            // The host is what counts, not what comes before an @.
            ("http://127.0.0.1@evil.example.com:8080", RemotePlaintext),
        ];
        for (url, expected) in cases {
            assert_eq!(transport(url), Ok(expected), "{url}");
        }
        assert_eq!(transport("grpc://127.0.0.1:1"), Err(EndpointError::Scheme));
        assert_eq!(transport("127.0.0.1:8080"), Err(EndpointError::Scheme));
        assert!(matches!(
            transport("http://exa mple.com"),
            Err(EndpointError::Invalid(_))
        ));
    }
}
