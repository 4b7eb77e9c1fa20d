//! Travel reservation (hotel + flights), after the paper's port of DeathStarBench.
//!
//! `search` asks `geo` for the hotels nearest a point and `rate` for their prices;
//! `reserve` books a hotel room and a flight seat in **one transaction across the two
//! functions** (capacity really decreases; both or neither), then places an order under a
//! logged UUID. Data is generated from the hotel and flight numbers (no downloads): every
//! hotel and flight starts with [`CAPACITY`] places, prices and positions are functions of the
//! id.
//!
//! Invariants ([`check`]): no capacity below zero; hotel bookings = flight bookings = orders,
//! per hotel and per flight; every order returned by exactly one reservation; no lock left
//! held.

use std::collections::BTreeMap;

use beldi::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Invariant, Mix, Request, Rng, Workload};

/// Places per hotel and per flight.
pub const CAPACITY: i64 = 10;

/// A reservation request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReserveReq {
    /// Who books.
    pub user: String,
    /// Hotel id (`h0`, `h1`, …).
    pub hotel: String,
    /// Flight id (`f0`, `f1`, …).
    pub flight: String,
}

/// A placed order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Order {
    /// The order id (a logged UUID).
    pub id: String,
    /// The request it books.
    pub req: ReserveReq,
}

/// Takes one room of `hotel`, if any is left.
#[beldi::function(tables = ["rooms"])]
pub async fn hotel(ctx: &Ctx, id: String) -> Result<bool, UserError> {
    let left: i64 = ctx.read_as("rooms", &id).await?.unwrap_or(CAPACITY);
    if left <= 0 {
        return Ok(false);
    }
    ctx.write_as("rooms", &id, &(left - 1)).await?;
    Ok(true)
}

/// Takes one seat of `flight`, if any is left.
#[beldi::function(tables = ["seats"])]
pub async fn flight(ctx: &Ctx, id: String) -> Result<bool, UserError> {
    let left: i64 = ctx.read_as("seats", &id).await?.unwrap_or(CAPACITY);
    if left <= 0 {
        return Ok(false);
    }
    ctx.write_as("seats", &id, &(left - 1)).await?;
    Ok(true)
}

/// Records an order.
#[beldi::function(tables = ["orders"])]
pub async fn order(ctx: &Ctx, o: Order) -> Result<String, UserError> {
    ctx.write_as("orders", &o.id, &o).await?;
    Ok(o.id)
}

/// Books a room and a seat together, then places the order; `None` when sold out.
#[beldi::function]
pub async fn reserve(ctx: &Ctx, req: ReserveReq) -> Result<Option<String>, UserError> {
    let booked: Result<(), UserError> = #[beldi::txn(retries = 50)]
    {
        let room = hotel.call(ctx, &req.hotel).await??;
        let seat = flight.call(ctx, &req.flight).await??;
        if room && seat {
            Ok(())
        } else {
            Err(ctx.abort("sold out").into())
        }
    };
    if booked.is_err() {
        return Ok(None);
    }
    let id = ctx.uuid().await?.to_string(); // logged: a replay places the same order
    order
        .call(
            ctx,
            &Order {
                id: id.clone(),
                req,
            },
        )
        .await??;
    Ok(Some(id))
}

/// The hotels nearest a point, from the generated positions.
#[beldi::function]
pub async fn geo(_ctx: &Ctx, at: (i64, i64)) -> Result<Vec<String>, UserError> {
    let mut by_distance: Vec<(i64, String)> = (0..HOTELS)
        .map(|h| {
            let (x, y) = position(h);
            ((x - at.0).pow(2) + (y - at.1).pow(2), format!("h{h}"))
        })
        .collect();
    by_distance.sort();
    Ok(by_distance.into_iter().take(5).map(|(_, h)| h).collect())
}

/// Prices of hotels: overrides in the `prices` table, else generated.
#[beldi::function(tables = ["prices"])]
pub async fn rate(ctx: &Ctx, hotels: Vec<String>) -> Result<Vec<(String, i64)>, UserError> {
    let mut out = Vec::with_capacity(hotels.len());
    for h in hotels {
        let generated = 80 + (h.trim_start_matches('h').parse::<i64>().unwrap_or(0) * 37) % 120;
        let price = ctx.read_as("prices", &h).await?.unwrap_or(generated);
        out.push((h, price));
    }
    Ok(out)
}

/// Hotels near a point with their prices, cheapest first.
#[beldi::function]
pub async fn search(ctx: &Ctx, at: (i64, i64)) -> Result<Vec<(String, i64)>, UserError> {
    let near = geo.call(ctx, &at).await??;
    let mut priced = rate.call(ctx, &near).await??;
    priced.sort_by_key(|(h, p)| (*p, h.clone()));
    Ok(priced)
}

/// The hotels with the best ratings for a user: ratings are generated per hotel, and
/// overrides in the `ratings` table win; the user's id breaks ties so users differ.
#[beldi::function(tables = ["ratings"])]
pub async fn recommend(ctx: &Ctx, user: String) -> Result<Vec<String>, UserError> {
    let salt = user.bytes().map(|b| b as i64).sum::<i64>();
    let mut scored = Vec::with_capacity(10);
    for h in 0..10i64 {
        let id = format!("h{}", (h * 11 + salt) % HOTELS as i64);
        let generated = (h * 13 + salt) % 50;
        let rating: i64 = ctx.read_as("ratings", &id).await?.unwrap_or(generated);
        scored.push((std::cmp::Reverse(rating), id));
    }
    scored.sort();
    Ok(scored.into_iter().take(3).map(|(_, h)| h).collect())
}

/// Checks a user's password (users `u<n>` have the password `pw<n>` unless the `users`
/// table says otherwise).
#[beldi::function(tables = ["users"])]
pub async fn login(ctx: &Ctx, credentials: (String, String)) -> Result<bool, UserError> {
    let (user, password) = credentials;
    let expected: String = ctx
        .read_as("users", &user)
        .await?
        .unwrap_or_else(|| format!("pw{}", user.trim_start_matches('u')));
    Ok(expected == password)
}

/// Hotels in the data set.
pub const HOTELS: usize = 100;
/// Flights in the data set.
pub const FLIGHTS: usize = 100;

/// The generated position of hotel `h`.
pub fn position(h: usize) -> (i64, i64) {
    ((h as i64 * 7919) % 1000, (h as i64 * 104_729) % 1000)
}

/// The final state the invariants are checked on.
#[derive(Debug, Default)]
pub struct State {
    /// Rooms left per hotel that was touched.
    pub rooms: BTreeMap<String, i64>,
    /// Seats left per flight that was touched.
    pub seats: BTreeMap<String, i64>,
    /// Orders by id.
    pub orders: BTreeMap<String, Order>,
}

/// Reads the final state straight from the store.
pub async fn state(rt: &Runtime) -> Result<State, BeldiError> {
    let num = |v: &beldi::store::AttrValue| v.as_i64().unwrap_or(i64::MIN);
    let mut s = State::default();
    for (k, v) in beldi::data::current_values(rt, hotel.name(), "rooms").await? {
        s.rooms.insert(k, num(&v));
    }
    for (k, v) in beldi::data::current_values(rt, flight.name(), "seats").await? {
        s.seats.insert(k, num(&v));
    }
    for (k, v) in beldi::data::current_values(rt, order.name(), "orders").await? {
        s.orders.insert(k, beldi::value::from_attr(&v, "order")?);
    }
    Ok(s)
}

/// Request `i` of workload `w`: the mix's kind, then its target, from the seed.
pub fn request(w: &Workload, i: u32) -> Result<Request, BeldiError> {
    let mut r = Rng::new(w.seed, &format!("travel{i}"));
    let kind = match w.mix {
        Mix::ReserveHeavy => 999,
        Mix::Paper => r.below(1000),
    };
    // The seed is part of the id, so runs with other seeds on the same tables are other requests.
    let instance = format!("s{}-req-{i}", w.seed);
    match kind {
        0..600 => {
            let at = (r.below(1000) as i64, r.below(1000) as i64);
            Request::new("search", search.name(), instance, &at)
        }
        600..990 => Request::new(
            "recommend",
            recommend.name(),
            instance,
            &format!("u{}", r.below(500)),
        ),
        990..995 => {
            let u = r.below(500);
            let credentials = (format!("u{u}"), format!("pw{u}"));
            Request::new("login", login.name(), instance, &credentials)
        }
        _ => {
            let req = ReserveReq {
                user: format!("u{i}"),
                hotel: format!("h{}", r.below(w.targets)),
                flight: format!("f{}", r.below(w.targets)),
            };
            Request::new("reserve", reserve.name(), instance, &req)
        }
    }
}

/// Checks the invariants; each violation names the offending keys. In baseline mode, only
/// the ones about data (there are no intents or locks to look at).
pub async fn check(rt: &Runtime) -> Result<Vec<Invariant>, BeldiError> {
    let s = state(rt).await?;
    let mut capacity = Invariant::new("no capacity below zero");
    let mut booked = Invariant::new("hotel bookings = flight bookings = orders");
    let mut hotel_orders: BTreeMap<&str, i64> = BTreeMap::new();
    let mut flight_orders: BTreeMap<&str, i64> = BTreeMap::new();
    for o in s.orders.values() {
        *hotel_orders.entry(&o.req.hotel).or_default() += 1;
        *flight_orders.entry(&o.req.flight).or_default() += 1;
    }
    for (what, left, orders) in [
        ("hotel", &s.rooms, &hotel_orders),
        ("flight", &s.seats, &flight_orders),
    ] {
        for (k, v) in left {
            if *v < 0 {
                capacity.fail(format!("{what} {k} has capacity {v} < 0"));
            }
            let places = CAPACITY - v;
            let ordered = orders.get(k.as_str()).copied().unwrap_or(0);
            if places != ordered {
                booked.fail(format!(
                    "{what} {k}: {places} places booked but {ordered} orders"
                ));
            }
        }
        for (k, n) in orders.iter() {
            if !left.contains_key(*k) {
                booked.fail(format!("{what} {k}: {n} orders but no booking"));
            }
        }
    }
    let rooms: i64 = s.rooms.values().map(|v| CAPACITY - v).sum();
    let seats: i64 = s.seats.values().map(|v| CAPACITY - v).sum();
    if rooms != seats || rooms != s.orders.len() as i64 {
        booked.fail(format!(
            "{rooms} rooms, {seats} seats and {} orders booked",
            s.orders.len()
        ));
    }
    if rt.config().mode == Mode::Baseline {
        return Ok(vec![capacity, booked]);
    }
    Ok(vec![
        capacity,
        booked,
        returned_orders(rt, &s).await?,
        unlocked(rt).await?,
    ])
}

/// Every finished reservation's stored result names an existing order, and every order was
/// returned by exactly one reservation.
async fn returned_orders(rt: &Runtime, s: &State) -> Result<Invariant, BeldiError> {
    let mut inv = Invariant::new("every order returned by exactly one reservation");
    let mut returned = std::collections::BTreeSet::new();
    for (instance, outcome) in beldi::inspect::results(rt, reserve.name()).await? {
        if let Ok(Some(id)) =
            outcome.decode::<Option<String>, UserError>(reserve.name(), &instance)?
        {
            if !s.orders.contains_key(&id) {
                inv.fail(format!(
                    "reservation {instance} returned order {id}, which does not exist"
                ));
            }
            if !returned.insert(id.clone()) {
                inv.fail(format!("order {id} was returned by two reservations"));
            }
        }
    }
    for id in s.orders.keys() {
        if !returned.contains(id) {
            inv.fail(format!(
                "order {id} was placed but no finished reservation returned it"
            ));
        }
    }
    Ok(inv)
}

/// No DAAL tail of the hotel's or the flight's tables still names a lock holder.
async fn unlocked(rt: &Runtime) -> Result<Invariant, BeldiError> {
    let mut inv = Invariant::new("no lock left held");
    for f in [hotel.name(), flight.name()] {
        for t in rt.tables(f)?.data_tables() {
            for (k, _) in beldi::inspect::locks(rt, f, t).await? {
                inv.fail(format!("{f}/{t}/{k} is still locked"));
            }
        }
    }
    Ok(inv)
}
