//! Seed 000's product click-stream: shoppers in sessions moving through a
//! funnel (view → add_to_cart → checkout → purchase), with bounces,
//! removals and abandoned checkouts, over a fixed catalogue of products.
//!
//! A purchase always follows a checkout of the same session, and both name a
//! product that is in that session's cart, so funnel queries give sensible
//! answers. Roughly: 80 % views, 10 % add-to-cart, 2 % remove, 4 % checkout,
//! 3 % purchase.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{json, timestamp_type, EventBuilder, Profile, Rng};

/// The funnel's actions.
pub const ACTIONS: &[&str] = &[
    "view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
];
const VIEW: u8 = 0;
const ADD: u8 = 1;
const REMOVE: u8 = 2;
const CHECKOUT: u8 = 3;
const PURCHASE: u8 = 4;

/// Where shoppers come from, and how often.
pub const REFERRERS: &[&str] = &[
    "direct",
    "google.com",
    "bing.com",
    "facebook.com",
    "instagram.com",
    "email",
    "affiliate",
];
const REFERRER_WEIGHTS: &[f64] = &[0.30, 0.35, 0.05, 0.10, 0.08, 0.07, 0.05];
/// Devices, and how often.
pub const DEVICES: &[&str] = &["desktop", "mobile", "tablet"];
const DEVICE_WEIGHTS: &[f64] = &[0.42, 0.50, 0.08];

const CATEGORIES: &[(&str, &[&str], f64, f64)] = &[
    (
        "Electronics",
        &[
            "Headphones",
            "Smartwatch",
            "Bluetooth Speaker",
            "USB-C Charger",
            "Webcam",
            "Keyboard",
            "Wireless Mouse",
            "Monitor",
        ],
        15.0,
        450.0,
    ),
    (
        "Home & Kitchen",
        &[
            "Coffee Maker",
            "Blender",
            "Knife Set",
            "Cutting Board",
            "Toaster",
            "Air Fryer",
            "Kettle",
        ],
        12.0,
        220.0,
    ),
    (
        "Clothing",
        &[
            "T-Shirt",
            "Hoodie",
            "Jeans",
            "Sneakers",
            "Rain Jacket",
            "Wool Socks",
            "Cap",
        ],
        8.0,
        160.0,
    ),
    (
        "Books",
        &[
            "Cookbook",
            "Mystery Novel",
            "Travel Guide",
            "Data Engineering Handbook",
            "Poetry Collection",
        ],
        6.0,
        60.0,
    ),
    (
        "Sports & Outdoors",
        &[
            "Yoga Mat",
            "Dumbbells",
            "Water Bottle",
            "Running Shoes",
            "Tent",
            "Bike Helmet",
        ],
        10.0,
        300.0,
    ),
    (
        "Beauty",
        &["Face Cream", "Shampoo", "Lip Balm", "Perfume", "Hair Dryer"],
        4.0,
        120.0,
    ),
    (
        "Toys & Games",
        &[
            "Puzzle",
            "Board Game",
            "Building Blocks",
            "Plush Bear",
            "Kite",
        ],
        7.0,
        90.0,
    ),
];
const ADJECTIVES: &[&str] = &["Classic", "Premium", "Eco", "Compact"];

/// One product of the catalogue.
#[derive(Debug)]
pub struct Product {
    /// `P00001`…
    pub id: String,
    /// Adjective and noun.
    pub name: String,
    /// Category name.
    pub category: &'static str,
    /// Price in currency units, two decimals.
    pub price: f64,
}

/// The fixed catalogue (independent of the seed, so product ids are stable).
pub fn catalogue() -> &'static [Product] {
    static CATALOGUE: OnceLock<Vec<Product>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut rng = Rng::new(0xC0FFEE);
        let mut out = Vec::new();
        for (category, nouns, lo, hi) in CATEGORIES {
            for noun in *nouns {
                for adj in ADJECTIVES {
                    let price = (rng.uniform(*lo, *hi) * 100.0).round() / 100.0;
                    out.push(Product {
                        id: format!("P{:05}", out.len() + 1),
                        name: format!("{adj} {noun}"),
                        category,
                        price,
                    });
                }
            }
        }
        out
    })
}

/// One click.
#[derive(Clone, Debug)]
pub struct ClickEvent {
    event_id: [u8; 36],
    session_id: [u8; 36],
    user: u32,
    product: u32,
    action: u8,
    referrer: u8,
    device: u8,
    ts_us: i64,
}

struct Session {
    id: [u8; 36],
    user: u32,
    referrer: u8,
    device: u8,
    current: u32,
    cart: Vec<u32>,
    checking_out: bool,
}

/// The `clickstream` profile: a pool of concurrent shopping sessions.
pub struct Clickstream {
    sessions: Vec<Session>,
}

const CONCURRENT_SESSIONS: usize = 256;
const USERS: u64 = 50_000;

impl Clickstream {
    /// A fresh pool; sessions are drawn lazily from the event stream's seed.
    pub fn new() -> Self {
        Clickstream {
            sessions: Vec::with_capacity(CONCURRENT_SESSIONS),
        }
    }

    fn new_session(rng: &mut Rng) -> Session {
        Session {
            id: rng.uuid(),
            user: rng.below(USERS) as u32 + 1,
            referrer: rng.weighted(REFERRER_WEIGHTS) as u8,
            device: rng.weighted(DEVICE_WEIGHTS) as u8,
            current: popular_product(rng),
            cart: Vec::new(),
            checking_out: false,
        }
    }
}

impl Default for Clickstream {
    fn default() -> Self {
        Self::new()
    }
}

/// Popular products are viewed far more often than the long tail.
fn popular_product(rng: &mut Rng) -> u32 {
    let n = catalogue().len() as f64;
    ((rng.f64().powi(3) * n) as u32).min(n as u32 - 1)
}

impl Profile for Clickstream {
    type Event = ClickEvent;
    type Builder = ClickBuilder;
    const NAME: &'static str = "clickstream";
    const KEY_FIELDS: &'static [&'static str] = &["sessionId", "userId", "productId", "eventId"];
    const DEFAULT_KEY: &'static str = "sessionId";
    const NUMERIC_FIELD: &'static str = "price";

    fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                let s = |n: &str| Field::new(n, DataType::Utf8, false);
                Arc::new(Schema::new(vec![
                    s("eventId"),
                    s("sessionId"),
                    s("userId"),
                    s("productId"),
                    s("productName"),
                    s("category"),
                    Field::new("price", DataType::Float64, false),
                    s("action"),
                    s("referrer"),
                    s("device"),
                    Field::new("timestamp", timestamp_type(), false),
                ]))
            })
            .clone()
    }

    fn next_event(&mut self, rng: &mut Rng, ts_us: i64) -> ClickEvent {
        if self.sessions.len() < CONCURRENT_SESSIONS {
            self.sessions.push(Self::new_session(rng));
        }
        let i = rng.below(self.sessions.len() as u64) as usize;
        let s = &mut self.sessions[i];
        let mut ended = false;
        let (action, product) = if s.checking_out {
            s.checking_out = false;
            if rng.chance(0.75) {
                ended = true;
                (PURCHASE, *s.cart.last().expect("checkout needs a cart"))
            } else {
                // Abandoned checkout: back to browsing.
                s.current = popular_product(rng);
                (VIEW, s.current)
            }
        } else {
            let x = rng.f64();
            if s.cart.is_empty() {
                if x < 0.12 {
                    s.cart.push(s.current);
                    (ADD, s.current)
                } else {
                    s.current = popular_product(rng);
                    ended = rng.chance(0.06); // bounce
                    (VIEW, s.current)
                }
            } else if x < 0.70 {
                s.current = popular_product(rng);
                (VIEW, s.current)
            } else if x < 0.80 {
                s.cart.push(s.current);
                (ADD, s.current)
            } else if x < 0.85 {
                let p = s.cart.pop().expect("non-empty cart");
                (REMOVE, p)
            } else {
                s.checking_out = true;
                (CHECKOUT, *s.cart.last().expect("non-empty cart"))
            }
        };
        let event = ClickEvent {
            event_id: rng.uuid(),
            session_id: s.id,
            user: s.user,
            product,
            action,
            referrer: s.referrer,
            device: s.device,
            ts_us,
        };
        if ended {
            self.sessions.swap_remove(i);
        }
        event
    }

    fn set_time(event: &mut ClickEvent, ts_us: i64) {
        event.ts_us = ts_us;
    }

    fn write_json(e: &ClickEvent, out: &mut Vec<u8>) {
        let p = &catalogue()[e.product as usize];
        out.push(b'{');
        json::key(out, "eventId", true);
        quoted(out, &e.event_id);
        json::key(out, "sessionId", false);
        quoted(out, &e.session_id);
        json::key(out, "userId", false);
        out.push(b'"');
        user_id(e.user, out);
        out.push(b'"');
        json::key(out, "productId", false);
        json::string(out, &p.id);
        json::key(out, "productName", false);
        json::string(out, &p.name);
        json::key(out, "category", false);
        json::string(out, p.category);
        json::key(out, "price", false);
        json::float(out, p.price);
        json::key(out, "action", false);
        json::string(out, ACTIONS[e.action as usize]);
        json::key(out, "referrer", false);
        json::string(out, REFERRERS[e.referrer as usize]);
        json::key(out, "device", false);
        json::string(out, DEVICES[e.device as usize]);
        json::key(out, "timestamp", false);
        json::rfc3339_micros(out, e.ts_us);
        out.push(b'}');
    }

    fn write_key(e: &ClickEvent, field: usize, out: &mut Vec<u8>) {
        match field {
            0 => out.extend_from_slice(&e.session_id),
            1 => user_id(e.user, out),
            2 => out.extend_from_slice(catalogue()[e.product as usize].id.as_bytes()),
            _ => out.extend_from_slice(&e.event_id),
        }
    }

    fn builder(capacity: usize) -> ClickBuilder {
        let s = |w: usize| StringBuilder::with_capacity(capacity, capacity * w);
        ClickBuilder {
            strings: [s(36), s(36), s(7), s(6), s(20), s(12)],
            price: Float64Builder::with_capacity(capacity),
            tail: [s(10), s(10), s(7)],
            ts: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            scratch: Vec::new(),
        }
    }
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("generated ids are ascii")
}

fn quoted(out: &mut Vec<u8>, ascii: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(ascii);
    out.push(b'"');
}

fn user_id(user: u32, out: &mut Vec<u8>) {
    out.push(b'U');
    let mut buf = itoa::Buffer::new();
    let d = buf.format(user);
    for _ in d.len()..6 {
        out.push(b'0');
    }
    out.extend_from_slice(d.as_bytes());
}

/// Arrow builder for [`ClickEvent`]s.
pub struct ClickBuilder {
    strings: [StringBuilder; 6],
    price: Float64Builder,
    tail: [StringBuilder; 3],
    ts: TimestampMicrosecondBuilder,
    scratch: Vec<u8>,
}

impl EventBuilder<ClickEvent> for ClickBuilder {
    fn append(&mut self, e: &ClickEvent) {
        let p = &catalogue()[e.product as usize];
        self.scratch.clear();
        user_id(e.user, &mut self.scratch);
        let [eid, sid, uid, pid, pname, cat] = &mut self.strings;
        eid.append_value(ascii(&e.event_id));
        sid.append_value(ascii(&e.session_id));
        uid.append_value(ascii(&self.scratch));
        pid.append_value(&p.id);
        pname.append_value(&p.name);
        cat.append_value(p.category);
        self.price.append_value(p.price);
        let [action, referrer, device] = &mut self.tail;
        action.append_value(ACTIONS[e.action as usize]);
        referrer.append_value(REFERRERS[e.referrer as usize]);
        device.append_value(DEVICES[e.device as usize]);
        self.ts.append_value(e.ts_us);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut cols: Vec<ArrayRef> = self
            .strings
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        cols.push(Arc::new(self.price.finish()));
        cols.extend(
            self.tail
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.push(Arc::new(self.ts.finish()));
        cols
    }
}

#[cfg(test)]
mod tests {
    use super::super::{new_source, GeneratorOptions};
    use super::ACTIONS;
    use std::collections::HashMap;

    #[test]
    fn funnel_is_ordered_and_purchases_follow_checkouts() {
        let mut src = new_source("clickstream", GeneratorOptions::default()).unwrap();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut last_action: HashMap<String, String> = HashMap::new();
        for _ in 0..50_000 {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            src.next_message(&mut k, &mut v);
            let m: serde_json::Value = serde_json::from_slice(&v).unwrap();
            let action = m["action"].as_str().unwrap().to_string();
            assert!(ACTIONS.contains(&action.as_str()));
            let session = m["sessionId"].as_str().unwrap().to_string();
            assert_eq!(k, session.as_bytes());
            if action == "purchase" {
                assert_eq!(
                    last_action.get(&session).map(String::as_str),
                    Some("checkout")
                );
            }
            last_action.insert(session, action.clone());
            *counts.entry(action).or_default() += 1;
        }
        let c = |a: &str| counts.get(a).copied().unwrap_or(0);
        assert!(c("view") > c("add_to_cart"));
        assert!(c("add_to_cart") > c("checkout"));
        assert!(c("checkout") > c("purchase"));
        assert!(c("purchase") > 0 && c("remove_from_cart") > 0);
        let view_share = c("view") as f64 / 50_000.0;
        assert!((0.6..0.9).contains(&view_share), "views {view_share}");
    }
}
