//! Inputs the policy refuses to decide from. Each is a caller's mistake that, decided anyway,
//! could move money on the wrong data; the worker turns it into a failed job.

use nija_proto::{AccountId, Symbol};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error(
        "{what} entry for {symbol} belongs to account {found}, not to {expected}: per-account state \
         must be read under the account's own key prefix (`{expected}.`)"
    )]
    ForeignState {
        what: &'static str,
        expected: AccountId,
        found: AccountId,
        symbol: Symbol,
    },
    #[error(
        "snapshot of account {account} lists {symbol} twice: the broker read is inconsistent; \
         re-read the account before deciding"
    )]
    DuplicatePosition { account: AccountId, symbol: Symbol },
    #[error(
        "{what} of account {account} holds {symbol} twice: remove the duplicate record from KV"
    )]
    DuplicateState {
        what: &'static str,
        account: AccountId,
        symbol: Symbol,
    },
}
