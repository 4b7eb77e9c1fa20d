//! Commit statistics: how requests were grouped into commits and how many WAL syncs
//! acknowledged them, counted by the writer and syncer threads ([`Histogram`]) and reported
//! as [`CommitStats`].

/// Counts of commit groups by size, and of WAL syncs.
#[derive(Default)]
pub(super) struct Histogram {
    /// `by_size[n]`: groups of `n` requests.
    pub(super) by_size: Vec<u64>,
    /// fsyncs of the WAL made by the syncer.
    pub(super) syncs: u64,
}

/// How requests were grouped into commits since the store was opened, as
/// [`super::EmbeddedStore::commit_stats`] reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits (groups) made.
    pub groups: u64,
    /// Write requests committed or answered in them.
    pub requests: u64,
    /// fsyncs of the WAL that acknowledged groups ([`super::Durability::Fsync`]; 0 under
    /// [`super::Durability::ProcessCrash`]).
    pub syncs: u64,
    /// `by_size[n]`: groups of `n` requests.
    pub(super) by_size: Vec<u64>,
}

impl CommitStats {
    /// Mean requests per group (0 when there was none).
    pub fn mean_group(&self) -> f64 {
        if self.groups == 0 {
            0.0
        } else {
            self.requests as f64 / self.groups as f64
        }
    }

    /// The group size at quantile `q` (0..=1) of groups, e.g. `0.99` for the p99.
    pub fn group_quantile(&self, q: f64) -> usize {
        let want = (q.clamp(0.0, 1.0) * self.groups as f64).ceil() as u64;
        let mut seen = 0;
        for (size, n) in self.by_size.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return size;
            }
        }
        0
    }

    /// Mean requests acknowledged per fsync (0 when there was none).
    pub fn mean_per_sync(&self) -> f64 {
        if self.syncs == 0 {
            0.0
        } else {
            self.requests as f64 / self.syncs as f64
        }
    }

    /// The groups made after `earlier` was taken (from the same store).
    pub fn since(&self, earlier: &CommitStats) -> CommitStats {
        CommitStats::from_sizes(
            self.by_size
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(earlier.by_size.get(i).copied().unwrap_or(0)))
                .collect(),
            self.syncs.saturating_sub(earlier.syncs),
        )
    }

    pub(super) fn from_sizes(by_size: Vec<u64>, syncs: u64) -> CommitStats {
        CommitStats {
            syncs,
            groups: by_size.iter().sum(),
            requests: by_size
                .iter()
                .enumerate()
                .map(|(size, n)| size as u64 * n)
                .sum(),
            by_size,
        }
    }

    /// The largest group.
    pub fn max_group(&self) -> usize {
        self.by_size.iter().rposition(|n| *n > 0).unwrap_or(0)
    }
}
