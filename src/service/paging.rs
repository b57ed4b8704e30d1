//! Page requests of every listing: validated once, capped, and safe to turn into an offset.

use super::error::{FieldError, ServiceError};

/// A page request: `page` from 1, `per_page` from 1 (default 50), capped at `MAX_PER_PAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    pub const DEFAULT_PER_PAGE: u64 = 50;
    pub const MAX_PER_PAGE: u64 = 200;
    /// Far past any listing, and keeps every offset inside a signed 64-bit integer.
    pub const MAX_PAGE: u64 = 1_000_000;

    /// Validate a request's `page` and `per_page`; a `per_page` above the cap is lowered to it.
    pub fn new(page: Option<u64>, per_page: Option<u64>) -> Result<Self, ServiceError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(Self::DEFAULT_PER_PAGE);
        let mut errors = Vec::new();
        if page == 0 || page > Self::MAX_PAGE {
            errors.push(FieldError {
                field: "page",
                code: "out_of_range",
                message: format!("must be between 1 and {}", Self::MAX_PAGE),
            });
        }
        if per_page == 0 {
            errors.push(FieldError {
                field: "per_page",
                code: "out_of_range",
                message: format!("must be between 1 and {}", Self::MAX_PER_PAGE),
            });
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        Ok(Self {
            page,
            per_page: per_page.min(Self::MAX_PER_PAGE),
        })
    }

    pub fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}
