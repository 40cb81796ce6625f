//! How a broker session is configured and opened: the one constructor the worker uses.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::alpaca::AlpacaBroker;
use crate::broker::{Broker, BrokerKind};
use crate::coinbase::CoinbaseBroker;
use crate::common::http::Timeouts;
use crate::common::rate_limit::RateLimit;
use crate::common::resolve::LookupSettings;
use crate::common::retry::RetryPolicy;
use crate::credentials::Credentials;
use crate::error::BrokerError;
use crate::kraken::KrakenBroker;

/// Everything a session needs besides the credentials.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub kind: BrokerKind,
    /// The account id, for logs.
    pub account: String,
    /// scheme + host + port (+ prefix); `None` = the live host.
    pub base_url: Option<String>,
    /// Alpaca market data host; `None` = `https://data.alpaca.markets` for Alpaca's own hosts,
    /// else the base URL (a simulator serves both).
    pub data_url: Option<String>,
    /// PEM files of extra CA certificates to trust besides the platform's (simulator, proxy,
    /// corporate CA); each file may hold one certificate or a bundle.
    pub extra_ca: Vec<PathBuf>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Client-side limit for this API key; `None` = the broker's documented default.
    pub rate_limit: Option<RateLimit>,
    /// How long to look for an order whose placement outcome is unknown.
    pub order_lookup: LookupSettings,
    /// Warn when the broker's clock differs from ours by more than this.
    pub max_clock_skew: Duration,
    /// The canonical quote of positions (`BTC` held → `BTC-USD`).
    pub quote: String,
    /// Kraken: the last nonce used with this key (from the lease); the session starts above it.
    pub nonce_seed: Option<u64>,
}

impl BrokerSettings {
    pub fn new(kind: BrokerKind) -> BrokerSettings {
        BrokerSettings {
            kind,
            account: String::new(),
            base_url: None,
            data_url: None,
            extra_ca: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            rate_limit: None,
            order_lookup: LookupSettings::default(),
            max_clock_skew: Duration::from_secs(1),
            quote: "USD".to_string(),
            nonce_seed: None,
        }
    }
}

/// Builds the adapter for `settings.kind` with `credentials`, without any network call.
pub fn build_broker(
    settings: BrokerSettings,
    credentials: Credentials,
) -> Result<Arc<dyn Broker>, BrokerError> {
    let mismatch = |got: BrokerKind| BrokerError::Config {
        broker: settings.kind.to_string(),
        message: format!(
            "the account is configured for {} but its credentials are {got} credentials",
            settings.kind
        ),
    };
    Ok(match (settings.kind, credentials) {
        (BrokerKind::Coinbase, Credentials::Coinbase(c)) => {
            Arc::new(CoinbaseBroker::new(settings, c)?)
        }
        (BrokerKind::Kraken, Credentials::Kraken(c)) => Arc::new(KrakenBroker::new(settings, c)?),
        (BrokerKind::Alpaca, Credentials::Alpaca(c)) => Arc::new(AlpacaBroker::new(settings, c)?),
        (_, other) => return Err(mismatch(other.kind())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn credentials_of_another_broker_are_refused() {
        let alpaca = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK","secret_key":"s"}"#,
            "t",
        )
        .unwrap();
        let err = build_broker(BrokerSettings::new(BrokerKind::Kraken), alpaca)
            .err()
            .unwrap();
        assert_eq!(err.class(), ErrorClass::Config);
        assert!(err.to_string().contains("alpaca credentials"), "{err}");
    }

    #[test]
    fn a_bad_base_url_is_a_config_error() {
        let alpaca = Credentials::from_json(
            BrokerKind::Alpaca,
            r#"{"key_id":"PK","secret_key":"s"}"#,
            "t",
        )
        .unwrap();
        let mut settings = BrokerSettings::new(BrokerKind::Alpaca);
        settings.base_url = Some("paper-api.alpaca.markets".into());
        let err = build_broker(settings, alpaca).err().unwrap();
        assert_eq!(err.class(), ErrorClass::Config);
    }
}
