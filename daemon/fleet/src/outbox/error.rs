//! Why the outbox failed, in words an operator can act on.
//!
//! SQLite's result codes are folded into the cases that need different
//! actions: a full disk (free space), an unwritable place (fix the path or its
//! permissions), a missing file (nothing handed over yet), and the rest.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "ticket outbox {path}: the disk is full ({op}); free space there, or lower [fleet] outbox_max_mb"
    )]
    DiskFull { path: PathBuf, op: &'static str },
    #[error(
        "ticket outbox {path} is not writable: {detail}; fix [fleet] outbox or the directory's permissions"
    )]
    Unwritable { path: PathBuf, detail: String },
    #[error(
        "no ticket outbox at {path}: no ticket has been handed over on this box yet, or [fleet] outbox points elsewhere"
    )]
    Missing { path: PathBuf },
    #[error(
        "ticket {id} is {bytes} bytes, over the outbox's per-ticket limit of {limit} (a tenth of [fleet] outbox_max_mb)"
    )]
    TooLarge { id: String, bytes: u64, limit: u64 },
    #[error("ticket outbox {path}: {op} failed: {source}")]
    Database {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

impl OutboxError {
    pub(crate) fn from_sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> OutboxError {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => OutboxError::DiskFull { path, op },
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                OutboxError::Unwritable { path, detail: format!("{op}: {source}") }
            }
            _ => OutboxError::Database { path, op, source },
        }
    }
}
