//! placeholder
use std::sync::Arc;
pub const MARKERS: &[&str] = &["/x/"];
pub fn router(_e: Arc<crate::exchange::Exchange>) -> axum::Router {
    axum::Router::new()
}
