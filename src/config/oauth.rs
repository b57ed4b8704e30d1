//! Sign-in through outside providers: whether it is on, the Google and GitHub presets, generic OpenID Connect providers by issuer, and where a finished sign-in may send the browser.

use url::Url;

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

/// GitHub's endpoints, overridable (`OAUTH_GITHUB_*_URL`) for GitHub Enterprise or a test stand-in.
const GITHUB_AUTH_URL: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API_URL: &str = "https://api.github.com";
/// The issuer Google's discovery document is read from.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// What a generic provider is asked for unless `OAUTH_<NAME>_SCOPES` says otherwise.
const DEFAULT_SCOPES: &str = "openid email profile";
/// The longest provider name (the `provider` column holds 32 characters).
const MAX_NAME: usize = 32;

/// One generic OpenID Connect provider (`OAUTH_PROVIDERS`, `OAUTH_<NAME>_*`).
#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    /// Lower case, as it appears in URLs (`/auth/oauth/{name}/…`).
    pub name: String,
    pub display_name: String,
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub enabled: bool,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<Secret>,
    pub github_auth_url: Url,
    pub github_token_url: Url,
    pub github_api_url: Url,
    pub providers: Vec<OidcProviderConfig>,
    /// Origins or URL prefixes a `redirect_uri` may point to; `GATEHOUSE_PUBLIC_URL`'s origin
    /// unless set.
    pub redirect_allowlist: Vec<Url>,
}

/// A variable name made at run time (`OAUTH_ACME_ISSUER`), kept for the error that names it.
fn var_name(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// A client secret must come with its client id.
fn require_secret(
    id: &Option<String>,
    secret: &Option<Secret>,
    id_var: &'static str,
    secret_var: &'static str,
) -> Result<(), ConfigError> {
    if id.is_some() && secret.is_none() {
        return Err(ConfigError::new(
            secret_var,
            format!("required when {id_var} is set"),
        ));
    }
    Ok(())
}

impl OidcProviderConfig {
    fn from_vars(vars: &Vars, name: &str) -> Result<Self, ConfigError> {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        let var = |suffix: &str| format!("OAUTH_{upper}_{suffix}");
        let required = |suffix: &str| {
            let name = var(suffix);
            match vars.get(&name) {
                Some(v) => Ok(v.to_string()),
                None => Err(ConfigError::new(
                    var_name(name),
                    "required for a provider named in OAUTH_PROVIDERS",
                )),
            }
        };
        let issuer_raw = required("ISSUER")?;
        let issuer = Url::parse(&issuer_raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                ConfigError::new(
                    var_name(var("ISSUER")),
                    format!("{issuer_raw:?} is not an http(s) URL"),
                )
            })?;
        let client_id = required("CLIENT_ID")?;
        let client_secret = Secret::new(required("CLIENT_SECRET")?);
        let scopes = vars
            .get(&var("SCOPES"))
            .unwrap_or(DEFAULT_SCOPES)
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(ConfigError::new(
                var_name(var("SCOPES")),
                "must include openid",
            ));
        }
        let display_name = vars
            .get(&var("DISPLAY_NAME"))
            .map(str::to_string)
            .unwrap_or_else(|| name.to_string());
        Ok(Self {
            name: name.to_string(),
            display_name,
            issuer,
            client_id,
            client_secret,
            scopes,
        })
    }
}

impl OAuthConfig {
    pub(super) fn from_vars(vars: &Vars, public_url: &Url) -> Result<Self, ConfigError> {
        let enabled = vars.bool("OAUTH_ENABLED", false)?;
        let google_client_id = vars.get("GOOGLE_CLIENT_ID").map(str::to_string);
        let google_client_secret = vars.secret("GOOGLE_CLIENT_SECRET");
        require_secret(
            &google_client_id,
            &google_client_secret,
            "GOOGLE_CLIENT_ID",
            "GOOGLE_CLIENT_SECRET",
        )?;
        let github_client_id = vars.get("GITHUB_CLIENT_ID").map(str::to_string);
        let github_client_secret = vars.secret("GITHUB_CLIENT_SECRET");
        require_secret(
            &github_client_id,
            &github_client_secret,
            "GITHUB_CLIENT_ID",
            "GITHUB_CLIENT_SECRET",
        )?;
        let github_auth_url = vars.http_url("OAUTH_GITHUB_AUTH_URL", GITHUB_AUTH_URL)?;
        let github_token_url = vars.http_url("OAUTH_GITHUB_TOKEN_URL", GITHUB_TOKEN_URL)?;
        let github_api_url = vars.http_url("OAUTH_GITHUB_API_URL", GITHUB_API_URL)?;
        let names = vars.list("OAUTH_PROVIDERS", "a provider name (a-z, 0-9, -)", |s| {
            let ok = s.len() <= MAX_NAME
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && s != "google"
                && s != "github";
            ok.then(|| s.to_string())
        })?;
        let mut providers: Vec<OidcProviderConfig> = Vec::new();
        for name in names {
            if providers.iter().any(|p| p.name == name) {
                return Err(ConfigError::new(
                    "OAUTH_PROVIDERS",
                    format!("{name:?} is named twice"),
                ));
            }
            providers.push(OidcProviderConfig::from_vars(vars, &name)?);
        }
        let mut redirect_allowlist = vars.list(
            "OAUTH_REDIRECT_ALLOWLIST",
            "an http(s) origin or URL prefix",
            |s| {
                Url::parse(s)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            },
        )?;
        if redirect_allowlist.is_empty() {
            let origin = public_url.origin().ascii_serialization();
            redirect_allowlist.push(Url::parse(&origin).expect("an http(s) origin"));
        }
        Ok(Self {
            enabled,
            google_client_id,
            google_client_secret,
            github_client_id,
            github_client_secret,
            github_auth_url,
            github_token_url,
            github_api_url,
            providers,
            redirect_allowlist,
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.value("OAUTH_ENABLED", self.enabled);
        out.optional("GOOGLE_CLIENT_ID", self.google_client_id.as_ref());
        out.secret("GOOGLE_CLIENT_SECRET", self.google_client_secret.as_ref());
        out.optional("GITHUB_CLIENT_ID", self.github_client_id.as_ref());
        out.secret("GITHUB_CLIENT_SECRET", self.github_client_secret.as_ref());
        out.value("OAUTH_GITHUB_AUTH_URL", &self.github_auth_url);
        out.value("OAUTH_GITHUB_TOKEN_URL", &self.github_token_url);
        out.value("OAUTH_GITHUB_API_URL", &self.github_api_url);
        let names: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
        out.list("OAUTH_PROVIDERS", &names);
        for p in &self.providers {
            let upper = p.name.to_ascii_uppercase().replace('-', "_");
            out.value(&format!("OAUTH_{upper}_ISSUER"), &p.issuer);
            out.value(&format!("OAUTH_{upper}_CLIENT_ID"), &p.client_id);
            out.secret(
                &format!("OAUTH_{upper}_CLIENT_SECRET"),
                Some(&p.client_secret),
            );
            out.value(&format!("OAUTH_{upper}_SCOPES"), p.scopes.join(" "));
            out.value(&format!("OAUTH_{upper}_DISPLAY_NAME"), &p.display_name);
        }
        let allow: Vec<String> = self
            .redirect_allowlist
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .collect();
        out.list("OAUTH_REDIRECT_ALLOWLIST", &allow);
    }
}
