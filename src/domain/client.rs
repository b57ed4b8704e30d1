//! Where a request came from (IP address and user agent), as every layer records it on sessions and audit rows.

use std::net::IpAddr;

/// The client behind a request.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}
