//! A vendor id source that breaks its promise (a UUID that is not version 7) gets a typed
//! error and records nothing; it never panics the server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::{AcmServer, EventStore, IdSource, Ports, ServerConfig, ServiceError, Target};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::{TwoSystems, alice, bob, provision};

struct V4Ids;

impl IdSource for V4Ids {
    fn next_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef)
    }
}

#[test]
fn a_non_v7_id_source_is_an_error_not_a_panic() {
    futures_executor::block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let store = Arc::new(MemoryAcmStore::new());
        let ports = Ports::builder(
            sys.a.directory.clone(),
            sys.network.transport(sys.a.id.clone()),
        )
        .ids(Arc::new(V4Ids))
        .build();
        let server = AcmServer::open(ServerConfig::new(sys.a.id.clone()), ports, store.clone())
            .await
            .unwrap();
        let result = server
            .submit(&alice(), provision(Target::User(bob()), 1))
            .await;
        assert!(
            matches!(&result, Err(ServiceError::Ids(e)) if e.uuid.get_version_num() == 4),
            "{result:?}"
        );
        assert_eq!(store.head().await.unwrap().0, 0, "nothing recorded");
    });
}
