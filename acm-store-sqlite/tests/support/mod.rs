//! A store in a temporary directory that lives as long as the store.
#![allow(dead_code)]

use acm_core::store::DomainEvent;
use acm_core::testkit::intercept::{Intercepted, Passthrough};
use acm_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A [`SqliteStore`] (`inner`) whose directory is removed when it is dropped.
pub type TempStore<E> = Intercepted<SqliteStore<E>, Passthrough<TempDir>>;

/// A new store in a new temporary directory.
pub fn temp_store<E: DomainEvent>() -> TempStore<E> {
    temp_store_with(SqliteOptions::default())
}

/// A new store with `options` in a new temporary directory.
pub fn temp_store_with<E: DomainEvent>(options: SqliteOptions<E>) -> TempStore<E> {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open_with(dir.path().join("acm.db"), options).unwrap();
    Intercepted {
        inner,
        how: Passthrough(dir),
    }
}
