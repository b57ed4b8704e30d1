//! The harness every flow module shares: a database per test on each backend, the CLI runner, the in-process server with its typed calls, a real browser over WebDriver, a cuttable TCP proxy, races, mail, outside sign-in providers, and `per_backend!`.

mod app;
mod browser;
mod cli;
mod db;
mod mail;
mod oidc;
mod passkey;
mod proxy;
mod race;
mod settle;
mod totp;

pub use app::{PASSWORD, Pair, ROOT, Reply, TestApp, USER_AGENT, WRONG_PASSWORD, claims};
pub use browser::Browser;
pub use cli::{assert_one_line_failure, assert_success, run_cli, stderr, stdout};
pub use db::{Backend, JWT_SECRET, TestDb};
pub use mail::{SmtpSink, decode_qp, link_token, wait_for_eml};
pub use oidc::{CookieBrowser, OAuthWorld, param, with_param};
pub use passkey::{ORIGIN, SoftKey, localhost_app};
pub use proxy::Proxy;
pub use race::{count, distinct, race_on, race_replies, race_with};
pub use totp::{MASTER_KEY, base32_decode, code_at, step_now, wrong_code};

/// Generate one test per backend (`sqlite::name`, `postgres::name`, `mysql::name`) from
/// `async fn name(db: TestDb)` in the module that invokes it. A backend that
/// `GATEHOUSE_TEST_BACKENDS` leaves out passes without running; one whose server is missing
/// fails (see `TestDb::create`).
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::helpers::TestDb::create($crate::helpers::Backend::Sqlite).await { super::$name(db).await }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::helpers::TestDb::create($crate::helpers::Backend::Postgres).await { super::$name(db).await }
            })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::helpers::TestDb::create($crate::helpers::Backend::MySql).await { super::$name(db).await }
            })*
        }
    };
}
