//! Movie review (DeathStarBench media), after the paper's port.
//!
//! `compose_review` (the frontend) registers the request with the compose-review service
//! `compose`, then calls `review_id`, `user_id`, `movie_id` and `text` **in parallel**; each
//! reports its part to `compose` asynchronously (`movie_id` also starts `rating`, which
//! reports the rating). `compose` records the part and counts it; the one that sees the fifth part wins a
//! conditional write and starts `store_review`, `user_review` and `movie_review`, which store
//! the review and append its id to the user's and the movie's review lists.
//!
//! Data set ([`load`]): [`USERS`] users `username_<i>` and [`MOVIES`] movies with titles
//! generated from the seed. Requests ([`request`]): 100% compose, user, title and rating
//! uniform, 256 characters of text.
//!
//! Departures from the prototype, and why: the request row is kept (marked `emitted`)
//! instead of deleted, so the checker can see that every counter ended at exactly 5; two
//! parts that both read the counter at 5 (the prototype's race) cannot both emit the review,
//! because emitting is a conditional write; the review lists really append.

use std::collections::{BTreeMap, BTreeSet};

use beldi::prelude::*;
use beldi::store::AttrValue;
use serde::{Deserialize, Serialize};

use crate::app::{Invariant, Rng, values};

/// Users in the data set.
pub const USERS: usize = 1000;
/// Movies in the data set.
pub const MOVIES: usize = 1000;
/// Parts every review is made of.
pub const PARTS: i64 = 5;

/// A compose-review request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ComposeReq {
    /// The request id (unique per request).
    pub req_id: String,
    /// Who writes the review.
    pub username: String,
    /// The movie's title.
    pub title: String,
    /// 0–10.
    pub rating: i64,
    /// The review's text.
    pub text: String,
}

/// One part of a review, reported to `compose`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum PartValue {
    /// The review's id.
    ReviewId(String),
    /// The author's user id.
    UserId(String),
    /// The movie's id.
    MovieId(String),
    /// The text.
    Text(String),
    /// The rating.
    Rating(i64),
}

/// A part of request `req_id`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Part {
    /// The request.
    pub req_id: String,
    /// The part.
    pub value: PartValue,
}

/// The row of a request in progress: its parts so far and how many arrived.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Pending {
    /// Parts received.
    pub counter: i64,
    /// Set once the review was emitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emitted: Option<bool>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_id: Option<String>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movie_id: Option<String>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[allow(missing_docs)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
}

/// A stored review.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Review {
    /// Its id.
    pub review_id: String,
    /// The request that composed it.
    pub req_id: String,
    /// The author.
    pub user_id: String,
    /// The movie.
    pub movie_id: String,
    /// The text.
    pub text: String,
    /// The rating.
    pub rating: i64,
}

/// The frontend: registers the request, then gathers its parts in parallel.
#[beldi::function]
pub async fn compose_review(ctx: &Ctx, req: ComposeReq) -> Result<(), UserError> {
    compose
        .call(ctx, &Upload::Req(req.req_id.clone()))
        .await??;
    let (a, b, c, d) = tokio::join!(
        review_id.call(ctx, &req.req_id),
        user_id.call(ctx, &(req.req_id.clone(), req.username.clone())),
        movie_id.call(ctx, &(req.req_id.clone(), req.title.clone(), req.rating)),
        text.call(ctx, &(req.req_id.clone(), req.text.clone())),
    );
    a??;
    b??;
    c??;
    d??;
    Ok(())
}

/// What the compose-review service is asked to do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Upload {
    /// Register a request, with no parts yet.
    Req(String),
    /// Record a part of a request.
    Part(Part),
}

/// Makes the review's id (a logged UUID).
#[beldi::function]
pub async fn review_id(ctx: &Ctx, req_id: String) -> Result<(), UserError> {
    let id = ctx.uuid().await?.to_string();
    let part = Part {
        req_id,
        value: PartValue::ReviewId(id),
    };
    compose.spawn(ctx, &Upload::Part(part)).await?;
    Ok(())
}

/// Looks the author up.
#[beldi::function(tables = ["users"])]
pub async fn user_id(ctx: &Ctx, req: (String, String)) -> Result<(), UserError> {
    let (req_id, username) = req;
    let Some(id) = ctx.read_as::<String>("users", &username).await? else {
        return Err(UserError(format!("no user named {username:?}")));
    };
    let part = Part {
        req_id,
        value: PartValue::UserId(id),
    };
    compose.spawn(ctx, &Upload::Part(part)).await?;
    Ok(())
}

/// Looks the movie up, and has the rating recorded.
#[beldi::function(tables = ["movies"])]
pub async fn movie_id(ctx: &Ctx, req: (String, String, i64)) -> Result<(), UserError> {
    let (req_id, title, stars) = req;
    let Some(id) = ctx.read_as::<String>("movies", &title).await? else {
        return Err(UserError(format!("no movie titled {title:?}")));
    };
    let part = Part {
        req_id: req_id.clone(),
        value: PartValue::MovieId(id),
    };
    compose.spawn(ctx, &Upload::Part(part)).await?;
    rating.spawn(ctx, &(req_id, stars)).await?;
    Ok(())
}

/// Checks and reports the rating.
#[beldi::function]
pub async fn rating(ctx: &Ctx, req: (String, i64)) -> Result<(), UserError> {
    let (req_id, stars) = req;
    let part = Part {
        req_id,
        value: PartValue::Rating(stars.clamp(0, 10)),
    };
    compose.spawn(ctx, &Upload::Part(part)).await?;
    Ok(())
}

/// Reports the text.
#[beldi::function]
pub async fn text(ctx: &Ctx, req: (String, String)) -> Result<(), UserError> {
    let (req_id, body) = req;
    let part = Part {
        req_id,
        value: PartValue::Text(body),
    };
    compose.spawn(ctx, &Upload::Part(part)).await?;
    Ok(())
}

/// The compose-review service (one function, as in the prototype, so its request rows are
/// in one table): registers a request, or records one part of it — and the part that
/// completes the review emits it, once.
#[beldi::function(tables = ["requests"])]
pub async fn compose(ctx: &Ctx, op: Upload) -> Result<(), UserError> {
    let part = match op {
        Upload::Req(req_id) => {
            ctx.write_as("requests", &req_id, &Pending::default())
                .await?;
            return Ok(());
        }
        Upload::Part(part) => part,
    };
    let (field, value) = match &part.value {
        PartValue::ReviewId(v) => ("review_id", AttrValue::from(v.as_str())),
        PartValue::UserId(v) => ("user_id", AttrValue::from(v.as_str())),
        PartValue::MovieId(v) => ("movie_id", AttrValue::from(v.as_str())),
        PartValue::Text(v) => ("text", AttrValue::from(v.as_str())),
        PartValue::Rating(v) => ("rating", AttrValue::from(*v)),
    };
    let counted = vec![
        UpdateAction::set(Path::attr(field), value),
        UpdateAction::add(Path::attr("counter"), 1),
    ];
    ctx.update("requests", &part.req_id, counted).await?;
    let row: Pending = ctx
        .read_as("requests", &part.req_id)
        .await?
        .unwrap_or_default();
    if row.counter != PARTS {
        return Ok(());
    }
    // Several parts may see all five: only the one that marks the row emits the review.
    let first = ctx
        .cond_write(
            "requests",
            &part.req_id,
            vec![UpdateAction::set(Path::attr("emitted"), true)],
            Condition::not_exists(Path::attr("emitted")),
        )
        .await?;
    if !first {
        return Ok(());
    }
    let missing = |what: &str| UserError(format!("{}: no {what}", part.req_id));
    let review = Review {
        review_id: row.review_id.ok_or_else(|| missing("review id"))?,
        req_id: part.req_id.clone(),
        user_id: row.user_id.ok_or_else(|| missing("user id"))?,
        movie_id: row.movie_id.ok_or_else(|| missing("movie id"))?,
        text: row.text.ok_or_else(|| missing("text"))?,
        rating: row.rating.ok_or_else(|| missing("rating"))?,
    };
    store_review.spawn(ctx, &review).await?;
    let (user, movie) = (review.user_id.clone(), review.movie_id.clone());
    user_review
        .spawn(ctx, &(user, review.review_id.clone()))
        .await?;
    movie_review
        .spawn(ctx, &(movie, review.review_id.clone()))
        .await?;
    Ok(())
}

/// Stores a review.
#[beldi::function(tables = ["reviews"])]
pub async fn store_review(ctx: &Ctx, review: Review) -> Result<(), UserError> {
    ctx.write_as("reviews", &review.review_id, &review).await?;
    Ok(())
}

/// Appends a review to its author's list.
#[beldi::function(tables = ["user_reviews"])]
pub async fn user_review(ctx: &Ctx, entry: (String, String)) -> Result<(), UserError> {
    let (user, review) = entry;
    let add = vec![UpdateAction::append(Path::root(), vec![review.into()])];
    ctx.update("user_reviews", &user, add).await?;
    Ok(())
}

/// Appends a review to its movie's list.
#[beldi::function(tables = ["movie_reviews"])]
pub async fn movie_review(ctx: &Ctx, entry: (String, String)) -> Result<(), UserError> {
    let (movie, review) = entry;
    let add = vec![UpdateAction::append(Path::root(), vec![review.into()])];
    ctx.update("movie_reviews", &movie, add).await?;
    Ok(())
}

/// The title of movie `i` under `seed`.
pub fn title(seed: u64, i: usize) -> String {
    const ADJ: [&str; 8] = [
        "Silent", "Crimson", "Last", "Hidden", "Golden", "Broken", "Endless", "Northern",
    ];
    const NOUN: [&str; 8] = [
        "River", "Empire", "Garden", "Signal", "Harbor", "Winter", "Machine", "Promise",
    ];
    let mut r = Rng::new(seed, &format!("title{i}"));
    format!(
        "The {} {} {i}",
        ADJ[r.below(ADJ.len())],
        NOUN[r.below(NOUN.len())]
    )
}

/// Loads the data set: users and movies.
pub async fn load(rt: &Runtime, seed: u64) -> Result<(), BeldiError> {
    let users = (0..USERS)
        .map(|i| (format!("username_{i}"), AttrValue::from(format!("u{i}"))))
        .collect();
    beldi::data::load(rt, user_id.name(), "users", users).await?;
    let movies = (0..MOVIES)
        .map(|i| (title(seed, i), AttrValue::from(format!("m{i}"))))
        .collect();
    beldi::data::load(rt, movie_id.name(), "movies", movies).await?;
    Ok(())
}

/// Request `i` of a run with `seed`.
pub fn request(seed: u64, i: u32) -> ComposeReq {
    let mut r = Rng::new(seed, &format!("compose{i}"));
    ComposeReq {
        req_id: format!("req-{i}"),
        username: format!("username_{}", r.below(USERS)),
        title: title(seed, r.below(MOVIES)),
        rating: r.below(11) as i64,
        text: r.text(256),
    }
}

/// Checks the invariants after requests `0..requests` of a run with `seed` finished.
pub async fn check(rt: &Runtime, seed: u64, requests: u32) -> Result<Vec<Invariant>, BeldiError> {
    let pending: BTreeMap<String, Pending> = values(rt, compose.name(), "requests").await?;
    let reviews: BTreeMap<String, Review> = values(rt, store_review.name(), "reviews").await?;
    let by_user: BTreeMap<String, Vec<String>> =
        values(rt, user_review.name(), "user_reviews").await?;
    let by_movie: BTreeMap<String, Vec<String>> =
        values(rt, movie_review.name(), "movie_reviews").await?;

    let mut counters = Invariant::new("every request's part counter is exactly 5");
    let mut stored = Invariant::new("exactly one stored review per request");
    let mut lists = Invariant::new("each review once in its user's and movie's list");
    let mut per_req: BTreeMap<&str, Vec<&Review>> = BTreeMap::new();
    for r in reviews.values() {
        per_req.entry(&r.req_id).or_default().push(r);
    }
    let issued: BTreeSet<String> = (0..requests).map(|i| request(seed, i).req_id).collect();
    for req in &issued {
        match pending.get(req) {
            None => counters.fail(format!("{req}: no request row")),
            Some(p) if p.counter != PARTS || p.emitted != Some(true) => counters.fail(format!(
                "{req}: part counter {} (emitted: {:?})",
                p.counter, p.emitted
            )),
            Some(_) => {}
        }
        let n = per_req.get(req.as_str()).map_or(0, Vec::len);
        if n != 1 {
            stored.fail(format!("{req}: {n} stored reviews"));
        }
    }
    for (req, rs) in &per_req {
        if !issued.contains(*req) {
            stored.fail(format!(
                "{req}: {} stored reviews for a request never issued",
                rs.len()
            ));
        }
    }
    for (what, lists_by, owner) in [
        (
            "user",
            &by_user,
            (|r: &Review| r.user_id.clone()) as fn(&Review) -> String,
        ),
        ("movie", &by_movie, |r: &Review| r.movie_id.clone()),
    ] {
        let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (key, ids) in lists_by {
            for id in ids {
                seen.entry(id).or_default().push(key);
            }
        }
        for r in reviews.values() {
            let want = owner(r);
            match seen.get(r.review_id.as_str()).map(Vec::as_slice) {
                Some([k]) if *k == want => {}
                got => lists.fail(format!(
                    "review {} ({}): in {what} lists {:?}, expected once in {want}",
                    r.review_id,
                    r.req_id,
                    got.unwrap_or_default()
                )),
            }
        }
        for (id, keys) in &seen {
            if !reviews.contains_key(*id) {
                lists.fail(format!(
                    "{what} lists {keys:?} name review {id}, not stored"
                ));
            }
        }
    }
    Ok(vec![counters, stored, lists])
}
