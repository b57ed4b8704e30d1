//! Moving in: how one record of another system's user export becomes a Gatehouse account — the field and role map (defaults and the `--map` file), and what each value may be (booleans, instants, metadata, roles, a TOTP secret).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::email::Email;
use super::profile::{DisplayName, Metadata};
use super::roles::Role;

/// A value a record can give, and the source field names tried for it by default (first found wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Email,
    PasswordHash,
    Name,
    Roles,
    Active,
    Disabled,
    EmailVerified,
    CreatedAt,
    LastLoginAt,
    Metadata,
    TotpSecret,
    MfaEnabled,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Email,
        Field::PasswordHash,
        Field::Name,
        Field::Roles,
        Field::Active,
        Field::Disabled,
        Field::EmailVerified,
        Field::CreatedAt,
        Field::LastLoginAt,
        Field::Metadata,
        Field::TotpSecret,
        Field::MfaEnabled,
    ];

    /// The name a map file uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::PasswordHash => "password_hash",
            Field::Name => "name",
            Field::Roles => "roles",
            Field::Active => "active",
            Field::Disabled => "disabled",
            Field::EmailVerified => "email_verified",
            Field::CreatedAt => "created_at",
            Field::LastLoginAt => "last_login_at",
            Field::Metadata => "metadata",
            Field::TotpSecret => "totp_secret",
            Field::MfaEnabled => "mfa_enabled",
        }
    }

    /// The source names tried when the map file names none.
    pub fn default_sources(self) -> &'static [&'static str] {
        match self {
            Field::Email => &["email", "email_address", "mail"],
            Field::PasswordHash => &[
                "password_hash",
                "passwordHash",
                "hashed_password",
                "password",
            ],
            Field::Name => &[
                "name",
                "full_name",
                "fullName",
                "display_name",
                "displayName",
            ],
            Field::Roles => &["roles", "role"],
            Field::Active => &["active", "is_active", "isActive", "enabled"],
            Field::Disabled => &["disabled", "is_disabled", "isDisabled"],
            Field::EmailVerified => &[
                "email_verified",
                "emailVerified",
                "is_verified",
                "isVerified",
                "verified",
            ],
            Field::CreatedAt => &["created_at", "createdAt", "date_joined", "created"],
            Field::LastLoginAt => &["last_login_at", "last_login", "lastLogin", "lastLoginAt"],
            Field::Metadata => &["metadata", "meta"],
            Field::TotpSecret => &["totp_secret", "mfa_secret", "totpSecret", "mfaSecret"],
            Field::MfaEnabled => &["mfa_enabled", "mfaEnabled", "totp_enabled", "totpEnabled"],
        }
    }

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Source role names (compared case-insensitively) and the tier each becomes; `None` drops it.
const DEFAULT_ROLES: &[(&str, Option<Role>)] = &[
    ("super_admin", Some(Role::SuperAdmin)),
    ("superadmin", Some(Role::SuperAdmin)),
    ("super-admin", Some(Role::SuperAdmin)),
    ("superuser", Some(Role::SuperAdmin)),
    ("owner", Some(Role::SuperAdmin)),
    ("admin", Some(Role::Admin)),
    ("administrator", Some(Role::Admin)),
    ("moderator", Some(Role::Moderator)),
    ("mod", Some(Role::Moderator)),
    ("staff", Some(Role::Moderator)),
    ("user", Some(Role::User)),
    ("member", Some(Role::User)),
    ("customer", Some(Role::User)),
    ("guest", Some(Role::Guest)),
    ("viewer", Some(Role::Guest)),
    ("readonly", Some(Role::Guest)),
    ("read_only", Some(Role::Guest)),
];

/// How records are read: which source field gives each value, which source role becomes
/// which tier, and the defaults for what a record leaves out.
#[derive(Debug, Clone)]
pub struct ImportMap {
    fields: HashMap<Field, Vec<String>>,
    roles: HashMap<String, Option<Role>>,
    default_roles: Vec<Role>,
    email_verified: bool,
}

impl Default for ImportMap {
    fn default() -> Self {
        Self {
            fields: Field::ALL
                .into_iter()
                .map(|f| {
                    (
                        f,
                        f.default_sources().iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
            roles: DEFAULT_ROLES
                .iter()
                .map(|(name, role)| (name.to_string(), *role))
                .collect(),
            default_roles: vec![Role::User],
            email_verified: true,
        }
    }
}

/// The `--map` file as written (JSON).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[serde(default)]
    fields: HashMap<String, String>,
    #[serde(default)]
    roles: HashMap<String, Option<String>>,
    #[serde(default)]
    default_roles: Option<Vec<String>>,
    #[serde(default)]
    email_verified: Option<bool>,
}

fn tier(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        format!("{name:?} is not a Gatehouse role ({})", all.join(", "))
    })
}

impl ImportMap {
    /// The defaults with a map file's entries laid over them. A field named there is read from
    /// that source field only; a role named there replaces the default for that name.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: MapFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut map = Self::default();
        for (target, source) in file.fields {
            let field = Field::parse(&target).ok_or_else(|| {
                let all: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                format!("fields: unknown field {target:?} ({})", all.join(", "))
            })?;
            map.fields.insert(field, vec![source]);
        }
        for (source, target) in file.roles {
            let role = match target {
                Some(t) => Some(tier(&t).map_err(|e| format!("roles: {source:?}: {e}"))?),
                None => None,
            };
            map.roles.insert(source.trim().to_lowercase(), role);
        }
        if let Some(defaults) = file.default_roles {
            map.default_roles = defaults
                .iter()
                .map(|r| tier(r).map_err(|e| format!("default_roles: {e}")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(verified) = file.email_verified {
            map.email_verified = verified;
        }
        Ok(map)
    }

    /// The record's value for `field`: the first of its source names present and not null.
    fn get<'a>(&self, record: &'a Map<String, Value>, field: Field) -> Option<&'a Value> {
        self.fields
            .get(&field)?
            .iter()
            .filter_map(|name| record.get(name))
            .find(|v| !v.is_null() && v.as_str() != Some(""))
    }

    /// The tiers for a record's role value (a name, names separated by commas, or a list).
    fn roles(&self, value: Option<&Value>) -> Result<Vec<Role>, String> {
        let names: Vec<String> = match value {
            None => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("roles: {other} is not a role name")),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("roles: {other} is not a role name or a list")),
        };
        let mut roles = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match self.roles.get(&name.to_lowercase()) {
                Some(Some(role)) if !roles.contains(role) => roles.push(*role),
                Some(_) => {}
                None => {
                    return Err(format!(
                        "unknown role {name:?}: map it to a Gatehouse role in the --map file"
                    ));
                }
            }
        }
        if roles.is_empty() {
            roles = self.default_roles.clone();
        }
        roles.sort_by_key(|r| std::cmp::Reverse(*r));
        Ok(roles)
    }
}

/// A record that passed every rule: the account to create.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub email: Email,
    /// As stored by the old system (its format is checked by the hashing code).
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<Role>,
    pub active: bool,
    pub email_verified: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub metadata: serde_json::Value,
    /// The raw TOTP secret, when TOTP is on for the account.
    pub totp_secret: Option<Vec<u8>>,
    /// Something the operator should know that did not refuse the record.
    pub note: Option<String>,
}

/// `true`/`false`, `1`/`0`, `t`/`f`, `yes`/`no` (as psql, sqlite3 and CSV tools write them).
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "y" => Some(true),
            "false" | "f" | "0" | "no" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An instant as exports write it: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f][+00[:00]]` (SQLite,
/// psql; without an offset it is UTC), a date alone, or Unix milliseconds.
pub fn instant(value: &Value) -> Option<DateTime<Utc>> {
    use chrono::SubsecRound;
    let at = match value {
        Value::Number(n) => DateTime::from_timestamp_millis(n.as_i64()?)?,
        Value::String(s) => {
            let s = s.trim();
            if let Ok(at) = DateTime::parse_from_rfc3339(s) {
                at.with_timezone(&Utc)
            } else if let Some(at) = ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
                .iter()
                .find_map(|f| DateTime::parse_from_str(s, f).ok())
            {
                at.with_timezone(&Utc)
            } else if let Some(at) = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            {
                at.and_utc()
            } else {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()?
                    .and_hms_opt(0, 0, 0)?
                    .and_utc()
            }
        }
        _ => return None,
    };
    Some(at.trunc_subsecs(6))
}

/// A base32 TOTP secret (spaces, case and padding forgiven) as raw bytes, at least 128 bits.
pub fn totp_secret(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = totp_rs::Secret::Encoded(clean)
        .to_bytes()
        .map_err(|_| "totp_secret: not base32".to_string())?;
    if bytes.len() < 16 {
        return Err("totp_secret: shorter than 128 bits, which Gatehouse does not verify".into());
    }
    Ok(bytes)
}

fn text(field: Field, value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{}: {value} is not text", field.name()))
}

/// One record as the account it describes, or why it is refused.
pub fn candidate(map: &ImportMap, record: &Map<String, Value>) -> Result<Candidate, String> {
    let get = |f: Field| map.get(record, f);
    let flag = |f: Field| -> Result<Option<bool>, String> {
        get(f)
            .map(|v| boolean(v).ok_or_else(|| format!("{}: {v} is not true or false", f.name())))
            .transpose()
    };
    let when = |f: Field| -> Result<Option<DateTime<Utc>>, String> {
        get(f)
            .map(|v| instant(v).ok_or_else(|| format!("{}: {v} is not a date and time", f.name())))
            .transpose()
    };
    let raw_email = get(Field::Email).ok_or_else(|| "email: missing".to_string())?;
    let email = Email::parse(text(Field::Email, raw_email)?).map_err(|e| format!("email: {e}"))?;
    let password_hash = get(Field::PasswordHash)
        .map(|v| text(Field::PasswordHash, v).map(|s| s.trim().to_string()))
        .transpose()?;
    let name = match get(Field::Name) {
        Some(v) => DisplayName::parse(Some(text(Field::Name, v)?))
            .map_err(|v| format!("name: {}", v.message))?
            .map(DisplayName::into_string),
        None => None,
    };
    let roles = map.roles(get(Field::Roles))?;
    let active = match (flag(Field::Active)?, flag(Field::Disabled)?) {
        (Some(active), _) => active,
        (None, Some(disabled)) => !disabled,
        (None, None) => true,
    };
    let email_verified = flag(Field::EmailVerified)?.unwrap_or(map.email_verified);
    let metadata = match get(Field::Metadata) {
        None => Value::Object(Map::new()),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|_| "metadata: not a JSON object".to_string())?
        }
        Some(v) => v.clone(),
    };
    let metadata = Metadata::parse(metadata)
        .map_err(|v| format!("metadata: {}", v.message))?
        .into_value();
    let secret = get(Field::TotpSecret)
        .map(|v| text(Field::TotpSecret, v))
        .transpose()?;
    let mut note = None;
    let totp_secret = match (flag(Field::MfaEnabled)?, secret) {
        // Without a flag, a stored secret means TOTP is on.
        (Some(true) | None, Some(secret)) => Some(totp_secret(secret)?),
        (Some(true), None) => {
            note = Some("TOTP was on but the record has no secret: imported without it".into());
            None
        }
        (Some(false) | None, None) | (Some(false), Some(_)) => None,
    };
    Ok(Candidate {
        email,
        password_hash,
        name,
        roles,
        active,
        email_verified,
        created_at: when(Field::CreatedAt)?,
        last_login_at: when(Field::LastLoginAt)?,
        metadata,
        totp_secret,
        note,
    })
}

/// MongoDB Extended JSON (as `mongoexport` writes it, relaxed or canonical) as plain JSON:
/// `{"$oid": s}` → `s`, `{"$date": …}` → an RFC 3339 string, `{"$numberLong": "n"}` and the
/// other number wrappers → numbers, everything else unchanged (recursively).
pub fn plain_json(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(plain_json).collect()),
        Value::Object(map) => {
            if let (1, Some((key, inner))) = (map.len(), map.iter().next()) {
                match (key.as_str(), inner) {
                    ("$oid", Value::String(s)) => return Value::String(s.clone()),
                    ("$date", inner) => {
                        let at = match plain_json(inner.clone()) {
                            Value::String(s) => instant(&Value::String(s)),
                            Value::Number(n) => instant(&Value::Number(n)),
                            _ => None,
                        };
                        if let Some(at) = at {
                            return Value::String(at.to_rfc3339());
                        }
                    }
                    ("$numberLong" | "$numberInt", Value::String(s)) => {
                        if let Ok(n) = s.parse::<i64>() {
                            return Value::from(n);
                        }
                    }
                    ("$numberDouble" | "$numberDecimal", Value::String(s)) => {
                        if let Some(n) =
                            s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
                        {
                            return Value::Number(n);
                        }
                    }
                    _ => {}
                }
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, plain_json(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_default_map_reads_each_seed_shape() {
        let map = ImportMap::default();
        // Flask/SQLAlchemy, exported by `sqlite3 -json` (roles joined with group_concat).
        let flask = candidate(
            &map,
            &record(json!({
                "id": 7, "email": " Ann@Example.COM ", "hashed_password": "$2b$12$x",
                "active": 1, "mfa_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "mfa_enabled": 1,
                "metadata": "{\"plan\": \"pro\"}", "last_login": "2024-05-01 10:00:00.123456",
                "created_at": "2023-01-02 03:04:05", "roles": "admin,user"
            })),
        )
        .unwrap();
        assert_eq!(flask.email.as_str(), "Ann@Example.COM");
        assert_eq!(flask.email.key(), "ann@example.com");
        assert_eq!(flask.password_hash.as_deref(), Some("$2b$12$x"));
        assert_eq!(flask.roles, vec![Role::Admin, Role::User]);
        assert!(flask.active && flask.email_verified);
        assert_eq!(flask.metadata, json!({"plan": "pro"}));
        assert_eq!(flask.totp_secret.as_ref().map(Vec::len), Some(20));
        assert_eq!(
            flask.last_login_at.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00.123456+00:00"
        );
        // FastAPI on MongoDB, after `plain_json`.
        let mongo = plain_json(json!({
            "_id": {"$oid": "65f0c0ffee"}, "email": "bo@example.com", "userId": "u-1",
            "passwordHash": "$2b$12$y", "role": "ADMIN",
            "createdAt": {"$date": {"$numberLong": "1700000000000"}}
        }));
        let mongo = candidate(&map, &record(mongo)).unwrap();
        assert_eq!(mongo.roles, vec![Role::Admin]);
        assert_eq!(
            mongo.created_at.unwrap().to_rfc3339(),
            "2023-11-14T22:13:20+00:00"
        );
        // psql CSV: t/f booleans, `+00` offsets; no role means the default.
        let csv = candidate(
            &map,
            &record(
                json!({"email": "cy@example.com", "password_hash": "h", "is_active": "f",
                "created_at": "2024-02-03 04:05:06.5+00", "role": ""}),
            ),
        )
        .unwrap();
        assert!(!csv.active);
        assert_eq!(csv.roles, vec![Role::User]);
        assert_eq!(
            csv.created_at.unwrap().to_rfc3339(),
            "2024-02-03T04:05:06.500+00:00"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let map = ImportMap::default();
        for (rec, why) in [
            (json!({}), "email: missing"),
            (json!({"email": "not-an-email"}), "email:"),
            (
                json!({"email": "a@example.com", "role": "wizard"}),
                "unknown role \"wizard\"",
            ),
            (
                json!({"email": "a@example.com", "active": "maybe"}),
                "active:",
            ),
            (
                json!({"email": "a@example.com", "created_at": "yesterday"}),
                "created_at:",
            ),
            (
                json!({"email": "a@example.com", "metadata": "[1]"}),
                "metadata:",
            ),
            (
                json!({"email": "a@example.com", "metadata": "{"}),
                "metadata:",
            ),
            (
                json!({"email": "a@example.com", "totp_secret": "!!"}),
                "totp_secret:",
            ),
            (
                json!({"email": "a@example.com", "totp_secret": "JBSWY3DPEHPK3PXP"}),
                "128 bits",
            ),
            (json!({"email": "a@example.com", "roles": [1]}), "roles:"),
        ] {
            let err = candidate(&map, &record(rec.clone())).unwrap_err();
            assert!(err.contains(why), "{rec}: {err}");
        }
        let note = candidate(
            &map,
            &record(json!({"email": "a@example.com", "mfa_enabled": true})),
        )
        .unwrap();
        assert!(note.totp_secret.is_none() && note.note.is_some());
        let off = candidate(
            &map,
            &record(json!({"email": "a@example.com", "mfa_enabled": "0",
                "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"})),
        )
        .unwrap();
        assert!(off.totp_secret.is_none());
    }

    #[test]
    fn a_map_file_renames_fields_and_roles() {
        let map = ImportMap::from_json(
            r#"{"fields": {"password_hash": "pw", "roles": "groups"},
                "roles": {"Editors": "moderator", "beta": null, "admin": "super_admin"},
                "default_roles": ["guest"], "email_verified": false}"#,
        )
        .unwrap();
        let c = candidate(
            &map,
            &record(
                json!({"email": "a@example.com", "pw": "h", "password_hash": "ignored",
                "groups": ["editors", "beta", "admin"]}),
            ),
        )
        .unwrap();
        assert_eq!(c.password_hash.as_deref(), Some("h"));
        assert_eq!(c.roles, vec![Role::SuperAdmin, Role::Moderator]);
        assert!(!c.email_verified);
        let c = candidate(
            &map,
            &record(json!({"email": "a@example.com", "groups": "beta"})),
        )
        .unwrap();
        assert_eq!(c.roles, vec![Role::Guest]);
        for (bad, why) in [
            (r#"{"fields": {"pasword": "x"}}"#, "unknown field"),
            (r#"{"roles": {"x": "root"}}"#, "not a Gatehouse role"),
            (r#"{"default_roles": ["root"]}"#, "not a Gatehouse role"),
            (r#"{"colour": 1}"#, "unknown field"),
            ("not json", "expected"),
        ] {
            let err = ImportMap::from_json(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn extended_json_becomes_plain_json() {
        let v = plain_json(json!({
            "_id": {"$oid": "507f1f77bcf86cd799439011"},
            "a": {"$date": "2024-01-02T03:04:05.678Z"},
            "b": {"$date": {"$numberLong": "-1000"}},
            "n": {"$numberLong": "42"}, "i": {"$numberInt": "7"}, "d": {"$numberDouble": "1.5"},
            "nested": [{"x": {"$oid": "ab"}}], "plain": {"k": 1, "j": 2}
        }));
        assert_eq!(
            v,
            json!({"_id": "507f1f77bcf86cd799439011", "a": "2024-01-02T03:04:05.678+00:00",
                "b": "1969-12-31T23:59:59+00:00", "n": 42, "i": 7, "d": 1.5,
                "nested": [{"x": "ab"}], "plain": {"k": 1, "j": 2}})
        );
    }
}
