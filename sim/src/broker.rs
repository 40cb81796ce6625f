//! The three brokers the simulator speaks for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A broker whose wire protocol the simulator serves on its own port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Broker {
    Coinbase,
    Kraken,
    Alpaca,
}

impl Broker {
    pub const ALL: [Broker; 3] = [Broker::Coinbase, Broker::Kraken, Broker::Alpaca];

    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Coinbase => "coinbase",
            Broker::Kraken => "kraken",
            Broker::Alpaca => "alpaca",
        }
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown broker name.
#[derive(Debug, thiserror::Error)]
#[error("unknown broker {0:?}: use coinbase, kraken or alpaca")]
pub struct UnknownBroker(pub String);

impl FromStr for Broker {
    type Err = UnknownBroker;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "coinbase" => Ok(Broker::Coinbase),
            "kraken" => Ok(Broker::Kraken),
            "alpaca" => Ok(Broker::Alpaca),
            _ => Err(UnknownBroker(s.to_string())),
        }
    }
}
