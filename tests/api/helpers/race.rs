//! Requests released at the same instant from many tasks, for the races the contract promises to win.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::{Reply, TestApp};

/// Send the request `make(i)` builds from each of `n` tasks, all released at the same instant.
/// Returns each whole answer, in task order.
pub async fn race_replies(n: usize, make: impl Fn(usize) -> reqwest::RequestBuilder) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (req, barrier) = (make(i), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                Reply::read(req.send().await.unwrap()).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// [`race_replies`], keeping each answer's status and JSON body (Null when it has none).
pub async fn race_with(
    n: usize,
    make: impl Fn(usize) -> reqwest::RequestBuilder,
) -> Vec<(u16, Value)> {
    let replies = race_replies(n, make).await;
    replies
        .into_iter()
        .map(|r| (r.status.as_u16(), r.body))
        .collect()
}

/// POST `body(i)` as JSON to `path` from `n` tasks at once, task i on `apps[i % apps.len()]`.
pub async fn race_on(
    apps: &[&TestApp],
    n: usize,
    path: &str,
    body: impl Fn(usize) -> Value,
) -> Vec<(u16, Value)> {
    race_with(n, |i| {
        let app = apps[i % apps.len()];
        app.client.post(app.url(path)).json(&body(i))
    })
    .await
}

impl TestApp {
    /// POST `body(i)` as JSON to `path` from `n` tasks released at the same instant.
    pub async fn race(
        &self,
        n: usize,
        path: &str,
        body: impl Fn(usize) -> Value,
    ) -> Vec<(u16, Value)> {
        race_on(&[self], n, path, body).await
    }

    /// `n` logins of `email` with `password` at the same instant.
    pub async fn race_logins(&self, n: usize, email: &str, password: &str) -> Vec<(u16, Value)> {
        self.race(
            n,
            "/api/v1/auth/login",
            |_| serde_json::json!({"email": email, "password": password}),
        )
        .await
    }
}

/// How many answers had `status`.
pub fn count(results: &[(u16, Value)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

/// The distinct string values of `field` in the answers (each must have it).
pub fn distinct(results: &[(u16, Value)], field: &str) -> HashSet<String> {
    results
        .iter()
        .map(|(_, b)| {
            b[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} missing in {b}"))
                .to_string()
        })
        .collect()
}
