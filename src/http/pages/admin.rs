//! The small admin console (admin and up): users (search, pages, disable and enable, unlock, role) and the audit log with its filters, over the same services as `/users` and `/audit`.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{Form, Layout, Page, PageError, PageResult};
use crate::domain::permissions::Permission;
use crate::domain::rbac;
use crate::domain::roles::Role;
use crate::service::accounts::AuditQuery;
use crate::service::users::{UserPatch, UserQuery};
use crate::service::{Paging, ServiceError};

const PER_PAGE: u64 = 20;

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    q: String,
    users: Vec<UserRow>,
    page: u64,
    pages: u64,
    total: u64,
    prev: Option<String>,
    next: Option<String>,
    grantable: Vec<&'static str>,
}

struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    active: bool,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    filter: AuditFilter,
    rows: Vec<AuditRow>,
    page: u64,
    total: u64,
    prev: Option<String>,
    next: Option<String>,
}

struct AuditRow {
    at: String,
    event: String,
    user_id: String,
    actor_id: String,
    ip: String,
    detail: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct UsersQuery {
    #[serde(default)]
    q: String,
    page: Option<u64>,
}

/// The query string of a listing's page `page`, keeping its filters.
fn page_link(path: &str, filters: &[(&str, &str)], page: u64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    query.append_pair("page", &page.to_string());
    format!("{path}?{}", query.finish())
}

/// Links to the previous and next pages, where they exist.
fn neighbours(
    path: &str,
    filters: &[(&str, &str)],
    page: u64,
    pages: u64,
) -> (Option<String>, Option<String>) {
    (
        (page > 1).then(|| page_link(path, filters, page - 1)),
        (page < pages).then(|| page_link(path, filters, page + 1)),
    )
}

pub(crate) async fn users(page: Page, Query(q): Query<UsersQuery>) -> PageResult {
    let who = page.at_least(Role::Admin)?;
    let paging = Paging::new(q.page, Some(PER_PAGE))?;
    let query = UserQuery {
        q: Some(q.q.trim().to_string()).filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let listing = page.gh().users().list(query, paging).await?;
    let pages = listing.total.div_ceil(PER_PAGE).max(1);
    let (prev, next) = neighbours("/admin/users", &[("q", &q.q)], listing.page, pages);
    let own = who.highest_role();
    let grantable = Role::ALL
        .iter()
        .copied()
        .filter(|r| rbac::may_grant(own, *r))
        .map(Role::name)
        .collect();
    page.ok(&UsersPage {
        layout: page.layout("Users"),
        q: q.q,
        users: listing
            .items
            .into_iter()
            .map(|u| UserRow {
                id: u.id.to_string(),
                is_self: u.id == who.user_id,
                role: u.roles.first().cloned().unwrap_or_default(),
                email: u.email,
                name: u.name.unwrap_or_default(),
                active: u.active,
            })
            .collect(),
        page: listing.page,
        pages,
        total: listing.total,
        prev,
        next,
        grantable,
    })
}

#[derive(Deserialize)]
pub(crate) struct UserAction {
    id: String,
    action: String,
    #[serde(default)]
    role: String,
}

pub(crate) async fn user_action(page: Page, Form(form): Form<UserAction>) -> PageResult {
    let who = page.at_least(Role::Admin)?;
    let id = super::super::extract::path_id(&form.id)?;
    let users = page.gh().users();
    let client = &page.client;
    let active = |active| UserPatch {
        active: Some(active),
        ..Default::default()
    };
    match form.action.as_str() {
        "disable" => {
            users.update(who, id, active(false), client).await?;
        }
        "enable" => {
            users.update(who, id, active(true), client).await?;
        }
        "unlock" => users.unlock(who, id, client).await?,
        "role" => {
            users.set_roles(who, id, vec![form.role], client).await?;
        }
        _ => return Err(PageError::new(StatusCode::BAD_REQUEST, "Unknown action.")),
    }
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditFilter {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<u64>,
}

/// A filter's instant: RFC 3339, or a date (its midnight, UTC).
fn instant(field: &'static str, raw: &str) -> Result<Option<DateTime<Utc>>, ServiceError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
        .map(Some)
        .ok_or_else(|| {
            ServiceError::invalid(
                field,
                "invalid_value",
                format!("{field} must be a date (YYYY-MM-DD) or an RFC 3339 instant"),
            )
        })
}

pub(crate) async fn audit(page: Page, Query(filter): Query<AuditFilter>) -> PageResult {
    let who = page.at_least(Role::Admin)?;
    if !who.allows(Permission::AuditRead) {
        return Err(ServiceError::missing_permission(Permission::AuditRead).into());
    }
    let paging = Paging::new(filter.page, Some(PER_PAGE))?;
    let user_id = match filter.user_id.trim() {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| {
            ServiceError::invalid("user_id", "invalid_value", "user id must be a UUID")
        })?),
    };
    let query = AuditQuery {
        user_id,
        event: Some(filter.event.trim().to_string()).filter(|e| !e.is_empty()),
        since: instant("since", &filter.since)?,
        until: instant("until", &filter.until)?,
        ..Default::default()
    };
    let listing = page.gh().accounts().audit_log(query, paging).await?;
    let pages = listing.total.div_ceil(PER_PAGE).max(1);
    let (prev, next) = neighbours(
        "/admin/audit",
        &[
            ("user_id", &filter.user_id),
            ("event", &filter.event),
            ("since", &filter.since),
            ("until", &filter.until),
        ],
        listing.page,
        pages,
    );
    let id = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    page.ok(&AuditPage {
        layout: page.layout("Audit log"),
        rows: listing
            .items
            .into_iter()
            .map(|a| AuditRow {
                at: a.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                event: a.event,
                user_id: id(a.user_id),
                actor_id: id(a.actor_id),
                ip: a.ip_address.unwrap_or_default(),
                detail: if a.detail.is_null() {
                    String::new()
                } else {
                    a.detail.to_string()
                },
            })
            .collect(),
        page: listing.page,
        total: listing.total,
        prev,
        next,
        filter,
    })
}
