//! How access and refresh tokens are signed and how long they live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
    ES256,
    RS256,
}

const ALGORITHMS: &[(&str, JwtAlgorithm)] = &[
    ("HS256", JwtAlgorithm::HS256),
    ("EdDSA", JwtAlgorithm::EdDSA),
    ("ES256", JwtAlgorithm::ES256),
    ("RS256", JwtAlgorithm::RS256),
];

impl JwtAlgorithm {
    /// Every algorithm's name, as `JWT_ALGORITHM` takes it.
    pub fn names() -> Vec<&'static str> {
        ALGORITHMS.iter().map(|(name, _)| *name).collect()
    }

    /// The algorithm `raw` names, case-insensitively.
    pub fn parse(raw: &str) -> Option<Self> {
        ALGORITHMS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(raw))
            .map(|(_, a)| *a)
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: Option<Secret>,
    pub algorithm: JwtAlgorithm,
    pub private_key_file: Option<PathBuf>,
    /// Earlier HS256 secrets that still verify (`JWT_PREVIOUS_SECRETS`), during a rotation.
    pub previous_secrets: Vec<Secret>,
    /// Earlier PEM private key files that still verify (`JWT_PREVIOUS_KEY_FILES`).
    pub previous_key_files: Vec<PathBuf>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// The PEM private key (EdDSA, ES256 or RS256) that signs the ID tokens of Gatehouse as an
    /// OpenID Provider while access tokens are HS256 (`OIDC_SIGNING_KEY_FILE`).
    pub oidc_signing_key_file: Option<PathBuf>,
}

impl JwtConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let algorithm = vars.choice("JWT_ALGORITHM", JwtAlgorithm::HS256, ALGORITHMS)?;
        let secret = vars.secret("JWT_SECRET");
        if let Some(s) = &secret
            && s.expose().len() < 32
        {
            return Err(ConfigError::new("JWT_SECRET", "must be at least 32 bytes"));
        }
        let private_key_file = vars.get("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        if algorithm != JwtAlgorithm::HS256 && private_key_file.is_none() {
            return Err(ConfigError::new(
                "JWT_PRIVATE_KEY_FILE",
                "required when JWT_ALGORITHM is not HS256",
            ));
        }
        if let Some(path) = &private_key_file {
            readable("JWT_PRIVATE_KEY_FILE", path)?;
        }
        let previous_secrets = match vars.secret("JWT_PREVIOUS_SECRETS") {
            None => Vec::new(),
            Some(all) => all
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.len() < 32 {
                        Err(ConfigError::new(
                            "JWT_PREVIOUS_SECRETS",
                            "each secret must be at least 32 bytes",
                        ))
                    } else {
                        Ok(Secret::new(s))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let previous_key_files = vars.list("JWT_PREVIOUS_KEY_FILES", "a path", |s| {
            Some(PathBuf::from(s))
        })?;
        for path in &previous_key_files {
            readable("JWT_PREVIOUS_KEY_FILES", path)?;
        }
        let oidc_signing_key_file = vars.get("OIDC_SIGNING_KEY_FILE").map(PathBuf::from);
        if let Some(path) = &oidc_signing_key_file {
            readable("OIDC_SIGNING_KEY_FILE", path)?;
        }
        Ok(Self {
            secret,
            algorithm,
            private_key_file,
            previous_secrets,
            previous_key_files,
            oidc_signing_key_file,
            access_token_ttl: vars.seconds("JWT_ACCESS_TOKEN_EXPIRES", 900, 10..=86_400)?,
            refresh_token_ttl: vars.seconds(
                "JWT_REFRESH_TOKEN_EXPIRES",
                604_800,
                60..=86_400 * 365,
            )?,
        })
    }

    /// `dev_key`: where an HS256 key is kept when `JWT_SECRET` is unset (see `Config::dev_jwt_key_path`).
    pub(super) fn render(&self, dev_key: Option<&Path>, out: &mut Lines) {
        match (&self.secret, dev_key) {
            (None, Some(p)) if self.algorithm == JwtAlgorithm::HS256 => {
                out.value(
                    "JWT_SECRET",
                    format!("(development key in {})", p.display()),
                );
            }
            (secret, _) => out.secret("JWT_SECRET", secret.as_ref()),
        }
        out.choice("JWT_ALGORITHM", ALGORITHMS, self.algorithm);
        out.optional(
            "JWT_PRIVATE_KEY_FILE",
            self.private_key_file.as_deref().map(Path::display),
        );
        out.secret("JWT_PREVIOUS_SECRETS", self.previous_secrets.first());
        let files: Vec<_> = self
            .previous_key_files
            .iter()
            .map(|p| p.display())
            .collect();
        out.list("JWT_PREVIOUS_KEY_FILES", &files);
        out.seconds("JWT_ACCESS_TOKEN_EXPIRES", self.access_token_ttl);
        out.seconds("JWT_REFRESH_TOKEN_EXPIRES", self.refresh_token_ttl);
        out.optional(
            "OIDC_SIGNING_KEY_FILE",
            self.oidc_signing_key_file.as_deref().map(Path::display),
        );
    }
}

fn readable(var: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!("{} is not a readable file", path.display()),
        ))
    }
}
