//! The hosted sign-in and account pages: whether they are served, their branding, and the origins `/login?redirect_to=` may send a browser back to.

use url::Url;

use super::print::Lines;
use super::{ConfigError, Vars};

/// The accent colour when `UI_ACCENT_COLOR` is unset.
const DEFAULT_ACCENT: &str = "#2557d6";

#[derive(Debug, Clone)]
pub struct UiConfig {
    /// `GATEHOUSE_UI`: serve the pages (off for API-only deployments: their routes answer 404).
    pub enabled: bool,
    pub product_name: String,
    /// An http(s) URL shown as the logo; its origin joins the pages' `img-src`.
    pub logo_url: Option<Url>,
    /// `#rrggbb`, lower case.
    pub accent_color: String,
    /// Origins (`scheme://host[:port]`) a sign-in may return to with a one-time code.
    pub redirect_allowlist: Vec<String>,
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https")
        .then(|| url.origin().ascii_serialization())
        .filter(|o| o != "null")
}

impl UiConfig {
    pub(super) fn from_vars(vars: &Vars, public_url: &Url) -> Result<Self, ConfigError> {
        let logo_url = match vars.get("UI_LOGO_URL") {
            None => None,
            Some(raw) => Some(
                Url::parse(raw)
                    .ok()
                    .filter(|u| origin(u).is_some())
                    .ok_or_else(|| {
                        ConfigError::new("UI_LOGO_URL", "must be an http or https URL")
                    })?,
            ),
        };
        let accent = vars.string("UI_ACCENT_COLOR", DEFAULT_ACCENT);
        let hex = accent.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ConfigError::new(
                "UI_ACCENT_COLOR",
                format!("expected a colour as #rrggbb, got {accent:?}"),
            ));
        }
        let mut redirect_allowlist =
            vars.list("UI_REDIRECT_ALLOWLIST", "an http(s) origin", |s| {
                Url::parse(s)
                    .ok()
                    .filter(|u| u.path() == "/" && u.query().is_none())
                    .and_then(|u| origin(&u))
            })?;
        if redirect_allowlist.is_empty() {
            redirect_allowlist.extend(origin(public_url));
        }
        Ok(Self {
            enabled: vars.bool("GATEHOUSE_UI", true)?,
            product_name: vars.string("UI_PRODUCT_NAME", "Gatehouse"),
            logo_url,
            accent_color: accent.to_ascii_lowercase(),
            redirect_allowlist,
        })
    }

    /// Whether a sign-in may send the browser to `url` (its origin is allow-listed).
    pub fn allows_redirect(&self, url: &Url) -> bool {
        origin(url).is_some_and(|o| self.redirect_allowlist.contains(&o))
    }

    /// The logo's origin, for the pages' `img-src`.
    pub fn logo_origin(&self) -> Option<String> {
        self.logo_url.as_ref().and_then(origin)
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.value("GATEHOUSE_UI", if self.enabled { "on" } else { "off" });
        out.value("UI_PRODUCT_NAME", &self.product_name);
        out.optional("UI_LOGO_URL", self.logo_url.as_ref());
        out.value("UI_ACCENT_COLOR", &self.accent_color);
        out.list("UI_REDIRECT_ALLOWLIST", &self.redirect_allowlist);
    }
}
