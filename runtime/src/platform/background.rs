//! Background work of a [`Runtime`]: async executions it started, revivals of crashed lock
//! holders, and the periodic collectors.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Mode, Runtime};
use crate::collector::{self, IcConfig, IcReport};
use crate::crash::FaultPlan;
use crate::error::BeldiError;
use crate::gc::{self, GcConfig, GcReport};
use crate::intent;
use crate::remote::Envelope;

/// A periodic background task (intent collector or garbage collector). Stops when dropped.
pub struct BackgroundTask {
    handle: tokio::task::JoinHandle<()>,
    passes: Arc<AtomicU64>,
}

impl BackgroundTask {
    /// Passes completed so far.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::SeqCst)
    }
    /// Stops the task (a pass in progress is abandoned; passes are restartable).
    pub fn stop(self) {}
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Runtime {
    /// Remembers a background execution for [`Runtime::wait_background`], forgetting the
    /// ones that ended (a finished task's handle would keep its memory alive).
    pub(super) fn keep_background(&self, handle: tokio::task::JoinHandle<()>) {
        let mut running = self
            .inner
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if running.len() >= 64 && running.len().is_power_of_two() {
            running.retain(|h| !h.is_finished());
        }
        running.push(handle);
    }

    /// Restarts, in the background, the instance that would finish `instance` of
    /// `function` if nothing runs it any more: the instance itself if it is a root or was
    /// started asynchronously, else the nearest such caller up its chain of sync callers.
    /// A contender for a lock held by a crashed transaction asks for this, so the lock is
    /// freed now rather than when the intent collector restarts the holder. Only on the
    /// local platform (with a remote, the hosting processes' collectors do it); nothing if
    /// an execution of it runs in this process. (If one runs in another process, this adds
    /// a concurrent duplicate, which the protocol makes harmless.)
    pub(crate) fn revive(&self, function: &str, instance: &str) {
        // (`rerun` below does the work; a revival does not wait for it.)
        if self.has_remote() || self.inner.config.mode == Mode::Baseline {
            return;
        }
        let (rt, f, i) = (self.clone(), function.to_owned(), instance.to_owned());
        let handle = tokio::spawn(async move {
            if let Err(e) = rt.rerun(&f, &i).await {
                tracing::debug!("revived instance {i} of {f} did not finish: {e}");
            }
        });
        self.keep_background(handle);
    }

    /// Re-runs `instance` of `function` now, as the intent collector would, and waits for
    /// it: if it was called synchronously, the nearest caller up its chain that was started
    /// asynchronously (or is a root) is re-run instead, since that execution is what
    /// finishes the callee. The operator's "re-run" (`beldi rerun`); also what a revival
    /// does in the background.
    pub async fn rerun(&self, function: &str, instance: &str) -> Result<Rerun, BeldiError> {
        let (mut f, mut i) = (function.to_owned(), instance.to_owned());
        for _hop in 0..32 {
            if self.is_running_here(&f, &i) {
                return Ok(Rerun::RunningHere {
                    function: f,
                    instance: i,
                });
            }
            let table = self.tables(&f)?.intent();
            let Some(it) = intent::get(&**self.store(), &table, &i).await? else {
                return Ok(Rerun::NotStarted {
                    function: f,
                    instance: i,
                });
            };
            if it.done {
                return Ok(Rerun::Done {
                    function: f,
                    instance: i,
                });
            }
            match &it.caller {
                Some(c) if !c.is_async => (f, i) = (c.function.clone(), c.instance.clone()),
                _ => {
                    let platform = self.handle();
                    return match collector::claim_rerun(
                        &platform,
                        &f,
                        &table,
                        it,
                        FaultPlan::none(),
                    )
                    .await?
                    {
                        Some(run) => {
                            run.await?;
                            Ok(Rerun::Finished {
                                function: f,
                                instance: i,
                            })
                        }
                        None => Ok(Rerun::Claimed {
                            function: f,
                            instance: i,
                        }),
                    };
                }
            }
        }
        Ok(Rerun::NotStarted {
            function: f,
            instance: i,
        })
    }

    /// Whether every asynchronous execution started so far has ended.
    pub fn background_idle(&self) -> bool {
        self.inner
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .all(|h| h.is_finished())
    }

    /// Waits until every asynchronous execution started so far has ended (finished or
    /// crashed).
    pub async fn wait_background(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(
                &mut *self
                    .inner
                    .background
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }

    fn periodic<F, Fut>(&self, every: Duration, what: &'static str, pass: F) -> BackgroundTask
    where
        F: Fn(Runtime) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BeldiError>> + Send + 'static,
    {
        let passes = Arc::new(AtomicU64::new(0));
        let (rt, count) = (self.clone(), passes.clone());
        let handle = tokio::spawn(async move {
            loop {
                if let Err(e) = pass(rt.clone()).await {
                    tracing::warn!("{what} pass failed (will run again): {e}");
                }
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(every).await;
            }
        });
        BackgroundTask { handle, passes }
    }

    /// Runs the intent collector every `every` in the background.
    pub fn spawn_intent_collector(
        &self,
        cfg: IcConfig,
        every: Duration,
    ) -> Result<BackgroundTask, BeldiError> {
        cfg.validate(&self.longest_timeout())?;
        Ok(self.periodic(every, "intent collector", move |rt| {
            let cfg = cfg.clone();
            async move { rt.collect_intents(&cfg).await.map(|_| ()) }
        }))
    }

    /// Runs one pass of the intent collector now.
    /// (Nothing to do in baseline mode: there are no intents.) With a remote
    /// ([`Runtime::set_remote`]), the pass runs where the functions are, as the scheduled
    /// collector function would.
    pub async fn collect_intents(&self, cfg: &IcConfig) -> Result<IcReport, BeldiError> {
        if self.inner.config.mode == Mode::Baseline {
            return Ok(IcReport::default());
        }
        if let Some(remote) = self.remote() {
            let envelope = Envelope::Ic {
                restart_after_secs: Some(cfg.restart_after.as_secs()),
            };
            let reply = remote.send(&envelope).await?;
            return crate::remote::ic_report(&reply.into_result("intent collector")?);
        }
        self.collect_intents_here(cfg).await
    }

    /// One pass of the intent collector in this process (never forwarded).
    pub(super) async fn collect_intents_here(
        &self,
        cfg: &IcConfig,
    ) -> Result<IcReport, BeldiError> {
        collector::run_pass(&self.handle(), cfg).await
    }

    /// Runs the garbage collector every `every` in the background. Its windows must be safe
    /// for this runtime's timeout and async queue age ([`GcConfig::validate`]).
    pub fn spawn_garbage_collector(
        &self,
        cfg: GcConfig,
        every: Duration,
    ) -> Result<BackgroundTask, BeldiError> {
        cfg.validate(&self.longest_timeout(), self.inner.config.max_queue_age)?;
        Ok(self.periodic(every, "garbage collector", move |rt| {
            let cfg = cfg.clone();
            async move { rt.collect_garbage(&cfg).await.map(|_| ()) }
        }))
    }

    /// Runs one pass of the garbage collector now, with the windows given (not validated:
    /// tests and tools may use short ones on purpose).
    /// (Nothing to do in baseline mode: there are no logs.)
    pub async fn collect_garbage(&self, cfg: &GcConfig) -> Result<GcReport, BeldiError> {
        if self.inner.config.mode == Mode::Baseline {
            return Ok(GcReport::default());
        }
        gc::run_pass(&self.handle(), cfg).await
    }
}

/// What [`Runtime::rerun`] did, naming the instance it acted on (the one asked for, or the
/// caller up its chain that finishes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rerun {
    /// It re-ran the instance, and that execution finished it.
    Finished {
        /// The function re-run.
        function: String,
        /// The instance re-run.
        instance: String,
    },
    /// It was already done: nothing ran.
    Done {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
    /// An execution of it runs in this process now: nothing else ran.
    RunningHere {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
    /// Someone else (the collector, another operator) restarted it meanwhile.
    Claimed {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
    /// It has no intent (never started, or collected).
    NotStarted {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
}
