//! The GA scheduler's credentials pre-flight: before a launch roll-out
//! starts, the tile's CURRENT partner credential must have been verified
//! against the partner from every planned region (by a rotation that
//! reached it: a first credential is "rotated" in from nothing, and the
//! agents hold and verify it before the tile is live there).
//!
//! The caller gathers the facts from the stored versions and rotations;
//! this says whether they suffice and, if not, what to do.

use std::collections::BTreeSet;
use std::fmt;

/// What the store says about a tile's credential, for the pre-flight.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialFacts {
    /// The CURRENT version, if any.
    pub current: Option<u64>,
    /// A PENDING version waiting for its rotation, if any.
    pub pending: Option<u64>,
    /// A rotation to `pending` is running.
    pub rotating: bool,
    /// Regions where a promoted rotation verified the CURRENT version.
    pub verified: BTreeSet<String>,
}

/// Why the pre-flight refuses to start a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialGap {
    /// There is no CURRENT credential.
    NoCurrent {
        /// The tile.
        tile: String,
        /// The PENDING version, if one waits.
        pending: Option<u64>,
        /// Its rotation is running.
        rotating: bool,
    },
    /// The CURRENT credential was not verified in some planned regions.
    NotVerified {
        /// The tile.
        tile: String,
        /// The CURRENT version.
        version: u64,
        /// The planned regions without a verification, in plan order.
        missing: Vec<String>,
        /// How many regions are planned.
        planned: usize,
    },
}

/// How many missing regions a refusal names.
const NAMED: usize = 5;

impl fmt::Display for CredentialGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialGap::NoCurrent {
                tile,
                pending: Some(v),
                rotating: true,
            } => write!(
                f,
                "{tile} has no CURRENT partner credential yet: the rotation to version {v} is still running (`tilewave creds status {tile} --watch`)"
            ),
            CredentialGap::NoCurrent {
                tile,
                pending: Some(v),
                rotating: false,
            } => write!(
                f,
                "{tile} has no CURRENT partner credential: version {v} is PENDING; `tilewave creds rotate {tile}` distributes it and verifies it in every region"
            ),
            CredentialGap::NoCurrent {
                tile, pending: None, ..
            } => write!(
                f,
                "{tile} has no partner credential: the partner hands one in (`tilewave creds submit {tile}`), then `tilewave creds rotate {tile}` distributes it and verifies it in every region"
            ),
            CredentialGap::NotVerified {
                tile,
                version,
                missing,
                planned,
            } => {
                let named: Vec<&str> = missing.iter().take(NAMED).map(String::as_str).collect();
                let more = missing.len().saturating_sub(NAMED);
                write!(
                    f,
                    "the CURRENT partner credential of {tile} (version {version}) was not verified in {} of {planned} planned regions ({}{}): rotate to a new one over them (`tilewave creds submit {tile}`, then `tilewave creds rotate {tile}`)",
                    missing.len(),
                    named.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// Whether the tile's CURRENT credential was verified in every region of
/// `planned`; the gap otherwise.
pub fn check(tile: &str, facts: &CredentialFacts, planned: &[String]) -> Result<(), CredentialGap> {
    let Some(version) = facts.current else {
        return Err(CredentialGap::NoCurrent {
            tile: tile.to_owned(),
            pending: facts.pending,
            rotating: facts.rotating,
        });
    };
    let missing: Vec<String> = planned
        .iter()
        .filter(|r| !facts.verified.contains(*r))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CredentialGap::NotVerified {
            tile: tile.to_owned(),
            version,
            missing,
            planned: planned.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_pre_flight_table() {
        let planned = regions(&["aws:a", "aws:b", "gcp:c"]);
        let verified = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        let cases: Vec<(&str, CredentialFacts, Option<&str>)> = vec![
            (
                "nothing at all",
                CredentialFacts::default(),
                Some("has no partner credential: the partner hands one in (`tilewave creds submit t`)"),
            ),
            (
                "only pending",
                CredentialFacts {
                    pending: Some(1),
                    ..Default::default()
                },
                Some("version 1 is PENDING; `tilewave creds rotate t`"),
            ),
            (
                "pending, rotating",
                CredentialFacts {
                    pending: Some(1),
                    rotating: true,
                    ..Default::default()
                },
                Some("the rotation to version 1 is still running"),
            ),
            (
                "verified everywhere",
                CredentialFacts {
                    current: Some(2),
                    verified: verified(&["aws:a", "aws:b", "gcp:c", "azure:x"]),
                    ..Default::default()
                },
                None,
            ),
            (
                "a new pending version does not matter while CURRENT is verified",
                CredentialFacts {
                    current: Some(2),
                    pending: Some(3),
                    rotating: true,
                    verified: verified(&["aws:a", "aws:b", "gcp:c"]),
                },
                None,
            ),
            (
                "one region missing",
                CredentialFacts {
                    current: Some(2),
                    verified: verified(&["aws:a", "gcp:c"]),
                    ..Default::default()
                },
                Some("(version 2) was not verified in 1 of 3 planned regions (aws:b)"),
            ),
            (
                "current, never verified",
                CredentialFacts {
                    current: Some(2),
                    ..Default::default()
                },
                Some("not verified in 3 of 3 planned regions (aws:a, aws:b, gcp:c)"),
            ),
        ];
        for (name, facts, want) in cases {
            let got = check("t", &facts, &planned);
            match (want, got) {
                (None, Ok(())) => {}
                (Some(w), Err(e)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (w, g) => panic!("{name}: wanted {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn a_long_gap_names_five_regions_and_counts_the_rest() {
        let planned: Vec<String> = (0..9).map(|i| format!("aws:r{i}")).collect();
        let facts = CredentialFacts {
            current: Some(1),
            ..Default::default()
        };
        let e = check("t", &facts, &planned).unwrap_err().to_string();
        assert!(
            e.contains("(aws:r0, aws:r1, aws:r2, aws:r3, aws:r4 and 4 more)"),
            "{e}"
        );
        assert!(!e.contains("aws:r5"), "{e}");
    }
}
