//! Verification after selling (DESIGN §3.4.5, §7.11): the count comes from a fresh re-read,
//! classified exactly as the plan was — never from the cap or from the plan's arithmetic.

use serde::{Deserialize, Serialize};

use crate::dust::classify;
use crate::error::PolicyError;
use crate::params::PolicyParams;
use crate::snapshot::AccountSnapshot;
use nija_proto::state::BlacklistEntry;

/// The verdict on a re-read account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Material positions in the re-read.
    pub count_after: u32,
    pub max_allowed: u32,
    /// `count_after ≤ max_allowed`: log `SAFETY VERIFIED`, else `OVER CAP`.
    pub verified: bool,
}

/// Material positions (priced non-dust + unpriced) of `snapshot`.
pub fn material_count(
    snapshot: &AccountSnapshot,
    blacklist: &[BlacklistEntry],
    params: &PolicyParams,
) -> Result<u32, PolicyError> {
    if let Some(foreign) = blacklist.iter().find(|e| e.account != snapshot.account) {
        return Err(PolicyError::ForeignState {
            what: "blacklist",
            expected: snapshot.account.clone(),
            found: foreign.account.clone(),
            symbol: foreign.symbol.clone(),
        });
    }
    Ok(classify(snapshot, blacklist, params, snapshot.taken_at).count())
}

/// Verifies a re-read against the plan's `max_allowed`.
pub fn verify(
    reread: &AccountSnapshot,
    blacklist: &[BlacklistEntry],
    params: &PolicyParams,
    max_allowed: u32,
) -> Result<Verification, PolicyError> {
    let count_after = material_count(reread, blacklist, params)?;
    Ok(Verification {
        count_after,
        max_allowed,
        verified: count_after <= max_allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use rust_decimal_macros::dec;

    #[test]
    fn verification_counts_what_is_there() {
        let reread = snapshot(vec![
            priced_position("A-USD", dec!(10)),
            priced_position("B-USD", dec!(0.5)),
            unpriced_position("C-USD", dec!(3)),
        ]);
        let v = verify(&reread, &[], &params(1), 1).unwrap();
        assert_eq!(
            v,
            Verification {
                count_after: 2,
                max_allowed: 1,
                verified: false
            }
        );
        assert!(verify(&reread, &[], &params(1), 2).unwrap().verified);
    }
}
