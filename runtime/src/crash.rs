//! Fault injection for instances: crash before or after a chosen logged step, before the
//! result is recorded, or at random with a seed. A crash drops the running body at once
//! (its in-memory state is lost, as when a Lambda dies); everything already acknowledged by
//! the store stays. Store-level faults (throttling, lost responses) are in [`crate::faulty`].

/// Where an instance crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// When the logged operation with this step starts, before it touches the store.
    Before(u64),
    /// After the logged operation with this step is durable, before its result is returned.
    After(u64),
    /// Inside the operation with this step, between its durable parts: for a sync call,
    /// after the callee returned and before the caller logs the result; for an async call,
    /// after the call is logged and before the callee's intent is created.
    Inside(u64),
    /// Inside the operation with this step, after it made the log records deferred before
    /// it durable on their own and before its own effect (a call, a spawn, a side effect, a
    /// transaction step: see [`crate::deferred`]). Reached only when there were any.
    Flushed(u64),
    /// After the body returned, before its result is recorded in the intent.
    BeforeDone,
}

impl CrashPoint {
    /// The step it is at (`None`: before the result is recorded).
    pub fn step(&self) -> Option<u64> {
        match self {
            CrashPoint::Before(s)
            | CrashPoint::After(s)
            | CrashPoint::Inside(s)
            | CrashPoint::Flushed(s) => Some(*s),
            CrashPoint::BeforeDone => None,
        }
    }
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrashPoint::Before(s) => write!(f, "before step {s}"),
            CrashPoint::After(s) => write!(f, "after step {s}"),
            CrashPoint::Inside(s) => write!(f, "inside step {s}"),
            CrashPoint::Flushed(s) => write!(f, "after the deferred log before step {s}"),
            CrashPoint::BeforeDone => write!(f, "before the result is recorded"),
        }
    }
}

/// Which crashes to inject into one execution of an instance. The plan travels with every
/// invocation the instance makes, so it also reaches callees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Crash at exactly this point: of the instance with this id, or (`None`) of every
    /// instance the plan reaches.
    pub crash_at: Option<(Option<String>, CrashPoint)>,
    /// Crash at each point with this probability, decided by a hash of the seed, the
    /// instance, the attempt and the point (so concurrent instances stay reproducible).
    pub random: Option<RandomCrashes>,
    /// Pause execution `attempt` of instance `instance` at this point until the gate
    /// opens: makes a lagging duplicate that resumes after the others moved on.
    pub pause_at: Option<Pause>,
}

/// Where a [`FaultPlan`] pauses an execution, and the gate it waits for.
#[derive(Clone, Debug, PartialEq)]
pub struct Pause {
    /// The instance.
    pub instance: String,
    /// Its execution (the `attempt` number the execution runs under).
    pub attempt: u32,
    /// The point.
    pub point: CrashPoint,
    /// What it waits for.
    pub gate: Gate,
}

/// A gate paused executions wait at until it is opened (once, for good). Cheap to clone;
/// clones are the same gate.
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<GateInner>);

#[derive(Default)]
struct GateInner {
    open: std::sync::atomic::AtomicBool,
    reached: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }
    /// Opens the gate: every execution waiting at it goes on, and none waits again.
    pub fn open(&self) {
        self.0.open.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
    /// Whether an execution reached the gate.
    pub fn reached(&self) -> bool {
        self.0.reached.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Waits until the gate is open.
    pub async fn wait(&self) {
        self.0
            .reached
            .store(true, std::sync::atomic::Ordering::SeqCst);
        loop {
            let notified = self.0.notify.notified();
            if self.0.open.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.open.load(std::sync::atomic::Ordering::SeqCst);
        write!(f, "Gate({})", if open { "open" } else { "closed" })
    }
}

/// Random crashes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomCrashes {
    /// The seed.
    pub seed: u64,
    /// Probability of a crash at each point, 0–1.
    pub probability: f64,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }
    /// Crash at `point`, in every instance the plan reaches.
    pub fn crash_at(point: CrashPoint) -> FaultPlan {
        FaultPlan {
            crash_at: Some((None, point)),
            ..FaultPlan::default()
        }
    }
    /// Crash at `point` of instance `instance` only.
    pub fn crash_instance(instance: impl Into<String>, point: CrashPoint) -> FaultPlan {
        FaultPlan {
            crash_at: Some((Some(instance.into()), point)),
            ..FaultPlan::default()
        }
    }
    /// Crash at random.
    pub fn random(seed: u64, probability: f64) -> FaultPlan {
        FaultPlan {
            random: Some(RandomCrashes { seed, probability }),
            ..FaultPlan::default()
        }
    }

    /// Pause execution `attempt` of `instance` at `point` until `gate` opens.
    pub fn pause(
        instance: impl Into<String>,
        attempt: u32,
        point: CrashPoint,
        gate: Gate,
    ) -> FaultPlan {
        FaultPlan {
            pause_at: Some(Pause {
                instance: instance.into(),
                attempt,
                point,
                gate,
            }),
            ..FaultPlan::default()
        }
    }

    /// The gate execution `attempt` of `instance` waits at, at `point`, if any.
    pub fn pauses(&self, instance: &str, attempt: u32, point: CrashPoint) -> Option<&Gate> {
        self.pause_at
            .as_ref()
            .filter(|p| p.instance == instance && p.attempt == attempt && p.point == point)
            .map(|p| &p.gate)
    }

    /// Whether execution `attempt` of `instance` crashes at `point`.
    pub fn crashes(&self, instance: &str, attempt: u32, point: CrashPoint) -> bool {
        if let Some((target, p)) = &self.crash_at
            && *p == point
            && target.as_deref().is_none_or(|t| t == instance)
        {
            return true;
        }
        let Some(r) = self.random else { return false };
        if r.probability <= 0.0 {
            return false;
        }
        let (kind, step) = match point {
            CrashPoint::Before(s) => (1u64, s),
            CrashPoint::After(s) => (2, s),
            CrashPoint::BeforeDone => (3, 0),
            CrashPoint::Inside(s) => (4, s),
            CrashPoint::Flushed(s) => (5, s),
        };
        let mut h = fnv(r.seed, instance.as_bytes());
        h = fnv(h, &attempt.to_le_bytes());
        h = fnv(h, &kind.to_le_bytes());
        h = fnv(h, &step.to_le_bytes());
        // splitmix64 finalizer for a uniform value.
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58476d1ce4e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d049bb133111eb);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64 <= r.probability
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    if h == 0 {
        h = 0xcbf29ce484222325;
    }
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_crashes_are_reproducible_and_near_the_rate() {
        let plan = FaultPlan::random(7, 0.25);
        let hits = (0..4000)
            .filter(|s| plan.crashes("inst", 0, CrashPoint::Before(*s)))
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
        let again = (0..4000)
            .filter(|s| plan.crashes("inst", 0, CrashPoint::Before(*s)))
            .count();
        assert_eq!(hits, again);
        assert!(FaultPlan::crash_at(CrashPoint::After(3)).crashes("i", 0, CrashPoint::After(3)));
        assert!(!FaultPlan::none().crashes("i", 0, CrashPoint::After(3)));
    }
}
