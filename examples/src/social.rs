//! Social media (DeathStarBench social network), after the paper's port.
//!
//! `compose_post` asks, in parallel, `post_id` for a unique id, `compose_text` for the text
//! with its mentions resolved (`lookup_users`) and its URLs shortened (`url_shorten`, which
//! stores each short link), `media` for the media ids and `lookup_users` for the author; then
//! stores the post (`store_post`), appends it to the author's timeline (`user_timeline`) and
//! starts `write_home_timeline`, which asks `social_graph` for the author's followers and
//! appends the post to the home timeline of every follower and every mentioned user
//! (`home_timeline`).
//!
//! Data set ([`load`]): [`USERS`] users (`username_<i>` → `s<i>`) and a follower graph
//! generated from the seed (skewed: a few users have many followers). Requests
//! ([`request`]): 100% compose-post by a uniform author, 20 random characters, 1–3 mentions,
//! 1–3 URLs of 20 characters, 1–3 ten-digit media ids.

use std::collections::{BTreeMap, BTreeSet};

use beldi::prelude::*;
use beldi::store::AttrValue;
use serde::{Deserialize, Serialize};

use crate::app::{Invariant, Rng, values};

/// Users in the data set (as in socfb-Reed98, the DeathStarBench graph).
pub const USERS: usize = 962;

/// A compose-post request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PostReq {
    /// The request id.
    pub req_id: String,
    /// The author's user name.
    pub author: String,
    /// The text, with `@username_<i>` mentions and `http://` URLs.
    pub text: String,
    /// Media ids.
    pub media: Vec<String>,
}

/// A text with its mentions resolved and URLs shortened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Text {
    /// The text, URLs replaced by their short form.
    pub text: String,
    /// Mentioned users' ids.
    pub mentions: Vec<String>,
    /// (short, long) URL pairs.
    pub urls: Vec<(String, String)>,
}

/// A stored post.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Post {
    /// Its unique id.
    pub id: String,
    /// The request that composed it.
    pub req_id: String,
    /// The author's id.
    pub author: String,
    /// The text.
    pub text: Text,
    /// Media ids.
    pub media: Vec<String>,
}

/// The frontend: gathers the parts in parallel, stores the post, updates the timelines.
#[beldi::function]
pub async fn compose_post(ctx: &Ctx, req: PostReq) -> Result<String, UserError> {
    let (id, text, media_ids, author) = tokio::join!(
        post_id.call(ctx, &req.req_id),
        compose_text.call(ctx, &req.text),
        media.call(ctx, &req.media),
        lookup_users.call(ctx, &vec![req.author.clone()]),
    );
    let author = author??
        .pop()
        .ok_or_else(|| UserError(format!("no user named {:?}", req.author)))?;
    let post = Post {
        id: id??,
        req_id: req.req_id,
        author,
        text: text??,
        media: media_ids??,
    };
    store_post.call(ctx, &post).await??;
    user_timeline
        .call(ctx, &(post.author.clone(), post.id.clone()))
        .await??;
    write_home_timeline.spawn(ctx, &post).await?;
    Ok(post.id)
}

/// A unique post id (a logged UUID).
#[beldi::function]
pub async fn post_id(ctx: &Ctx, _req_id: String) -> Result<String, UserError> {
    Ok(ctx.uuid().await?.to_string())
}

/// Resolves mentions and shortens URLs, in parallel.
#[beldi::function]
pub async fn compose_text(ctx: &Ctx, text: String) -> Result<Text, UserError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let names: Vec<String> = words
        .iter()
        .filter_map(|w| w.strip_prefix('@'))
        .map(str::to_owned)
        .collect();
    let urls: Vec<String> = words
        .iter()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.to_string())
        .collect();
    let (mentions, short) =
        tokio::join!(lookup_users.call(ctx, &names), url_shorten.call(ctx, &urls));
    let short = short??;
    let mut out = text.clone();
    for (s, long) in &short {
        out = out.replace(long.as_str(), s);
    }
    Ok(Text {
        text: out,
        mentions: mentions??,
        urls: short,
    })
}

/// User ids of user names; an unknown name is an error naming it.
#[beldi::function(tables = ["users"])]
pub async fn lookup_users(ctx: &Ctx, names: Vec<String>) -> Result<Vec<String>, UserError> {
    let mut ids = Vec::with_capacity(names.len());
    for n in names {
        match ctx.read_as::<String>("users", &n).await? {
            Some(id) => ids.push(id),
            None => return Err(UserError(format!("no user named {n:?}"))),
        }
    }
    Ok(ids)
}

/// Shortens URLs: a logged random code each, stored so the short link resolves.
#[beldi::function(tables = ["urls"])]
pub async fn url_shorten(ctx: &Ctx, urls: Vec<String>) -> Result<Vec<(String, String)>, UserError> {
    let mut out = Vec::with_capacity(urls.len());
    for long in urls {
        let code: u64 = ctx.random().await?;
        let short = format!("http://short.url/{:012x}", code >> 16);
        ctx.write_as("urls", &short, &long).await?;
        out.push((short, long));
    }
    Ok(out)
}

/// Checks media ids (ten digits each).
#[beldi::function]
pub async fn media(_ctx: &Ctx, ids: Vec<String>) -> Result<Vec<String>, UserError> {
    if let Some(bad) = ids
        .iter()
        .find(|m| m.len() != 10 || !m.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(UserError(format!("bad media id {bad:?}")));
    }
    Ok(ids)
}

/// Stores a post.
#[beldi::function(tables = ["posts"])]
pub async fn store_post(ctx: &Ctx, post: Post) -> Result<(), UserError> {
    ctx.write_as("posts", &post.id, &post).await?;
    Ok(())
}

/// Appends a post to its author's timeline.
#[beldi::function(tables = ["user_timelines"])]
pub async fn user_timeline(ctx: &Ctx, entry: (String, String)) -> Result<(), UserError> {
    let (user, post) = entry;
    let add = vec![UpdateAction::append(Path::root(), vec![post.into()])];
    ctx.update("user_timelines", &user, add).await?;
    Ok(())
}

/// The followers of a user.
#[beldi::function(tables = ["followers"])]
pub async fn social_graph(ctx: &Ctx, user: String) -> Result<Vec<String>, UserError> {
    Ok(ctx
        .read_as::<Vec<String>>("followers", &user)
        .await?
        .unwrap_or_default())
}

/// Fans a post out to its followers' and mentioned users' home timelines.
#[beldi::function]
pub async fn write_home_timeline(ctx: &Ctx, post: Post) -> Result<(), UserError> {
    let mut readers: BTreeSet<String> = social_graph
        .call(ctx, &post.author)
        .await??
        .into_iter()
        .collect();
    readers.extend(post.text.mentions.iter().cloned());
    home_timeline
        .call(ctx, &(readers.into_iter().collect::<Vec<_>>(), post.id))
        .await??;
    Ok(())
}

/// Appends a post to the home timeline of each reader.
#[beldi::function(tables = ["home_timelines"])]
pub async fn home_timeline(ctx: &Ctx, entry: (Vec<String>, String)) -> Result<(), UserError> {
    let (readers, post) = entry;
    for r in readers {
        let add = vec![UpdateAction::append(
            Path::root(),
            vec![post.as_str().into()],
        )];
        ctx.update("home_timelines", &r, add).await?;
    }
    Ok(())
}

/// The follower graph of `seed`: user id → follower ids. Skewed like a social network: user
/// `i` gets up to ~80 followers, most users a handful.
pub fn followers(seed: u64) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for i in 0..USERS {
        let mut r = Rng::new(seed, &format!("followers{i}"));
        let u = r.below(1000) as f64 / 1000.0;
        let n = 1 + (u * u * u * 80.0) as usize;
        let set: BTreeSet<usize> = (0..n).map(|_| r.below(USERS)).filter(|f| *f != i).collect();
        out.insert(
            format!("s{i}"),
            set.into_iter().map(|f| format!("s{f}")).collect(),
        );
    }
    out
}

/// Loads the data set: user names and the follower graph.
pub async fn load(rt: &Runtime, seed: u64) -> Result<(), BeldiError> {
    let users = (0..USERS)
        .map(|i| (format!("username_{i}"), AttrValue::from(format!("s{i}"))))
        .collect();
    beldi::data::load(rt, lookup_users.name(), "users", users).await?;
    let mut graph = Vec::with_capacity(USERS);
    for (user, fs) in followers(seed) {
        graph.push((user, beldi::value::to_attr(&fs, "followers")?));
    }
    beldi::data::load(rt, social_graph.name(), "followers", graph).await?;
    Ok(())
}

/// Request `i` of a run with `seed`.
pub fn request(seed: u64, i: u32) -> PostReq {
    let mut r = Rng::new(seed, &format!("post{i}"));
    let mut words = vec![r.text(20)];
    for _ in 0..1 + r.below(3) {
        words.push(format!("@username_{}", r.below(USERS)));
    }
    for _ in 0..1 + r.below(3) {
        words.push(format!("http://{}", r.text(20)));
    }
    let media_ids = (0..1 + r.below(3)).map(|_| r.digits(10)).collect();
    PostReq {
        req_id: format!("req-{i}"),
        author: format!("username_{}", r.below(USERS)),
        text: words.join(" "),
        media: media_ids,
    }
}

/// Checks the invariants after requests `0..requests` of a run with `seed` finished.
pub async fn check(rt: &Runtime, seed: u64, requests: u32) -> Result<Vec<Invariant>, BeldiError> {
    let posts: BTreeMap<String, Post> = values(rt, store_post.name(), "posts").await?;
    let user_lines: BTreeMap<String, Vec<String>> =
        values(rt, user_timeline.name(), "user_timelines").await?;
    let home_lines: BTreeMap<String, Vec<String>> =
        values(rt, home_timeline.name(), "home_timelines").await?;
    let urls: BTreeMap<String, String> = values(rt, url_shorten.name(), "urls").await?;
    let graph: BTreeMap<String, Vec<String>> = values(rt, social_graph.name(), "followers").await?;

    let mut stored = Invariant::new("each post stored once");
    let mut own = Invariant::new("each post once in its author's timeline");
    let mut home = Invariant::new("each post once in each reader's home timeline");
    let mut links = Invariant::new("every short URL resolves to its URL");
    let issued: BTreeSet<String> = (0..requests).map(|i| request(seed, i).req_id).collect();
    let mut per_req: BTreeMap<&str, usize> = BTreeMap::new();
    for p in posts.values() {
        *per_req.entry(&p.req_id).or_default() += 1;
    }
    for req in &issued {
        let n = per_req.get(req.as_str()).copied().unwrap_or(0);
        if n != 1 {
            stored.fail(format!("{req}: {n} stored posts"));
        }
    }
    for (req, n) in &per_req {
        if !issued.contains(*req) {
            stored.fail(format!("{req}: {n} posts for a request never issued"));
        }
    }
    // Expected timeline entries, as counts per (user, post).
    let mut want_own: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut want_home: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for p in posts.values() {
        *want_own.entry((&p.author, &p.id)).or_default() += 1;
        let mut readers: BTreeSet<&str> = graph
            .get(&p.author)
            .map(|f| f.iter().map(String::as_str).collect())
            .unwrap_or_default();
        readers.extend(p.text.mentions.iter().map(String::as_str));
        for r in readers {
            *want_home.entry((r, &p.id)).or_default() += 1;
        }
        for (short, long) in &p.text.urls {
            if urls.get(short) != Some(long) {
                links.fail(format!(
                    "post {}: {short} resolves to {:?}, not {long}",
                    p.id,
                    urls.get(short)
                ));
            }
        }
    }
    for (inv, want, lines) in [
        (&mut own, want_own, &user_lines),
        (&mut home, want_home, &home_lines),
    ] {
        let mut got: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for (user, ids) in lines {
            for id in ids {
                *got.entry((user, id)).or_default() += 1;
            }
        }
        for (key, n) in &want {
            let have = got.get(key).copied().unwrap_or(0);
            if have != *n {
                inv.fail(format!(
                    "user {}: post {} appears {have} times, expected {n}",
                    key.0, key.1
                ));
            }
        }
        for (key, n) in &got {
            if !want.contains_key(key) {
                inv.fail(format!(
                    "user {}: post {} appears {n} times, expected 0",
                    key.0, key.1
                ));
            }
        }
    }
    Ok(vec![stored, own, home, links])
}
