//! Each out-of-range setting is refused with its own `ConfigError`, and a server is not opened
//! on it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::{AcmServer, ConfigError, Ports, ServerConfig, ServiceError};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::TwoSystems;
use chrono::Duration;

fn config() -> ServerConfig {
    ServerConfig::new("mc-a.example".parse().unwrap())
}

/// A configuration and the error it must get.
type Case = (ServerConfig, fn(&ConfigError) -> bool);

#[test]
fn every_setting_out_of_range_is_named() {
    let cases: Vec<Case> = vec![
        (
            ServerConfig {
                pending_ttl: Some(Duration::zero()),
                ..config()
            },
            |e| matches!(e, ConfigError::PendingTtlOutOfRange { .. }),
        ),
        (
            ServerConfig {
                send_deadline: Some(Duration::seconds(-1)),
                ..config()
            },
            |e| matches!(e, ConfigError::SendDeadlineOutOfRange { .. }),
        ),
        (
            ServerConfig {
                max_backoff: Duration::days(2),
                ..config()
            },
            |e| matches!(e, ConfigError::MaxBackoffOutOfRange { .. }),
        ),
        (
            ServerConfig {
                refused_retry: Duration::seconds(1),
                ..config()
            },
            |e| matches!(e, ConfigError::RefusedRetryOutOfRange { .. }),
        ),
        (
            ServerConfig {
                send_timeout: Duration::zero(),
                ..config()
            },
            |e| matches!(e, ConfigError::SendTimeoutOutOfRange { .. }),
        ),
        // The claim must outlast a send that may still be answered.
        (
            ServerConfig {
                claim_lease: Duration::seconds(10),
                ..config()
            },
            |e| matches!(e, ConfigError::ClaimLeaseTooShort { .. }),
        ),
        (
            ServerConfig {
                sends_per_partner: 0,
                ..config()
            },
            |e| matches!(e, ConfigError::NoSendsAllowed),
        ),
        (
            ServerConfig {
                partners_at_once: 0,
                ..config()
            },
            |e| matches!(e, ConfigError::NoSendsAllowed),
        ),
        (
            ServerConfig {
                cache_capacity: 0,
                ..config()
            },
            |e| matches!(e, ConfigError::NoCache),
        ),
        (
            ServerConfig {
                home_domains: vec![],
                ..config()
            },
            |e| matches!(e, ConfigError::NoHomeDomain),
        ),
    ];
    assert!(config().validate().is_ok(), "the defaults are in range");
    for (config, is_expected) in cases {
        let error = config.validate().unwrap_err();
        assert!(is_expected(&error), "{error:?}");
    }
}

#[test]
fn a_server_is_not_opened_on_a_bad_configuration() {
    futures_executor::block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let ports = Ports::new(
            sys.a.directory.clone(),
            sys.network.transport(sys.a.id.clone()),
        );
        let bad = ServerConfig {
            claim_lease: Duration::seconds(5),
            ..config()
        };
        let result = AcmServer::open(bad, ports, Arc::new(MemoryAcmStore::new())).await;
        assert!(matches!(
            result,
            Err(ServiceError::Config(ConfigError::ClaimLeaseTooShort { .. }))
        ));
    });
}
