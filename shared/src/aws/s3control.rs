//! The S3 Control client. S3 Control puts the account id in front of the endpoint's host
//! (`111122223333.s3-control.us-east-1.amazonaws.com`); with an endpoint given as an IP address
//! (a local emulator) that makes names like `111122223333.127.0.0.1`, which no resolver answers.
//! This client's resolver answers names that end in an IPv4 address with that address, and asks
//! the system for everything else. Public DNS has no such names (no top-level domain is
//! numeric), so against AWS it changes nothing.

use std::net::{IpAddr, Ipv4Addr};

use aws_config::SdkConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};

/// An S3 Control client on `config`'s credentials, region and endpoint.
pub fn client(config: &SdkConfig) -> aws_sdk_s3control::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_with_resolver(IpSuffixResolver);
    let conf = aws_sdk_s3control::config::Builder::from(config)
        .http_client(http)
        .build();
    aws_sdk_s3control::Client::from_conf(conf)
}

#[derive(Clone, Debug)]
struct IpSuffixResolver;

impl ResolveDns for IpSuffixResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move {
            if let Some(ip) = ip_suffix(name) {
                return Ok(vec![IpAddr::V4(ip)]);
            }
            let found = tokio::net::lookup_host((name, 0)).await.map_err(ResolveDnsError::new)?;
            Ok(found.map(|a| a.ip()).collect())
        })
    }
}

/// `111122223333.127.0.0.1` → `127.0.0.1`.
fn ip_suffix(name: &str) -> Option<Ipv4Addr> {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    if labels.len() <= 4 {
        return None;
    }
    labels[labels.len() - 4..].join(".").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_ending_in_an_ipv4_address_are_rewritten() {
        assert_eq!(ip_suffix("111122223333.127.0.0.1"), Some(Ipv4Addr::LOCALHOST));
        for name in [
            "127.0.0.1",
            "111122223333.s3-control.us-east-1.amazonaws.com",
            "a.1.2.3",
            "x.1.2.3.256",
        ] {
            assert_eq!(ip_suffix(name), None, "{name}");
        }
    }
}
