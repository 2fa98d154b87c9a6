//! `acm store`: looking after an ACM server's SQLite store.

use std::fmt::Write;
use std::path::PathBuf;

use clap::Subcommand;

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

pub fn run(command: &StoreCmd) -> Result<(), String> {
    match command {
        StoreCmd::Backup { src, dst } => {
            let report = acm_store_sqlite::backup_file(src, dst).map_err(|e| e.to_string())?;
            let head = report.head.iter().fold(String::new(), |mut hex, b| {
                let _ = write!(hex, "{b:02x}");
                hex
            });
            println!(
                "backed up {} to {}: {} events, hash chain intact, head {head}",
                src.display(),
                dst.display(),
                report.events
            );
        }
    }
    Ok(())
}
