//! Gatehouse embedded in a host axum app on every backend: the role and permission extractors guard the host's own routes, and the nested contract routes still work.

use axum::Router;
use axum::routing::get;

use crate::helpers::TestDb;

async fn reports(
    gatehouse::RequireRole(who, ..): gatehouse::RequireRole<gatehouse::tier::Moderator>,
) -> String {
    format!("reports for {}", who.user_id)
}

async fn directory(_: gatehouse::RequirePermission<gatehouse::perm::UsersRead>) -> &'static str {
    "directory"
}

async fn extractors_in_a_host_app(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (_, mo) = s.user_as(&root, "mo@example.com", &["moderator"]).await;
    let (_, us) = s.user_as(&root, "us@example.com", &["user"]).await;
    let app = Router::new()
        .nest("/api/v1", s.gh.router())
        .route("/reports", get(reports))
        .route("/directory", get(directory))
        .with_state(s.gh.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let get_as = |path: &str, token: Option<&str>| {
        let mut req = s.client.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (status, text) = get_as("/reports", Some(&mo)).await;
    assert_eq!(status, 200);
    assert!(text.starts_with("reports for "), "{text}");
    let (status, text) = get_as("/reports", Some(&us)).await;
    assert_eq!(status, 403);
    assert!(text.contains("insufficient_role"), "{text}");
    assert_eq!(get_as("/reports", None).await.0, 401);
    assert_eq!(get_as("/directory", Some(&mo)).await.0, 200);
    assert_eq!(get_as("/directory", Some(&us)).await.0, 403);
    // The nested contract routes work in the host app too.
    assert_eq!(get_as("/api/v1/auth/me", Some(&us)).await.0, 200);
    s.stop().await;
}

per_backend!(extractors_in_a_host_app);
