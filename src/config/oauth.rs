//! Sign-in through Google and GitHub: whether it is on, and each provider's client credentials.

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub enabled: bool,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<Secret>,
}

impl OAuthConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: vars.bool("OAUTH_ENABLED", false)?,
            google_client_id: vars.get("GOOGLE_CLIENT_ID").map(str::to_string),
            google_client_secret: vars.secret("GOOGLE_CLIENT_SECRET"),
            github_client_id: vars.get("GITHUB_CLIENT_ID").map(str::to_string),
            github_client_secret: vars.secret("GITHUB_CLIENT_SECRET"),
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.value("OAUTH_ENABLED", self.enabled);
        out.optional("GOOGLE_CLIENT_ID", self.google_client_id.as_ref());
        out.secret("GOOGLE_CLIENT_SECRET", self.google_client_secret.as_ref());
        out.optional("GITHUB_CLIENT_ID", self.github_client_id.as_ref());
        out.secret("GITHUB_CLIENT_SECRET", self.github_client_secret.as_ref());
    }
}
