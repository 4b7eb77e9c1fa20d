//! What the three applications share: which one, its workload, its requests, and the
//! invariants its checker reports.

use std::collections::BTreeMap;

use beldi::platform::Registration;
use beldi::prelude::*;
use beldi::store::AttrValue;
use rand::{Rng as _, SeedableRng};
use serde::de::DeserializeOwned;

use crate::{movie, social, travel};

/// One of the paper's applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    /// Movie review: compose-review with a parallel fan-out and an async fan-in.
    Movie,
    /// Travel reservation: search, recommend, login and the reserve transaction.
    Travel,
    /// Social media: compose-post with mentions, URL shortening, timelines.
    Social,
}

/// The request mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// The paper's: travel 60% search, 39% recommend, 0.5% login, 0.5% reserve; movie and
    /// social 100% compose.
    Paper,
    /// Travel only: reservations only.
    ReserveHeavy,
}

/// What a run issues: requests `0..requests`, each generated from the seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workload {
    /// Seed of the data set, the requests and the crash injection.
    pub seed: u64,
    /// Number of requests.
    pub requests: u32,
    /// The mix.
    pub mix: Mix,
    /// Travel: hotels and flights reservations spread over (fewer: more contention).
    pub targets: usize,
}

/// One client request: which function, as which instance, with what input.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The request type, for the summary.
    pub kind: &'static str,
    /// The function it invokes.
    pub function: &'static str,
    /// Its instance id (stable: a resumed run issues the same ids).
    pub instance: String,
    /// Its input.
    pub input: AttrValue,
}

impl Request {
    /// Request `instance` of `function` with input `input`.
    pub fn new<T: serde::Serialize>(
        kind: &'static str,
        function: &'static str,
        instance: String,
        input: &T,
    ) -> Result<Request, BeldiError> {
        Ok(Request {
            kind,
            function,
            input: beldi::value::to_attr(input, &format!("input of {instance}"))?,
            instance,
        })
    }
}

/// One invariant and the violations found, each naming the offending keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Invariant {
    /// What must hold.
    pub name: &'static str,
    /// What does not.
    pub violations: Vec<String>,
}

impl Invariant {
    /// An invariant with no violation yet.
    pub fn new(name: &'static str) -> Invariant {
        Invariant {
            name,
            violations: Vec::new(),
        }
    }
    /// Records a violation.
    pub fn fail(&mut self, violation: String) {
        self.violations.push(violation);
    }
    /// Whether it holds.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }
}

impl App {
    /// Every application.
    pub const ALL: [App; 3] = [App::Movie, App::Travel, App::Social];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            App::Movie => "movie",
            App::Travel => "travel",
            App::Social => "social",
        }
    }

    /// Whether a declared function belongs to this application.
    pub fn owns(self, r: &Registration) -> bool {
        r.path
            .starts_with(&format!("beldi_examples::{}::", self.name()))
    }

    /// Registers the application's functions on `rt`; returns how many.
    pub fn register(self, rt: &Runtime) -> Result<usize, BeldiError> {
        rt.register_where(|r| self.owns(r))
    }

    /// Creates the tables of the registered functions and loads the data set (idempotent:
    /// a resumed run loads nothing twice).
    pub async fn install(self, rt: &Runtime, seed: u64) -> Result<(), BeldiError> {
        rt.provision().await?;
        match self {
            App::Movie => movie::load(rt, seed).await,
            App::Travel => Ok(()), // generated from the ids
            App::Social => social::load(rt, seed).await,
        }
    }

    /// Checks that `w` makes sense for this application.
    pub fn validate(self, w: &Workload) -> Result<(), String> {
        if w.mix == Mix::ReserveHeavy && self != App::Travel {
            return Err(format!(
                "--mix reserve-heavy applies to the travel app only, not to {}",
                self.name()
            ));
        }
        if w.targets == 0 || w.targets > travel::HOTELS.min(travel::FLIGHTS) {
            return Err(format!(
                "--targets must be between 1 and {}, got {}",
                travel::HOTELS.min(travel::FLIGHTS),
                w.targets
            ));
        }
        Ok(())
    }

    /// Request `i` of workload `w`.
    pub fn request(self, w: &Workload, i: u32) -> Result<Request, BeldiError> {
        match self {
            App::Movie => {
                let req = movie::request(w.seed, i);
                Request::new(
                    "compose-review",
                    movie::compose_review.name(),
                    req.req_id.clone(),
                    &req,
                )
            }
            App::Travel => travel::request(w, i),
            App::Social => {
                let req = social::request(w.seed, i);
                Request::new(
                    "compose-post",
                    social::compose_post.name(),
                    req.req_id.clone(),
                    &req,
                )
            }
        }
    }

    /// Checks the invariants once every request of `w` has finished and the runtime is
    /// quiet.
    pub async fn check(self, rt: &Runtime, w: &Workload) -> Result<Vec<Invariant>, BeldiError> {
        match self {
            App::Movie => movie::check(rt, w.seed, w.requests).await,
            App::Travel => travel::check(rt).await,
            App::Social => social::check(rt, w.seed, w.requests).await,
        }
    }
}

/// Every current value of a data table, decoded.
pub async fn values<T: DeserializeOwned>(
    rt: &Runtime,
    function: &str,
    table: &str,
) -> Result<BTreeMap<String, T>, BeldiError> {
    let mut out = BTreeMap::new();
    for (k, v) in beldi::data::current_values(rt, function, table).await? {
        let decoded = beldi::value::from_attr(&v, &format!("{function}/{table}/{k}"))?;
        out.insert(k, decoded);
    }
    Ok(out)
}

/// A deterministic random stream for one purpose of one run: the same seed and label give
/// the same values on every machine.
pub struct Rng(rand::rngs::SmallRng);

impl Rng {
    /// The stream `label` of `seed`.
    pub fn new(seed: u64, label: &str) -> Rng {
        let mut h: u64 = 0xcbf29ce484222325 ^ seed.wrapping_mul(0x9e3779b97f4a7c15);
        for b in label.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        Rng(rand::rngs::SmallRng::seed_from_u64(h))
    }
    /// Uniform in `0..n` (`n` ≥ 1).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n.max(1))
    }
    /// `len` random letters and digits.
    pub fn text(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len())] as char)
            .collect()
    }
    /// `len` random digits.
    pub fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}
