//! Passkeys (WebAuthn): the relying party's id, the origins a ceremony may come from and the name authenticators show, checked against `GATEHOUSE_PUBLIC_URL` at start so a mismatch fails with the variable's name instead of every passkey later.

use url::{Host, Url};

use super::print::Lines;
use super::{ConfigError, Vars};

#[derive(Debug, Clone)]
pub struct WebauthnConfig {
    /// `WEBAUTHN_RP_ID`: a domain (the public URL's host or a parent of it). `None` when it was
    /// not set and the public URL's host is an IP address: passkeys are then off.
    pub rp_id: Option<String>,
    /// `WEBAUTHN_RP_ORIGINS`: `scheme://host[:port]` of the pages that may run a ceremony.
    pub rp_origins: Vec<Url>,
    /// `WEBAUTHN_RP_NAME`: what an authenticator shows beside the passkey.
    pub rp_name: String,
}

/// Whether `host` is `rp_id` or one of its subdomains.
fn under(host: &str, rp_id: &str) -> bool {
    host == rp_id
        || host
            .strip_suffix(rp_id)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The domain of a URL, or `None` for an IP address or no host.
fn domain(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain(d) => Some(d.to_ascii_lowercase()),
        _ => None,
    }
}

impl WebauthnConfig {
    pub(super) fn from_vars(
        vars: &Vars,
        public_url: &Url,
        product_name: &str,
    ) -> Result<Self, ConfigError> {
        let public_host = domain(public_url);
        let rp_id = match vars.get("WEBAUTHN_RP_ID") {
            None => public_host.clone(),
            Some(raw) => {
                let id = raw.to_ascii_lowercase();
                let bare = Url::parse(&format!("https://{id}/"))
                    .ok()
                    .and_then(|u| domain(&u))
                    .is_some_and(|d| d == id);
                if !bare {
                    return Err(ConfigError::new(
                        "WEBAUTHN_RP_ID",
                        format!(
                            "{raw:?} is not a domain name (no scheme, port, path or IP address)"
                        ),
                    ));
                }
                match &public_host {
                    Some(host) if under(host, &id) => {}
                    _ => {
                        return Err(ConfigError::new(
                            "WEBAUTHN_RP_ID",
                            format!(
                                "{id:?} does not match GATEHOUSE_PUBLIC_URL ({public_url}): it must be that URL's host or a parent domain of it"
                            ),
                        ));
                    }
                }
                Some(id)
            }
        };
        let origins = vars.list("WEBAUTHN_RP_ORIGINS", "an http(s) origin", |s| {
            Url::parse(s)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none())
        })?;
        let rp_origins = match &rp_id {
            None if !origins.is_empty() => {
                return Err(ConfigError::new(
                    "WEBAUTHN_RP_ORIGINS",
                    format!(
                        "passkeys need a domain: GATEHOUSE_PUBLIC_URL ({public_url}) has an IP address, so set WEBAUTHN_RP_ID and a public URL on that domain"
                    ),
                ));
            }
            None => Vec::new(),
            Some(_) if origins.is_empty() => {
                let mut origin = public_url.clone();
                origin.set_path("/");
                origin.set_query(None);
                origin.set_fragment(None);
                vec![origin]
            }
            Some(id) => {
                for origin in &origins {
                    let host = domain(origin).unwrap_or_default();
                    if !under(&host, id) {
                        return Err(ConfigError::new(
                            "WEBAUTHN_RP_ORIGINS",
                            format!(
                                "{} is not on WEBAUTHN_RP_ID {id:?} (its host must be that domain or a subdomain of it)",
                                origin.origin().ascii_serialization()
                            ),
                        ));
                    }
                    if origin.scheme() == "http" && host != "localhost" {
                        return Err(ConfigError::new(
                            "WEBAUTHN_RP_ORIGINS",
                            format!(
                                "{} must be https (browsers allow passkeys over http only on localhost)",
                                origin.origin().ascii_serialization()
                            ),
                        ));
                    }
                }
                origins
            }
        };
        Ok(Self {
            rp_id,
            rp_origins,
            rp_name: vars.string("WEBAUTHN_RP_NAME", product_name),
        })
    }

    /// Whether passkeys are on (there is a relying-party id).
    pub fn enabled(&self) -> bool {
        self.rp_id.is_some()
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.optional("WEBAUTHN_RP_ID", self.rp_id.as_ref());
        let origins: Vec<String> = self
            .rp_origins
            .iter()
            .map(|o| o.origin().ascii_serialization())
            .collect();
        out.list("WEBAUTHN_RP_ORIGINS", &origins);
        out.value("WEBAUTHN_RP_NAME", &self.rp_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(public: &str, pairs: &[(&str, &str)]) -> Result<WebauthnConfig, ConfigError> {
        let vars = Vars::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        WebauthnConfig::from_vars(&vars, &Url::parse(public).unwrap(), "Gatehouse")
    }

    #[test]
    fn defaults_come_from_the_public_url() {
        let c = read("https://auth.example.com/base", &[]).unwrap();
        assert_eq!(c.rp_id.as_deref(), Some("auth.example.com"));
        assert_eq!(c.rp_origins[0].as_str(), "https://auth.example.com/");
        assert_eq!(c.rp_name, "Gatehouse");
    }

    #[test]
    fn an_ip_address_turns_passkeys_off_unless_asked_for() {
        assert!(!read("http://127.0.0.1:8080", &[]).unwrap().enabled());
        let err = read("http://127.0.0.1:8080", &[("WEBAUTHN_RP_ID", "localhost")]).unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_RP_ID");
        let err = read(
            "http://127.0.0.1:8080",
            &[("WEBAUTHN_RP_ORIGINS", "http://localhost:8080")],
        )
        .unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_RP_ORIGINS");
    }

    #[test]
    fn the_rp_id_must_be_the_public_host_or_a_parent() {
        let ok = read(
            "https://auth.example.com",
            &[
                ("WEBAUTHN_RP_ID", "example.com"),
                (
                    "WEBAUTHN_RP_ORIGINS",
                    "https://auth.example.com,https://app.example.com",
                ),
            ],
        )
        .unwrap();
        assert_eq!(ok.rp_origins.len(), 2);
        for bad in [
            "other.com",
            "ample.com",
            "https://example.com",
            "example.com:443",
        ] {
            let err = read("https://auth.example.com", &[("WEBAUTHN_RP_ID", bad)]).unwrap_err();
            assert_eq!(err.var, "WEBAUTHN_RP_ID", "{bad}");
        }
    }

    #[test]
    fn origins_must_sit_on_the_rp_id_and_be_https_off_localhost() {
        let err = read(
            "https://auth.example.com",
            &[("WEBAUTHN_RP_ORIGINS", "https://evil.com")],
        )
        .unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_RP_ORIGINS");
        let err = read(
            "https://auth.example.com",
            &[("WEBAUTHN_RP_ORIGINS", "http://auth.example.com")],
        )
        .unwrap_err();
        assert!(err.message.contains("https"), "{err}");
        assert!(read("http://localhost:3000", &[]).unwrap().enabled());
    }
}
