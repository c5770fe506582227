//! Cursor pagination (`iterator`, `prevIterator`, `done`, `limit`, `order`)
//! walked end to end over applications and messages.

use std::collections::HashSet;

use crate::common::{assert_invalid_field, list_data, str_of, TestServer};
use serde_json::{json, Value};

const TOTAL: usize = 23;
const PAGE: usize = 5;

/// One page: its ids and the raw answer.
struct Page {
    ids: Vec<String>,
    body: Value,
}

async fn page(server: &TestServer, path: &str) -> Page {
    let (status, body) = server.admin().get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let ids = list_data(&body).iter().map(|v| str_of(v, "id").to_string()).collect();
    Page { ids, body }
}

fn with_query(base: &str, query: &str) -> String {
    if base.contains('?') {
        format!("{base}&{query}")
    } else {
        format!("{base}?{query}")
    }
}

/// Walks `base` forwards in pages of `PAGE` until `done`; returns the pages.
async fn walk_forwards(server: &TestServer, base: &str) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut path = with_query(base, &format!("limit={PAGE}"));
    loop {
        let p = page(server, &path).await;
        assert!(pages.len() <= TOTAL, "pagination does not end: {path}");
        let done = p.body["done"].as_bool().expect("done is a boolean");
        let iterator = p.body["iterator"].as_str().map(str::to_string);
        pages.push(p);
        if done {
            return pages;
        }
        let iterator = iterator.unwrap_or_else(|| panic!("a page that is not done has no iterator: {path}"));
        path = with_query(base, &format!("limit={PAGE}&iterator={iterator}"));
    }
}

/// Checks a forward walk: page sizes, `done` only at the end, each id once,
/// and the overall order.
#[track_caller]
fn check_walk(pages: &[Page], expected_in_order: &[String]) {
    let expected_pages = TOTAL.div_ceil(PAGE);
    assert_eq!(pages.len(), expected_pages, "number of pages");
    for (i, p) in pages.iter().enumerate() {
        let last = i == expected_pages - 1;
        let size = if last { TOTAL - PAGE * (expected_pages - 1) } else { PAGE };
        assert_eq!(p.ids.len(), size, "page {i} size: {}", p.body);
        assert_eq!(p.body["done"], last, "page {i} done: {}", p.body);
        assert_eq!(p.body["iterator"].as_str(), p.ids.last().map(String::as_str), "page {i} iterator is its last id");
    }
    let seen: Vec<String> = pages.iter().flat_map(|p| p.ids.clone()).collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an id was seen twice: {seen:?}");
    assert_eq!(seen, expected_in_order);
}

/// From each page after the first, `prevIterator` leads back to the page before.
async fn check_backwards(server: &TestServer, base: &str, pages: &[Page]) {
    for i in (1..pages.len()).rev() {
        let prev = pages[i].body["prevIterator"]
            .as_str()
            .unwrap_or_else(|| panic!("page {i} has no prevIterator: {}", pages[i].body));
        assert!(prev.starts_with('-'), "prevIterator {prev:?} lacks the - prefix");
        let back = page(server, &with_query(base, &format!("limit={PAGE}&iterator={prev}"))).await;
        assert_eq!(back.ids, pages[i - 1].ids, "going back from page {i}");
    }
    // Chain backwards from the last page using each answer's own prevIterator.
    let mut current = pages.last().expect("at least one page").body.clone();
    for i in (0..pages.len() - 1).rev() {
        let prev = str_of(&current, "prevIterator").to_string();
        let back = page(server, &with_query(base, &format!("limit={PAGE}&iterator={prev}"))).await;
        assert_eq!(back.ids, pages[i].ids, "chained back to page {i}");
        current = back.body;
    }
    // Before the first item there is nothing.
    let first = &pages[0].ids[0];
    let before_first = page(server, &with_query(base, &format!("limit={PAGE}&iterator=-{first}"))).await;
    assert!(before_first.ids.is_empty(), "{}", before_first.body);
    assert_eq!(before_first.body["done"], true);
    assert_eq!(before_first.body["iterator"], Value::Null);
}

async fn create_apps(server: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..TOTAL {
        ids.push(str_of(&server.create_app(&format!("App {i}"), None).await, "id").to_string());
    }
    ids
}

#[tokio::test]
async fn applications_paginate_forwards_descending_by_default() {
    let server = TestServer::start().await;
    let mut descending = create_apps(&server).await;
    descending.sort();
    descending.reverse();

    let pages = walk_forwards(&server, "/api/v1/app").await;
    check_walk(&pages, &descending);
    check_backwards(&server, "/api/v1/app", &pages).await;
}

#[tokio::test]
async fn applications_paginate_ascending() {
    let server = TestServer::start().await;
    let mut ascending = create_apps(&server).await;
    ascending.sort();

    let pages = walk_forwards(&server, "/api/v1/app?order=ascending").await;
    check_walk(&pages, &ascending);
    check_backwards(&server, "/api/v1/app?order=ascending", &pages).await;

    let pages = walk_forwards(&server, "/api/v1/app?order=descending").await;
    ascending.reverse();
    check_walk(&pages, &ascending);
}

#[tokio::test]
async fn messages_paginate_forwards_and_backwards() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let mut created = Vec::new();
    for i in 0..TOTAL {
        let (status, msg) = server
            .admin()
            .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "tick", "payload": {"i": i}}))
            .await;
        assert_eq!(status, 202, "{msg}");
        created.push(str_of(&msg, "id").to_string());
    }
    let mut newest_first = created.clone();
    newest_first.sort();
    newest_first.reverse();

    let base = format!("/api/v1/app/{app}/msg");
    let pages = walk_forwards(&server, &base).await;
    check_walk(&pages, &newest_first);
    check_backwards(&server, &base, &pages).await;

    // Filters and pagination together.
    let pages = walk_forwards(&server, &format!("{base}?event_types=tick&with_content=false")).await;
    check_walk(&pages, &newest_first);
    assert_eq!(list_data(&pages[0].body)[0]["payload"], json!({}));
}

#[tokio::test]
async fn a_page_of_exactly_the_rest_is_done() {
    let server = TestServer::start().await;
    for i in 0..4 {
        server.create_app(&format!("App {i}"), None).await;
    }
    let first = page(&server, "/api/v1/app?limit=2").await;
    assert_eq!(first.ids.len(), 2);
    assert_eq!(first.body["done"], false);
    let second = page(&server, &format!("/api/v1/app?limit=2&iterator={}", str_of(&first.body, "iterator"))).await;
    assert_eq!(second.ids.len(), 2);
    assert_eq!(second.body["done"], true, "no item is left after this page: {}", second.body);

    let all = page(&server, "/api/v1/app?limit=250").await;
    assert_eq!(all.ids.len(), 4);
    assert_eq!(all.body["done"], true);
    let one = page(&server, "/api/v1/app?limit=1").await;
    assert_eq!(one.ids.len(), 1);
}

#[tokio::test]
async fn out_of_range_limit_is_unprocessable() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    for base in ["/api/v1/app".to_string(), format!("/api/v1/app/{app}/msg"), format!("/api/v1/app/{app}/endpoint")] {
        for limit in ["0", "-1", "251", "abc", "1.5"] {
            let path = with_query(&base, &format!("limit={limit}"));
            let (status, body) = server.admin().get(&path).await;
            assert_invalid_field(status, &body, "limit");
        }
    }
    let (status, body) = server.admin().get("/api/v1/app?order=sideways").await;
    assert_invalid_field(status, &body, "order");
}
