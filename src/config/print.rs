//! The `NAME=value` lines of `--print-config`: one way to write a value, mask a secret and show what is unset.

use std::fmt::{Display, Write};
use std::time::Duration;

use super::{MASK, Secret};

const UNSET: &str = "(unset)";

/// `--print-config` output being written, one line per variable.
#[derive(Default)]
pub(super) struct Lines(String);

impl Lines {
    pub(super) fn value(&mut self, var: &str, value: impl Display) {
        let _ = writeln!(self.0, "{var}={value}");
    }

    pub(super) fn seconds(&mut self, var: &str, value: Duration) {
        self.value(var, value.as_secs());
    }

    /// `value`, or `(unset)`.
    pub(super) fn optional(&mut self, var: &str, value: Option<impl Display>) {
        match value {
            Some(v) => self.value(var, v),
            None => self.value(var, UNSET),
        }
    }

    /// Masked when set, `(unset)` when not: a secret's value is never written.
    pub(super) fn secret(&mut self, var: &str, value: Option<&Secret>) {
        self.value(var, if value.is_some() { MASK } else { UNSET });
    }

    /// The first name `options` (the table `Vars::choice` reads) gives `value`.
    pub(super) fn choice<T: PartialEq>(&mut self, var: &str, options: &[(&str, T)], value: T) {
        let name = options.iter().find(|(_, v)| *v == value).map(|(n, _)| *n);
        self.value(var, name.unwrap_or_default());
    }

    pub(super) fn list(&mut self, var: &str, items: &[impl Display]) {
        let items: Vec<String> = items.iter().map(ToString::to_string).collect();
        self.value(var, items.join(","));
    }

    pub(super) fn finish(self) -> String {
        self.0
    }
}
