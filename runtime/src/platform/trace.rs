//! What a [`Runtime`] records for tools: the executions it finished (for the explorer) and
//! the crashes it injected.

use std::sync::atomic::Ordering;

use super::Runtime;
use crate::schema::StepKind;

/// A finished execution recorded by [`Runtime::start_trace`].
#[derive(Clone, Debug, PartialEq)]
pub struct TracedExecution {
    /// The function.
    pub function: String,
    /// The instance.
    pub instance: String,
    /// Its logged operations: step and kind, in step order.
    pub ops: Vec<(u64, StepKind)>,
    /// The steps that made deferred log records durable on their own before their effect
    /// (where [`CrashPoint::Flushed`](crate::crash::CrashPoint::Flushed) can strike).
    pub flushed: Vec<u64>,
}

impl Runtime {
    /// Crashes injected into executions of this runtime so far.
    pub fn injected_crashes(&self) -> u64 {
        self.inner.crashes.load(Ordering::SeqCst)
    }

    /// Starts recording every finished execution (for the explorer).
    pub fn start_trace(&self) {
        *self.inner.trace.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The executions recorded since [`Runtime::start_trace`].
    pub fn take_trace(&self) -> Vec<TracedExecution> {
        self.inner
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }

    /// Records a finished execution, if tracing.
    pub(super) fn record_trace(
        &self,
        function: &str,
        instance: &str,
        ops: Vec<(u64, StepKind)>,
        flushed: Vec<u64>,
    ) {
        if let Some(trace) = self
            .inner
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            trace.push(TracedExecution {
                function: function.to_owned(),
                instance: instance.to_owned(),
                ops,
                flushed,
            });
        }
    }
}
