//! Listing on every backend: the users list's filters, search and pages without gaps or repeats, and the audit log filtered by event and time.

use serde_json::json;

use crate::helpers::{PASSWORD, ROOT, TestDb};

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

async fn listing_filters_and_pages(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    for (i, name) in [
        "Zoë Quinn",
        "Ada Byron",
        "Grace Hopper",
        "Alan 100%",
        "Edsger",
    ]
    .iter()
    .enumerate()
    {
        let role = if i % 2 == 0 { "moderator" } else { "guest" };
        let res = s.post("/api/v1/users", &root, json!({
            "email": format!("Person{i}@Example.com"), "password": PASSWORD, "name": name, "roles": [role]
        })).await;
        assert_eq!(res.status, 201);
    }
    let page = s.get("/api/v1/users?per_page=2", &root).await;
    assert_eq!(page.status, 200);
    let page = page.body;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["per_page"].as_u64(),
            page["page"].as_u64()
        ),
        (Some(6), Some(2), Some(1))
    );
    let mut seen = Vec::new();
    for p in 1..=3 {
        let page = s
            .get(&format!("/api/v1/users?per_page=2&page={p}"), &root)
            .await
            .body;
        for u in page["items"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = std::iter::once(ROOT.to_string())
        .chain((0..5).map(|i| format!("Person{i}@Example.com")))
        .collect();
    assert_eq!(
        seen, expected,
        "oldest first, no gaps or repeats across pages"
    );
    let q = |query: &str| {
        let path = format!("/api/v1/users?{query}");
        let (s, root) = (&s, &root);
        async move { s.get(&path, root).await }
    };
    assert_eq!(q("role=moderator").await.body["total"], 3);
    assert_eq!(q("role=guest&q=alan").await.body["total"], 1);
    assert_eq!(
        q("q=PERSON3").await.body["total"],
        1,
        "case-insensitive email"
    );
    assert_eq!(q("q=grace%20hop").await.body["total"], 1, "name");
    assert_eq!(q("q=%25").await.body["total"], 1, "a literal percent sign");
    assert_eq!(q("q=zo%C3%AB").await.body["total"], 1);
    assert_eq!(q("per_page=500").await.body["per_page"], 200);
    assert_eq!(q("page=0").await.problem(), (422, "validation_failed"));
    assert_eq!(q("role=emperor").await.status, 422);
    assert_eq!(q("active=maybe").await.status, 400);
    let id = s.user_id(&root).await;
    let target = q("q=person1").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.patch(
        &format!("/api/v1/users/{target}"),
        &root,
        json!({"active": false}),
    )
    .await;
    assert_eq!(q("active=false").await.body["total"], 1);
    assert_eq!(q("active=true").await.body["total"], 5);

    // The audit log, filtered and paged.
    let page = s
        .get("/api/v1/audit?event=user_created&per_page=2", &root)
        .await;
    assert_eq!(page.status, 200);
    let page = page.body;
    assert_eq!(page["total"], 5);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|e| e["actor_id"] == id));
    let first = page["items"][0]["at"].as_str().unwrap().to_string();
    let since = urlencode(&first);
    assert_eq!(
        s.audit_total(&root, &format!("event=user_created&since={since}"))
            .await,
        1,
        "the newest row is at or after its own time"
    );
    assert_eq!(
        s.audit_total(&root, &format!("event=user_created&until={since}"))
            .await,
        4
    );
    let res = s.get("/api/v1/audit?since=yesterday", &root).await;
    assert_eq!(res.status, 400);
    s.stop().await;
}

per_backend!(listing_filters_and_pages);
