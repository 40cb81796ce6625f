//! Per-account state kept in KV: blacklist entries and tracked positions. Work in progress.
