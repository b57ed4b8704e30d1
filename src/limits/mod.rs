//! Request-origin infrastructure: who the client is (behind trusted proxies only); later the rate limiters keyed on it.

pub mod client_ip;
