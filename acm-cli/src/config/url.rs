//! The partner API's base URL: https, a host, an optional port and path, nothing else.
//!
//! Checked here rather than left to the HTTP client, so that a typo refuses `acm serve` at
//! start instead of showing up as a partner that is unreachable for ever.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What is wrong with a partner URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlProblem {
    /// Not `https://…`: the partner API is only spoken over mutual TLS.
    NotHttps,
    /// No host after `https://`.
    NoHost,
    /// The host is neither a DNS name nor an IP address.
    BadHost,
    /// The port is not a number from 1 to 65535.
    BadPort,
    /// The URL carries `user@` credentials; partners authenticate by certificate.
    UserInfo,
    /// The URL has a `?query` or `#fragment`; a base URL has neither.
    QueryOrFragment,
    /// The path holds white space or characters outside visible ASCII.
    BadPath,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHttps => "not an https URL",
            Self::NoHost => "no host in the URL",
            Self::BadHost => "the URL's host is neither a DNS name nor an IP address",
            Self::BadPort => "the URL's port is not a number from 1 to 65535",
            Self::UserInfo => {
                "the URL carries user@ credentials; partners authenticate by certificate"
            }
            Self::QueryOrFragment => "a base URL has no ?query or #fragment",
            Self::BadPath => "the URL's path holds white space or non-ASCII characters",
        })
    }
}

/// Checks `url` and returns it with the scheme and host in lower case and no trailing `/`,
/// so that the API paths can be appended to it.
pub(super) fn https_base(url: &str) -> Result<String, UrlProblem> {
    let rest = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])
        .ok_or(UrlProblem::NotHttps)?;
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::QueryOrFragment);
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(UrlProblem::NoHost);
    }
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<Ipv6Addr>().is_ok()
    } else {
        host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host)
    };
    if !host_ok {
        return Err(UrlProblem::BadHost);
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
    {
        return Err(UrlProblem::BadPort);
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UrlProblem::BadPath);
    }
    let mut base = format!("https://{}", host.to_ascii_lowercase());
    if let Some(port) = port {
        base.push(':');
        base.push_str(port);
    }
    base.push_str(path.trim_end_matches('/'));
    Ok(base)
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlProblem> {
    let after_host = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, tail) = authority.split_at(after_host);
    match tail.strip_prefix(':') {
        None if tail.is_empty() => Ok((host, None)),
        None => Err(UrlProblem::BadHost),
        Some(port) => Ok((host, Some(port))),
    }
}

fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
