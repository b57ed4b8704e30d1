//! Request-origin infrastructure: who the client is (behind trusted proxies only) and the rate limiters keyed on it.

pub mod client_ip;
pub mod rate;
