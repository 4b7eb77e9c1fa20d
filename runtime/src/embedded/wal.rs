//! The WAL file that acknowledges committed groups under [`super::Durability::Fsync`]:
//! synced by the syncer thread, or by the writer itself (see `writer.rs`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::stats::Histogram;
use super::writer::GroupFailure;

/// The WAL file, to sync (opened on first use, again after a failure), and where syncs
/// are counted.
pub(super) struct Wal {
    path: PathBuf,
    file: Option<File>,
    stats: Arc<Mutex<Histogram>>,
}

impl Wal {
    /// The WAL file at `path`, not opened yet; its syncs are counted in `stats`.
    pub(super) fn new(path: PathBuf, stats: Arc<Mutex<Histogram>>) -> Wal {
        Wal {
            path,
            file: None,
            stats,
        }
    }

    /// Syncs the WAL file's data to disk (the first time, also its directory entry) and
    /// counts the sync; after a failure the file is opened again next time.
    pub(super) fn sync(&mut self) -> Result<(), GroupFailure> {
        let outcome = self.sync_file();
        if outcome.is_err() {
            self.file = None;
        } else if let Ok(mut h) = self.stats.lock() {
            h.syncs += 1;
        }
        outcome
    }

    fn sync_file(&mut self) -> Result<(), GroupFailure> {
        let path = &self.path;
        let failed = |what: &str, e: std::io::Error| GroupFailure {
            message: format!(
                "embedded store: {what} {}: {e} (the write is committed but may not be durable)",
                path.display()
            ),
            busy: false,
        };
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = File::open(path).map_err(|e| failed("cannot open the WAL", e))?;
                if let Some(dir) = path.parent() {
                    File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| failed("cannot sync the directory of the WAL", e))?;
                }
                self.file.insert(f)
            }
        };
        file.sync_data()
            .map_err(|e| failed("cannot sync the WAL", e))
    }
}
