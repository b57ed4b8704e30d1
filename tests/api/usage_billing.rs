//! Usage and billing on every backend: validated and idempotent reports (20 parallel retries store one event), batches that are all or nothing, sums exact to the micro-unit over 10,000 events, instants past 2038 kept, and period closes raced from two instances that bill each user once.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, count, race_with};
use crate::integrations::service_key;

/// A usage event for `user` costing `micros` millionths, as a decimal string.
fn event(user: &str, service: &str, model: &str, micros: i64) -> Value {
    json!({
        "user_id": user,
        "service": service,
        "model": model,
        "request_type": "chat",
        "tokens_used": micros % 1000,
        "cost": format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000),
    })
}

/// POST `body` to `path` as `token` with an `Idempotency-Key`.
async fn post_idempotent(
    s: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (u16, Value, bool) {
    let res = s
        .client
        .post(s.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (res.status().as_u16(), res.json().await.unwrap(), replayed)
}

async fn usage_is_validated_and_idempotent(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    s.register("ada@example.com").await;
    let ada = s.login("ada@example.com").await.access;
    let ada_id = s.user_id(&ada).await;
    let key = service_key(&s, &root, &["usage:write"]).await;
    let body = event(&ada_id, "openai", "gpt-4o-mini", 12_500);

    // Only a service key with usage:write reports usage.
    assert_eq!(
        s.post("/api/v1/usage", &ada, body.clone()).await.problem(),
        (403, "service_key_required")
    );
    assert_eq!(
        s.post("/api/v1/usage", &root, body.clone()).await.problem(),
        (403, "service_key_required")
    );
    let reader = service_key(&s, &root, &["users:read"]).await;
    assert_eq!(
        s.post("/api/v1/usage", &reader, body.clone())
            .await
            .problem(),
        (403, "insufficient_permission")
    );

    // Validation: tokens and cost non-negative, money exact, names bounded, users known.
    let with = |field: &str, value: Value| {
        let mut b = body.clone();
        b[field] = value;
        b
    };
    for (bad, code) in [
        (with("tokens_used", json!(-1)), "negative"),
        (with("cost", json!("-0.5")), "invalid_amount"),
        (with("cost", json!("0.0000001")), "too_precise"),
        (with("service", json!("x".repeat(65))), "invalid_length"),
        (with("model", json!("gpt 4")), "invalid_characters"),
        (with("user_id", json!(uuid::Uuid::now_v7())), "unknown_user"),
        (
            with("occurred_at", json!("1999-12-31T23:59:59Z")),
            "out_of_range",
        ),
    ] {
        let res = s.post("/api/v1/usage", &key, bad.clone()).await;
        assert_eq!(res.field_error(), (422, code), "{bad}: {}", res.body);
    }
    let mut both = body.clone();
    both["cost_micros"] = json!(12_500);
    assert_eq!(
        s.post("/api/v1/usage", &key, both).await.field_error(),
        (422, "cost_required")
    );
    // Money is never a JSON number.
    let res = s
        .post("/api/v1/usage", &key, with("cost", json!(0.0125)))
        .await;
    assert_eq!(res.problem(), (400, "invalid_body"));

    let res = s.post("/api/v1/usage", &key, body.clone()).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["cost"], "0.012500");
    assert_eq!(res.body["cost_micros"], 12_500);

    // Twenty parallel retries of one call store one event and all answer it.
    let retried = event(&ada_id, "openai", "gpt-4o", 3_000_001);
    let results = race_with(20, |_| {
        s.client
            .post(s.url("/api/v1/usage"))
            .bearer_auth(&key)
            .header("idempotency-key", "call-7f3a")
            .json(&retried)
    })
    .await;
    assert_eq!(count(&results, 201), 20, "{results:?}");
    let ids: std::collections::HashSet<_> =
        results.iter().map(|(_, b)| b["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    let stored = db
        .query("SELECT id FROM usage_records WHERE idempotency_key = 'call-7f3a'")
        .await;
    assert_eq!(stored.len(), 1);
    let (status, again, replayed) =
        post_idempotent(&s, "/api/v1/usage", &key, "call-7f3a", &retried).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again["id"].to_string(), *ids.iter().next().unwrap());
    // The same key for another call is refused, not silently answered.
    let (status, other, _) = post_idempotent(&s, "/api/v1/usage", &key, "call-7f3a", &body).await;
    assert_eq!(
        (status, other["errors"][0]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (status, _, _) = post_idempotent(&s, "/api/v1/usage", &key, "has space", &body).await;
    assert_eq!(status, 422);

    // An instant past 2038 is kept on every backend (MariaDB would store NULL), and found.
    let far = with("occurred_at", json!("2040-06-01T12:34:56.123456Z"));
    let res = s.post("/api/v1/usage", &key, far).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["occurred_at"], "2040-06-01T12:34:56.123456Z");
    let nulls = db
        .query("SELECT id FROM usage_records WHERE occurred_at IS NULL")
        .await;
    assert!(nulls.is_empty());
    let report = s
        .get(
            "/api/v1/me/usage?since=2040-01-01T00:00:00Z&until=2041-01-01T00:00:00Z",
            &ada,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["totals"]["requests"], 1);
    assert_eq!(
        report.body["items"]["items"][0]["occurred_at"],
        "2040-06-01T12:34:56.123456Z"
    );

    // All time: three events, totals per service and model, exact.
    let report = s.get("/api/v1/me/usage", &ada).await.body;
    assert_eq!(report["totals"]["requests"], 3);
    assert_eq!(report["totals"]["cost"], "3.025001");
    assert_eq!(report["totals"]["cost_micros"], 3_025_001);
    assert_eq!(
        report["by_service"],
        json!([{"service": "openai", "requests": 3, "tokens_used": 1001, "cost": "3.025001", "cost_micros": 3_025_001}])
    );
    assert_eq!(report["by_model"].as_array().unwrap().len(), 2);
    assert_eq!(report["items"]["total"], 3);
    let res = s
        .get(
            "/api/v1/me/usage?since=2041-01-01T00:00:00Z&until=2040-01-01T00:00:00Z",
            &ada,
        )
        .await;
    assert_eq!(res.field_error(), (422, "empty_period"));

    // An admin reads anyone's usage; a user reads no one else's.
    let path = format!("/api/v1/users/{ada_id}/usage");
    assert_eq!(s.get(&path, &root).await.body["totals"]["requests"], 3);
    assert_eq!(
        s.get(&path, &ada).await.problem(),
        (403, "insufficient_permission")
    );
    let unknown = format!("/api/v1/users/{}/usage", uuid::Uuid::now_v7());
    assert_eq!(s.get(&unknown, &root).await.status, 404);
    s.stop().await;
}

async fn batches_are_all_or_nothing_and_sums_exact(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let mut users = Vec::new();
    for name in ["ada", "bob", "cy"] {
        users.push(
            s.create_user(&root, &format!("{name}@example.com"), &["user"])
                .await,
        );
    }
    let key = service_key(&s, &root, &["usage:write"]).await;
    let services = ["openai", "anthropic"];
    let models = ["small", "large", "huge"];

    // A batch with one bad event stores nothing; more than 1,000 events are refused.
    let mut events: Vec<Value> = (0..10)
        .map(|i| event(&users[0], "openai", "small", i))
        .collect();
    events[7]["tokens_used"] = json!(-5);
    let res = s
        .post("/api/v1/usage/batch", &key, json!({"events": events}))
        .await;
    assert_eq!(res.field_error(), (422, "negative"), "{}", res.body);
    assert!(
        res.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("events[7].tokens_used")
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| event(&users[0], "openai", "small", i))
        .collect();
    let res = s
        .post("/api/v1/usage/batch", &key, json!({"events": too_many}))
        .await;
    assert_eq!(res.field_error(), (422, "invalid_length"));
    assert!(db.query("SELECT id FROM usage_records").await.is_empty());

    // 10,000 events in ten batches of 1,000, with odd micro-amounts: the sums are exact.
    let mut expected = [0i64; 3];
    let mut per_service = [[0i64; 2]; 3];
    let mut n = 0i64;
    for batch in 0..10 {
        let events: Vec<Value> = (0..1000)
            .map(|_| {
                n += 1;
                let u = (n % 3) as usize;
                let svc = (n % 2) as usize;
                let micros = (n * 7_919) % 3_000_017 + 1;
                expected[u] += micros;
                per_service[u][svc] += micros;
                event(&users[u], services[svc], models[(n % 3) as usize], micros)
            })
            .collect();
        let body = json!({"events": events});
        let (status, res, replayed) = post_idempotent(
            &s,
            "/api/v1/usage/batch",
            &key,
            &format!("batch-{batch}"),
            &body,
        )
        .await;
        assert_eq!((status, replayed), (201, false), "{res}");
        assert_eq!(res["recorded"], 1000);
        if batch == 0 {
            // A retried batch stores nothing new and answers the same ids.
            let (status, again, replayed) =
                post_idempotent(&s, "/api/v1/usage/batch", &key, "batch-0", &body).await;
            assert_eq!((status, replayed), (201, true));
            assert_eq!(again["ids"], res["ids"]);
        }
    }
    let rows = db.query("SELECT COUNT(*) AS n FROM usage_records").await;
    assert_eq!(rows[0].try_get::<i64>("", "n").unwrap(), 10_000);
    for (u, id) in users.iter().enumerate() {
        let report = s
            .get(&format!("/api/v1/users/{id}/usage?per_page=1"), &root)
            .await;
        assert_eq!(report.status, 200, "{}", report.body);
        let totals = &report.body["totals"];
        assert_eq!(totals["cost_micros"], expected[u], "user {u}");
        let exact = format!("{}.{:06}", expected[u] / 1_000_000, expected[u] % 1_000_000);
        assert_eq!(totals["cost"], exact.as_str());
        let by_service = report.body["by_service"].as_array().unwrap();
        for entry in by_service {
            let svc = services
                .iter()
                .position(|s| entry["service"] == *s)
                .unwrap();
            assert_eq!(entry["cost_micros"], per_service[u][svc]);
        }
        let models_sum: i64 = report.body["by_model"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["cost_micros"].as_i64().unwrap())
            .sum();
        assert_eq!(models_sum, expected[u]);
        assert_eq!(report.body["items"]["items"].as_array().unwrap().len(), 1);
    }
    s.stop().await;
}

async fn closing_a_period_bills_each_user_once(db: TestDb) {
    let a = db.app(&[]).await;
    let b = db.app(&[]).await;
    let root = a.admin().await;
    let key = service_key(&a, &root, &["usage:write"]).await;
    let (ada_id, ada) = a.user_as(&root, "ada@example.com", &["user"]).await;
    let bob_id = a.create_user(&root, "bob@example.com", &["user"]).await;
    let cy_id = a.create_user(&root, "cy@example.com", &["user"]).await;
    // A period past 2038, with usage inside it and on both edges.
    let at = |user: &str, micros: i64, when: &str| {
        let mut e = event(user, "openai", "small", micros);
        e["occurred_at"] = json!(when);
        e
    };
    let events = vec![
        at(&ada_id, 1_000_001, "2040-01-01T00:00:00Z"),
        at(&ada_id, 2_000_002, "2040-01-31T23:59:59.999999Z"),
        at(&bob_id, 5, "2040-01-15T00:00:00Z"),
        at(&cy_id, 7, "2040-02-01T00:00:00Z"),
    ];
    let res = a
        .post("/api/v1/usage/batch", &key, json!({"events": events}))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);

    let period =
        json!({"period_start": "2040-01-01T00:00:00Z", "period_end": "2040-02-01T00:00:00Z"});
    assert_eq!(
        a.post("/api/v1/admin/billing/close-period", &ada, period.clone())
            .await
            .problem(),
        (403, "insufficient_permission")
    );
    // Ten closes at once over two instances make each record once.
    let apps = [&a, &b];
    let results = race_with(10, |i| {
        let app = apps[i % 2];
        app.client
            .post(app.url("/api/v1/admin/billing/close-period"))
            .bearer_auth(&root)
            .json(&period)
    })
    .await;
    assert_eq!(count(&results, 200), 10, "{results:?}");
    let created: i64 = results
        .iter()
        .map(|(_, b)| b["created"].as_i64().unwrap())
        .sum();
    assert_eq!(created, 2, "{results:?}");
    let rows = db.query("SELECT id FROM billing_records").await;
    assert_eq!(rows.len(), 2);
    let closed = &results[0].1;
    assert_eq!(closed["period_start"], "2040-01-01T00:00:00Z");
    assert_eq!(closed["period_end"], "2040-02-01T00:00:00Z");
    assert_eq!(closed["records"]["total"], 2);
    assert_eq!(
        a.audit_total(&root, "event=billing_record_created").await,
        2
    );
    // A bound past 2038 filters the audit log on every backend too.
    let until = "event=billing_record_created&until=2040-06-01T00:00:00Z";
    assert_eq!(a.audit_total(&root, until).await, 2);
    let nulls = db
        .query("SELECT id FROM billing_records WHERE period_start IS NULL OR period_end IS NULL")
        .await;
    assert!(nulls.is_empty());

    // The user sees their record, exact and pending.
    let mine = a.get("/api/v1/me/billing", &ada).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["total"], 1);
    let record = mine.body["items"][0].clone();
    assert_eq!(record["amount"], "3.000003");
    assert_eq!(record["amount_micros"], 3_000_003);
    assert_eq!(
        (record["status"].as_str(), record["currency"].as_str()),
        (Some("pending"), Some("USD"))
    );
    assert_eq!(record["period_start"], "2040-01-01T00:00:00Z");

    // Overlapping periods are refused; the next one bills cy.
    let overlap =
        json!({"period_start": "2040-01-15T00:00:00Z", "period_end": "2040-02-15T00:00:00Z"});
    assert_eq!(
        a.post("/api/v1/admin/billing/close-period", &root, overlap)
            .await
            .problem(),
        (409, "period_overlaps")
    );
    let next =
        json!({"period_start": "2040-02-01T00:00:00Z", "period_end": "2040-03-01T00:00:00Z"});
    let res = a
        .post("/api/v1/admin/billing/close-period", &root, next)
        .await;
    assert_eq!(
        (res.status.as_u16(), res.body["created"].as_i64()),
        (200, Some(1)),
        "{}",
        res.body
    );
    let empty =
        json!({"period_start": "2040-03-01T00:00:00Z", "period_end": "2040-03-01T00:00:00Z"});
    assert_eq!(
        a.post("/api/v1/admin/billing/close-period", &root, empty)
            .await
            .field_error(),
        (422, "empty_period")
    );

    // An admin settles records: pending → paid → void, never back; each change audited.
    let path = format!("/api/v1/admin/billing/{}", record["id"].as_str().unwrap());
    assert_eq!(
        a.patch(&path, &ada, json!({"status": "paid"})).await.status,
        403
    );
    let res = a.patch(&path, &root, json!({"status": "paid"})).await;
    assert_eq!(
        (res.status.as_u16(), res.body["status"].as_str()),
        (200, Some("paid")),
        "{}",
        res.body
    );
    assert_eq!(
        b.patch(&path, &root, json!({"status": "paid"}))
            .await
            .status,
        200
    );
    assert_eq!(
        a.patch(&path, &root, json!({"status": "void"})).await.body["status"],
        "void"
    );
    assert_eq!(
        a.patch(&path, &root, json!({"status": "paid"}))
            .await
            .problem(),
        (409, "invalid_status_change")
    );
    assert_eq!(
        a.patch(&path, &root, json!({"status": "pending"}))
            .await
            .field_error(),
        (422, "unknown_status")
    );
    assert_eq!(
        a.audit_total(&root, "event=billing_record_status_changed")
            .await,
        2
    );
    let listed = a
        .get(
            &format!("/api/v1/admin/billing?user_id={ada_id}&status=void"),
            &root,
        )
        .await;
    assert_eq!(listed.body["total"], 1, "{}", listed.body);
    assert_eq!(
        a.get("/api/v1/admin/billing?status=pending", &root)
            .await
            .body["total"],
        2
    );
    a.stop().await;
    b.stop().await;
}

per_backend!(
    usage_is_validated_and_idempotent,
    batches_are_all_or_nothing_and_sums_exact,
    closing_a_period_bills_each_user_once
);
