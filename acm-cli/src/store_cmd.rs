//! `acm store`: looking after an ACM server's SQLite store.

use std::path::PathBuf;

use acm_core::chain;
use clap::Subcommand;

use crate::Failure;

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Copy a store into a new file, safely beside its running server (one read transaction,
    /// no lock taken, nothing left beside it), then verify the copy's hash chain. Never
    /// overwrites; a plain copy of a live store's `.db` misses what is in its `-wal`.
    Backup {
        /// The store's database file.
        src: PathBuf,
        /// The new file (it must not exist).
        dst: PathBuf,
    },
}

pub fn run(command: &StoreCmd) -> Result<(), Failure> {
    match command {
        StoreCmd::Backup { src, dst } => {
            let report = acm_store_sqlite::backup_file(src, dst).map_err(|e| match e {
                // The copy was made but does not verify: the source's log is broken.
                acm_store_sqlite::BackupError::CopyBroken { .. } => Failure::Broken(e.to_string()),
                _ => Failure::Open(e.to_string()),
            })?;
            let head = chain::to_hex(&report.head);
            println!(
                "backed up {} to {}: {} event{}, hash chain intact, head {head}",
                src.display(),
                dst.display(),
                report.events,
                if report.events == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}
