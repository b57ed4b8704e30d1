//! The administrator created at start when `ADMIN_USERNAME` and `ADMIN_PASSWORD` are set (both or neither).

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: Secret,
}

impl BootstrapAdmin {
    /// None when neither variable is set.
    pub(super) fn from_vars(vars: &Vars) -> Result<Option<Self>, ConfigError> {
        match (vars.get("ADMIN_USERNAME"), vars.secret("ADMIN_PASSWORD")) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "ADMIN_PASSWORD",
                "required when ADMIN_USERNAME is set",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "ADMIN_USERNAME",
                "required when ADMIN_PASSWORD is set",
            )),
            (Some(email), Some(password)) => {
                crate::domain::email::Email::parse(email).map_err(|e| {
                    ConfigError::new("ADMIN_USERNAME", format!("must be an email address: {e}"))
                })?;
                Ok(Some(Self {
                    email: email.to_string(),
                    password,
                }))
            }
        }
    }

    pub(super) fn render(admin: Option<&Self>, out: &mut Lines) {
        out.optional("ADMIN_USERNAME", admin.map(|a| &a.email));
        out.secret("ADMIN_PASSWORD", admin.map(|a| &a.password));
    }
}
