//! The region catalog: every production region a tile can be rolled out to,
//! with its cloud and IANA time zone (for local blackout windows), read from
//! a `regions.toml` (`crates/core/regions.toml` ships as the default).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use serde::Deserialize;

/// The `regions.toml` shipped with tilewave: 70 production regions.
pub const DEFAULT_REGIONS_TOML: &str = include_str!("../regions.toml");

/// A cloud a tile can be offered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cloud {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Google Cloud.
    Gcp,
}

impl Cloud {
    /// Every cloud, in a fixed order.
    pub const ALL: [Cloud; 3] = [Cloud::Aws, Cloud::Azure, Cloud::Gcp];

    /// The lower-case name used in configs and region ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cloud {
    type Err = RegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Cloud::Aws),
            "azure" => Ok(Cloud::Azure),
            "gcp" => Ok(Cloud::Gcp),
            other => Err(RegionError::UnknownCloud(other.to_string())),
        }
    }
}

/// One production region: one partner catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// `<cloud>:<region>`, e.g. `aws:eu-west-1`.
    pub id: String,
    /// The cloud the region belongs to (the prefix of `id`).
    pub cloud: Cloud,
    /// The IANA name of the region's time zone, e.g. `Europe/Berlin`.
    pub tz_name: String,
    /// The resolved time zone, for local-time blackout windows.
    pub tz: TimeZone,
    /// A region that exists to take changes first (the canary of its cloud).
    pub canary: bool,
}

/// Why a region catalog or a region reference is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// The TOML did not parse.
    #[error("regions.toml: {0}")]
    Toml(String),
    /// A cloud name that is not aws, azure or gcp.
    #[error("unknown cloud {0:?} (expected aws, azure or gcp)")]
    UnknownCloud(String),
    /// A region entry is inconsistent.
    #[error("regions.toml region[{index}] ({id}): {problem}")]
    BadEntry {
        /// Position in the file, from 0.
        index: usize,
        /// The entry's id as written.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A region id that the catalog does not know.
    #[error("unknown region {0:?}")]
    UnknownRegion(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionsFile {
    region: Vec<RegionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    id: String,
    cloud: String,
    tz: String,
    #[serde(default)]
    canary: bool,
}

/// The ordered catalog of regions. Order is the file's order; it decides the
/// default canary of a cloud (the first of its regions when none is flagged).
///
/// Shared: a clone is a reference count (every plan input carries the
/// catalog, and the rollout service resolves a plan input several times per
/// decision), and [`RegionCatalog::get`] is a hash lookup, not a scan.
#[derive(Debug, Clone)]
pub struct RegionCatalog(std::sync::Arc<Catalog>);

/// What a [`RegionCatalog`] shares.
#[derive(Debug)]
struct Catalog {
    regions: Vec<Region>,
    /// Position in `regions` by id.
    index: HashMap<String, usize>,
}

impl PartialEq for RegionCatalog {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.regions == other.0.regions
    }
}

impl RegionCatalog {
    /// The catalog shipped with tilewave.
    pub fn builtin() -> Self {
        // The shipped file is checked by the unit tests below.
        match Self::from_toml(DEFAULT_REGIONS_TOML) {
            Ok(c) => c,
            Err(e) => unreachable!("the shipped regions.toml is valid: {e}"),
        }
    }

    /// Parses a catalog in the format of `crates/core/regions.toml`.
    pub fn from_toml(text: &str) -> Result<Self, RegionError> {
        let file: RegionsFile = toml::from_str(text).map_err(|e| RegionError::Toml(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut canaries = HashSet::new();
        let mut regions = Vec::with_capacity(file.region.len());
        for (index, e) in file.region.into_iter().enumerate() {
            let bad = |problem: String| RegionError::BadEntry {
                index,
                id: e.id.clone(),
                problem,
            };
            let cloud: Cloud = e.cloud.parse().map_err(|err: RegionError| bad(err.to_string()))?;
            let Some((prefix, name)) = e.id.split_once(':') else {
                return Err(bad("id must be <cloud>:<region>".into()));
            };
            if prefix != cloud.as_str() || name.is_empty() {
                return Err(bad(format!("id must start with \"{cloud}:\" and name a region")));
            }
            if !seen.insert(e.id.clone()) {
                return Err(bad("duplicate id".into()));
            }
            if e.canary && !canaries.insert(cloud) {
                return Err(bad(format!("a second canary for {cloud}")));
            }
            let tz = TimeZone::get(&e.tz).map_err(|err| bad(format!("time zone {:?}: {err}", e.tz)))?;
            regions.push(Region {
                id: e.id,
                cloud,
                tz_name: e.tz,
                tz,
                canary: e.canary,
            });
        }
        if regions.is_empty() {
            return Err(RegionError::Toml("no [[region]] entries".into()));
        }
        Ok(Self::of(regions))
    }

    /// The catalog of `regions` (checked: ids unique), indexed.
    fn of(regions: Vec<Region>) -> Self {
        let index = regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        Self(std::sync::Arc::new(Catalog { regions, index }))
    }

    /// Every region, in file order.
    pub fn all(&self) -> &[Region] {
        &self.0.regions
    }

    /// The region with this id.
    pub fn get(&self, id: &str) -> Result<&Region, RegionError> {
        self.0
            .index
            .get(id)
            .and_then(|&i| self.0.regions.get(i))
            .ok_or_else(|| RegionError::UnknownRegion(id.to_string()))
    }

    /// The regions of one cloud, in file order.
    pub fn of_cloud(&self, cloud: Cloud) -> impl Iterator<Item = &Region> {
        self.0.regions.iter().filter(move |r| r.cloud == cloud)
    }

    /// The canary of a cloud: the region flagged `canary`, else the first of
    /// the cloud's regions. `None` when the catalog has no region of it.
    pub fn canary_of(&self, cloud: Cloud) -> Option<&Region> {
        self.of_cloud(cloud)
            .find(|r| r.canary)
            .or_else(|| self.of_cloud(cloud).next())
    }

    /// The catalog of only the regions `ids` names, in this catalog's order
    /// (so each cloud keeps its canary when the canary is among them).
    /// Every id must be in this catalog; at least one is needed.
    pub fn subset(&self, ids: &[String]) -> Result<Self, RegionError> {
        if let Some(unknown) = ids.iter().find(|id| self.get(id).is_err()) {
            return Err(RegionError::UnknownRegion(unknown.clone()));
        }
        let regions: Vec<Region> = self
            .all()
            .iter()
            .filter(|r| ids.contains(&r.id))
            .cloned()
            .collect();
        if regions.is_empty() {
            return Err(RegionError::Toml("no region selected".into()));
        }
        Ok(Self::of(regions))
    }

    /// A representative set of `n` regions, for a stack that runs agents
    /// for only some of the catalog: every cloud's canary first (in
    /// [`Cloud::ALL`] order), then the other regions spread round-robin
    /// over the clouds, each cloud's in catalog order, skipping a cloud
    /// that has none left. Ids in the order they were picked; all of the
    /// catalog when `n` covers it.
    pub fn representative(&self, n: usize) -> Vec<String> {
        let canaries: Vec<&Region> = Cloud::ALL.iter().filter_map(|c| self.canary_of(*c)).collect();
        let mut rest: Vec<std::collections::VecDeque<&Region>> = Cloud::ALL
            .iter()
            .map(|c| {
                self.of_cloud(*c)
                    .filter(|r| !canaries.iter().any(|k| k.id == r.id))
                    .collect()
            })
            .collect();
        let mut picked: Vec<String> = canaries.iter().map(|r| r.id.clone()).collect();
        while picked.len() < n && rest.iter().any(|q| !q.is_empty()) {
            for queue in &mut rest {
                if picked.len() >= n {
                    break;
                }
                if let Some(r) = queue.pop_front() {
                    picked.push(r.id.clone());
                }
            }
        }
        picked.truncate(n);
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_documented_regions() {
        let c = RegionCatalog::builtin();
        assert_eq!(c.all().len(), 70);
        assert_eq!(c.of_cloud(Cloud::Aws).count(), 16);
        assert_eq!(c.of_cloud(Cloud::Gcp).count(), 15);
        assert_eq!(c.of_cloud(Cloud::Azure).count(), 39);
        assert_eq!(
            c.canary_of(Cloud::Azure).map(|r| r.id.as_str()),
            Some("azure:eastus2euap")
        );
        assert_eq!(
            c.canary_of(Cloud::Aws).map(|r| r.id.as_str()),
            Some("aws:ap-northeast-1")
        );
        assert_eq!(
            c.canary_of(Cloud::Gcp).map(|r| r.id.as_str()),
            Some("gcp:asia-northeast1")
        );
    }

    #[test]
    fn rejects_bad_entries_naming_them() {
        let cases = [
            (
                "[[region]]\nid = \"aws:x\"\ncloud = \"oracle\"\ntz = \"UTC\"\n",
                "unknown cloud",
            ),
            (
                "[[region]]\nid = \"gcp:x\"\ncloud = \"aws\"\ntz = \"UTC\"\n",
                "must start with",
            ),
            (
                "[[region]]\nid = \"aws:x\"\ncloud = \"aws\"\ntz = \"Mars/Olympus\"\n",
                "time zone",
            ),
            (
                "[[region]]\nid = \"aws:x\"\ncloud = \"aws\"\ntz = \"UTC\"\n[[region]]\nid = \"aws:x\"\ncloud = \"aws\"\ntz = \"UTC\"\n",
                "duplicate",
            ),
            ("region = []\n", "no [[region]]"),
        ];
        for (text, want) in cases {
            let err = RegionCatalog::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn representative_sets_take_canaries_first_then_spread_over_clouds() {
        let c = RegionCatalog::builtin();
        let canaries = ["aws:ap-northeast-1", "azure:eastus2euap", "gcp:asia-northeast1"];
        // (n, the picks expected at the front)
        let cases: &[(usize, &[&str])] = &[
            (0, &[]),
            (1, &["aws:ap-northeast-1"]),
            (2, &["aws:ap-northeast-1", "azure:eastus2euap"]),
            (3, &canaries),
            (
                6,
                &[
                    "aws:ap-northeast-1",
                    "azure:eastus2euap",
                    "gcp:asia-northeast1",
                    "aws:ap-northeast-2",
                    "azure:australiacentral",
                    "gcp:asia-south1",
                ],
            ),
        ];
        for (n, want) in cases {
            let got = c.representative(*n);
            assert_eq!(got.len(), *n, "n={n}");
            let got: Vec<&str> = got.iter().map(String::as_str).collect();
            assert_eq!(&got[..], *want, "n={n}");
        }
        for n in [7, 12, 45, 69] {
            let got = c.representative(n);
            assert_eq!(got.len(), n, "n={n}");
            let unique: HashSet<&String> = got.iter().collect();
            assert_eq!(unique.len(), n, "no region twice, n={n}");
            assert_eq!(got[..3], canaries.map(String::from), "canaries first, n={n}");
            for cloud in Cloud::ALL {
                let k = got
                    .iter()
                    .filter(|id| c.get(id).is_ok_and(|r| r.cloud == cloud))
                    .count();
                // Spread: each cloud holds its share until it runs out.
                let share = n.div_ceil(3).min(c.of_cloud(cloud).count());
                assert!(k + 1 >= share, "{cloud}: {k} of {n} (share {share})");
            }
        }
        assert_eq!(c.representative(70).len(), 70);
        assert_eq!(c.representative(1000).len(), 70, "at most the whole catalog");
    }

    #[test]
    fn a_subset_keeps_catalog_order_and_canaries() {
        let c = RegionCatalog::builtin();
        let ids = c.representative(6);
        let s = c.subset(&ids).unwrap();
        assert_eq!(s.all().len(), 6);
        for cloud in Cloud::ALL {
            assert_eq!(
                s.canary_of(cloud).map(|r| &r.id),
                c.canary_of(cloud).map(|r| &r.id)
            );
        }
        let order: Vec<usize> = s
            .all()
            .iter()
            .filter_map(|r| c.all().iter().position(|x| x.id == r.id))
            .collect();
        assert!(order.is_sorted(), "{order:?}");
        assert_eq!(
            c.subset(&["aws:mars-1".into()]).unwrap_err(),
            RegionError::UnknownRegion("aws:mars-1".into())
        );
        assert!(c.subset(&[]).is_err());
    }

    #[test]
    fn lookups_use_each_catalogs_own_index_and_clones_share_it() {
        let c = RegionCatalog::builtin();
        for (i, r) in c.all().iter().enumerate() {
            let found = c.get(&r.id).unwrap();
            assert!(std::ptr::eq(found, &c.all()[i]), "{}", r.id);
        }
        for unknown in ["", "aws:", "aws:mars-1", "AWS:us-east-1", "aws:us-east-1 "] {
            assert_eq!(
                c.get(unknown).unwrap_err(),
                RegionError::UnknownRegion(unknown.into())
            );
        }
        // A subset knows only its own regions, at their new places.
        let ids = vec!["gcp:us-central1".to_owned(), "aws:eu-west-1".to_owned()];
        let s = c.subset(&ids).unwrap();
        assert_eq!(s.get("aws:eu-west-1").unwrap().id, "aws:eu-west-1");
        assert_eq!(s.get("gcp:us-central1").unwrap().cloud, Cloud::Gcp);
        assert!(s.get("aws:us-east-1").is_err());
        assert_ne!(s, c);
        // A clone is the same catalog, not a copy; equal catalogs made
        // apart compare equal.
        let clone = c.clone();
        assert!(std::ptr::eq(clone.all().as_ptr(), c.all().as_ptr()));
        assert_eq!(clone, c);
        assert_eq!(RegionCatalog::builtin(), c);
        assert_eq!(c.subset(&ids).unwrap(), s);
    }

    #[test]
    fn unknown_region_is_an_error() {
        let c = RegionCatalog::builtin();
        assert_eq!(
            c.get("aws:mars-1").unwrap_err(),
            RegionError::UnknownRegion("aws:mars-1".into())
        );
        assert_eq!(c.get("gcp:me-central2").map(|r| r.cloud), Ok(Cloud::Gcp));
    }
}
