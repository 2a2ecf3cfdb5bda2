//! Go-to-market readiness (docs/domain.md "Go-to-market readiness"): the work
//! around a launch besides the tile itself, per tile, and the gate that
//! committing a GA date passes.
//!
//! Five items ([`GtmItem::ALL`]). The partnership agreement is not recorded
//! here: it is done when legal has signed off the current revision (legal
//! signs for exactly that), so it is read from the [`SignOffs`] and never
//! recorded twice. The other four are set through [`GtmReadiness::set`],
//! each done or pending with an owner and a due date, and a link where the
//! item is a page (mini site, launch blog, documentation).
//!
//! [`ga_commit_gate`] refuses a GA date while any item is pending, listing
//! them, unless an explicit [`GtmOverride`] (who and why) is given; the
//! override comes back as [`GaCommit::Overridden`] for the audit log and
//! `ga list`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::partner_config::check_url;
use crate::quote::quoted;
use crate::signoff::{Role, SignOffs};

/// The command that sets a go-to-market item, as refusals name it.
pub const GTM_SET_COMMAND: &str =
    "tilewave tile gtm TILE set ITEM --done|--pending --owner NAME --due YYYY-MM-DD --link URL";

/// The command that completes the partnership agreement: legal's sign-off.
pub const LEGAL_SIGN_OFF_COMMAND: &str = "tilewave tile signoff TILE --role legal";

/// The flag that commits a GA date with items pending, as refusals name it.
pub const GTM_OVERRIDE_FLAG: &str = "--gtm-override REASON";

/// One go-to-market item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GtmItem {
    /// The partnership agreement is signed: read from legal's sign-off.
    #[serde(rename = "agreement")]
    PartnershipAgreement,
    /// The partner's mini site, by its URL.
    #[serde(rename = "mini-site")]
    MiniSite,
    /// The partner's logo in the partner directory.
    #[serde(rename = "logo")]
    DirectoryLogo,
    /// The partner's launch blog post.
    #[serde(rename = "blog")]
    LaunchBlog,
    /// The partner's documentation of the integration.
    #[serde(rename = "docs")]
    Documentation,
}

impl GtmItem {
    /// Every item, in the order the issue lists them.
    pub const ALL: [GtmItem; 5] = [
        GtmItem::PartnershipAgreement,
        GtmItem::MiniSite,
        GtmItem::DirectoryLogo,
        GtmItem::LaunchBlog,
        GtmItem::Documentation,
    ];

    /// The CLI name (`ITEM` in [`GTM_SET_COMMAND`]), also its serialized form.
    pub fn as_str(self) -> &'static str {
        match self {
            GtmItem::PartnershipAgreement => "agreement",
            GtmItem::MiniSite => "mini-site",
            GtmItem::DirectoryLogo => "logo",
            GtmItem::LaunchBlog => "blog",
            GtmItem::Documentation => "docs",
        }
    }

    /// What the item is, for people.
    pub fn title(self) -> &'static str {
        match self {
            GtmItem::PartnershipAgreement => "partnership agreement signed",
            GtmItem::MiniSite => "partner mini site",
            GtmItem::DirectoryLogo => "logo in the partner directory",
            GtmItem::LaunchBlog => "the partner's launch blog",
            GtmItem::Documentation => "the partner's documentation",
        }
    }

    /// True for the item read from a sign-off instead of set here.
    pub fn derived(self) -> bool {
        match self {
            GtmItem::PartnershipAgreement => true,
            GtmItem::MiniSite | GtmItem::DirectoryLogo | GtmItem::LaunchBlog | GtmItem::Documentation => {
                false
            }
        }
    }

    /// True when the item is a page, whose link must be known before it is
    /// done (the group launch post links the blog, for one).
    pub fn needs_link(self) -> bool {
        match self {
            GtmItem::MiniSite | GtmItem::LaunchBlog | GtmItem::Documentation => true,
            GtmItem::PartnershipAgreement | GtmItem::DirectoryLogo => false,
        }
    }
}

impl fmt::Display for GtmItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a go-to-market item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown go-to-market item {}; the items are agreement, mini-site, logo, blog, docs",
    quoted(.0)
)]
pub struct UnknownGtmItem(pub String);

impl FromStr for GtmItem {
    type Err = UnknownGtmItem;

    /// The CLI names, case-insensitively, `-` and `_` alike; also
    /// `partnership-agreement`, `minisite`, `launch-blog`, `documentation`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        match norm.as_str() {
            "agreement" | "partnership-agreement" => Ok(GtmItem::PartnershipAgreement),
            "mini-site" | "minisite" => Ok(GtmItem::MiniSite),
            "logo" => Ok(GtmItem::DirectoryLogo),
            "blog" | "launch-blog" => Ok(GtmItem::LaunchBlog),
            "docs" | "documentation" => Ok(GtmItem::Documentation),
            _ => Err(UnknownGtmItem(s.to_string())),
        }
    }
}

/// Done or pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GtmStatus {
    /// The item is done.
    Done,
    /// The item is still to do: it holds up the GA date.
    Pending,
}

impl fmt::Display for GtmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GtmStatus::Done => "done",
            GtmStatus::Pending => "pending",
        })
    }
}

/// A set item as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtmEntry {
    /// Done or pending.
    pub status: GtmStatus,
    /// Who delivers it (a person or team as the caller names it).
    pub owner: String,
    /// When it is due, a calendar date.
    pub due: Date,
    /// The page, for the items that are one (required to be done).
    pub link: Option<String>,
    /// Who changed it last, for the audit.
    pub by: String,
    /// When, in domain time (passed in).
    pub at: Timestamp,
}

/// A change to one item: the fields given replace the recorded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtmUpdate {
    /// The new status (a new item starts pending).
    pub status: Option<GtmStatus>,
    /// The new owner (required for a new item).
    pub owner: Option<String>,
    /// The new due date (required for a new item).
    pub due: Option<Date>,
    /// The item's page (an https URL).
    pub link: Option<String>,
    /// Who makes the change (the caller's identity).
    pub by: String,
    /// When, in domain time.
    pub at: Timestamp,
}

/// What a [`GtmReadiness::set`] changed, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtmChange {
    /// The item.
    pub item: GtmItem,
    /// What was recorded before, if anything.
    pub before: Option<GtmEntry>,
    /// What is recorded now.
    pub after: GtmEntry,
}

/// Why setting an item is refused. Nothing changes on a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtmError {
    /// The item name is unknown.
    #[error(transparent)]
    UnknownItem(#[from] UnknownGtmItem),
    /// The partnership agreement is read from legal's sign-off.
    #[error(
        "the partnership agreement is not set here: it is done when legal signs off the current revision (`{LEGAL_SIGN_OFF_COMMAND}`)"
    )]
    Derived,
    /// The change names nobody as its author.
    #[error("the change to {item} names nobody as its author; every change records who made it")]
    NoRecorder {
        /// The item.
        item: GtmItem,
    },
    /// Nothing to change.
    #[error("nothing to set for {item}: give --done, --pending, --owner, --due or --link")]
    NothingToSet {
        /// The item.
        item: GtmItem,
    },
    /// The item has no owner (none recorded, none or a blank one given).
    #[error("{item} ({title}) needs an owner: give --owner NAME", title = .item.title())]
    NoOwner {
        /// The item.
        item: GtmItem,
    },
    /// The item has no due date.
    #[error("{item} ({title}) needs a due date: give --due YYYY-MM-DD", title = .item.title())]
    NoDueDate {
        /// The item.
        item: GtmItem,
    },
    /// A page item marked done without its link.
    #[error("{item} ({title}) cannot be done without its link: give --link https://...", title = .item.title())]
    NoLink {
        /// The item.
        item: GtmItem,
    },
    /// The link is not an https URL.
    #[error("link of {item} refused: {reason}")]
    BadLink {
        /// The item.
        item: GtmItem,
        /// What is wrong with it (quoting it, bounded).
        reason: String,
    },
}

/// Where one item stands, set or derived: what `tilewave tile gtm TILE`
/// shows and the GA gate reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtmItemState {
    /// The item.
    pub item: GtmItem,
    /// Done or pending.
    pub status: GtmStatus,
    /// Who delivers it: `legal` for the agreement; `None` while unassigned.
    pub owner: Option<String>,
    /// When it is due (`None` while unassigned, and for the agreement,
    /// which the launch sign-offs already gate).
    pub due: Option<Date>,
    /// The item's page, if recorded.
    pub link: Option<String>,
    /// Who changed it last (for the agreement: who signed for legal).
    pub by: Option<String>,
    /// When.
    pub at: Option<Timestamp>,
}

impl GtmItemState {
    /// True when the item is pending past its due date (`today` in the
    /// caller's calendar).
    pub fn overdue(&self, today: Date) -> bool {
        self.status == GtmStatus::Pending && self.due.is_some_and(|d| d < today)
    }
}

impl fmt::Display for GtmItemState {
    /// `mini-site (partner mini site): pending, owner ana, due 2026-12-01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.item, self.item.title(), self.status)?;
        if self.item.derived() {
            return match self.status {
                GtmStatus::Done => Ok(()),
                GtmStatus::Pending => write!(f, " until legal signs off (`{LEGAL_SIGN_OFF_COMMAND}`)"),
            };
        }
        match (&self.owner, self.due) {
            (Some(owner), Some(due)) => write!(f, ", owner {}, due {due}", quoted(owner)),
            _ => f.write_str(", no owner or due date yet"),
        }
    }
}

/// The go-to-market items set on a tile (the agreement is never among
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtmReadiness {
    entries: BTreeMap<GtmItem, GtmEntry>,
}

impl GtmReadiness {
    /// Nothing set: every item pending and unassigned.
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded entry of `item` (never one for the agreement).
    pub fn get(&self, item: GtmItem) -> Option<&GtmEntry> {
        self.entries.get(&item).filter(|_| !item.derived())
    }

    /// Sets `item` from `update`: the fields given replace the recorded
    /// ones. An item needs an owner and a due date; a page item needs its
    /// link (an https URL) to be done; the agreement is refused (it is
    /// legal's sign-off).
    pub fn set(&mut self, item: GtmItem, update: GtmUpdate) -> Result<GtmChange, GtmError> {
        if item.derived() {
            return Err(GtmError::Derived);
        }
        if update.by.trim().is_empty() {
            return Err(GtmError::NoRecorder { item });
        }
        let GtmUpdate {
            status,
            owner,
            due,
            link,
            by,
            at,
        } = update;
        if status.is_none() && owner.is_none() && due.is_none() && link.is_none() {
            return Err(GtmError::NothingToSet { item });
        }
        let before = self.entries.get(&item).cloned();
        let owner = owner
            .or_else(|| before.as_ref().map(|b| b.owner.clone()))
            .filter(|o| !o.trim().is_empty())
            .ok_or(GtmError::NoOwner { item })?;
        let due = due
            .or_else(|| before.as_ref().map(|b| b.due))
            .ok_or(GtmError::NoDueDate { item })?;
        if let Some(l) = &link {
            check_url(l).map_err(|reason| GtmError::BadLink { item, reason })?;
        }
        let link = link.or_else(|| before.as_ref().and_then(|b| b.link.clone()));
        let status = status
            .or_else(|| before.as_ref().map(|b| b.status))
            .unwrap_or(GtmStatus::Pending);
        if status == GtmStatus::Done && item.needs_link() && link.is_none() {
            return Err(GtmError::NoLink { item });
        }
        let after = GtmEntry {
            status,
            owner,
            due,
            link,
            by,
            at,
        };
        self.entries.insert(item, after.clone());
        Ok(GtmChange { item, before, after })
    }

    /// Every item in [`GtmItem::ALL`] order, the agreement read from
    /// `sign_offs` (the tile's, on its current revision): done when legal
    /// has signed.
    pub fn items(&self, sign_offs: &SignOffs) -> Vec<GtmItemState> {
        GtmItem::ALL
            .iter()
            .map(|&item| {
                if item.derived() {
                    let legal = sign_offs.get(Role::Legal);
                    return GtmItemState {
                        item,
                        status: if legal.is_some() {
                            GtmStatus::Done
                        } else {
                            GtmStatus::Pending
                        },
                        owner: Some(Role::Legal.as_str().to_owned()),
                        due: None,
                        link: None,
                        by: legal.map(|s| s.by.clone()),
                        at: legal.map(|s| s.at),
                    };
                }
                match self.entries.get(&item) {
                    Some(e) => GtmItemState {
                        item,
                        status: e.status,
                        owner: Some(e.owner.clone()),
                        due: Some(e.due),
                        link: e.link.clone(),
                        by: Some(e.by.clone()),
                        at: Some(e.at),
                    },
                    None => GtmItemState {
                        item,
                        status: GtmStatus::Pending,
                        owner: None,
                        due: None,
                        link: None,
                        by: None,
                        at: None,
                    },
                }
            })
            .collect()
    }

    /// The items still pending, in [`GtmItem::ALL`] order.
    pub fn pending(&self, sign_offs: &SignOffs) -> Vec<GtmItemState> {
        self.items(sign_offs)
            .into_iter()
            .filter(|s| s.status == GtmStatus::Pending)
            .collect()
    }
}

/// An explicit decision to commit a GA date with items pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtmOverride {
    /// Why the date may be committed anyway (must not be blank).
    pub reason: String,
    /// Who decides (the caller's identity; must not be blank).
    pub by: String,
    /// When, in domain time.
    pub at: Timestamp,
}

/// An override that was used: what the audit log records and `ga list`
/// shows beside the tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtmOverridden {
    /// The override as given.
    pub over: GtmOverride,
    /// The items that were pending when it was used.
    pub pending: Vec<GtmItem>,
}

impl fmt::Display for GtmOverridden {
    /// `go-to-market override by ana at ...: "reason" (pending: blog, docs)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending: Vec<&str> = self.pending.iter().map(|i| i.as_str()).collect();
        write!(
            f,
            "go-to-market override by {} at {}: {} (pending: {})",
            quoted(&self.over.by),
            self.over.at,
            quoted(&self.over.reason),
            pending.join(", ")
        )
    }
}

/// What [`ga_commit_gate`] allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GaCommit {
    /// Every item is done (an override given anyway is not used).
    Ready,
    /// Items are pending; the override lets the date be committed, on the
    /// record.
    Overridden(GtmOverridden),
}

/// Why a GA date may not be committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtmGateError {
    /// Items are pending and no override was given.
    #[error(
        "GA date not committed: {} go-to-market item{} pending: {}; mark each done with `{GTM_SET_COMMAND}`, or commit anyway with `{GTM_OVERRIDE_FLAG}` (the audit log records the override)",
        pending.len(),
        if pending.len() == 1 { " is" } else { "s are" },
        pending.iter().map(GtmItemState::to_string).collect::<Vec<_>>().join("; ")
    )]
    Pending {
        /// The pending items.
        pending: Vec<GtmItemState>,
    },
    /// An override without a reason.
    #[error(
        "a go-to-market override needs a reason: say why the GA date may be committed with items pending"
    )]
    OverrideWithoutReason,
    /// An override naming nobody.
    #[error("a go-to-market override must name who gives it")]
    OverrideWithoutName,
}

/// The gate committing a GA date passes: every item of `gtm` done (the
/// agreement read from `sign_offs`), or an explicit `over`ride, returned for
/// the audit log. A given override must have a reason and a name even when
/// nothing is pending.
pub fn ga_commit_gate(
    gtm: &GtmReadiness,
    sign_offs: &SignOffs,
    over: Option<GtmOverride>,
) -> Result<GaCommit, GtmGateError> {
    if let Some(o) = &over {
        if o.reason.trim().is_empty() {
            return Err(GtmGateError::OverrideWithoutReason);
        }
        if o.by.trim().is_empty() {
            return Err(GtmGateError::OverrideWithoutName);
        }
    }
    let pending = gtm.pending(sign_offs);
    match (pending.is_empty(), over) {
        (true, _) => Ok(GaCommit::Ready),
        (false, Some(over)) => Ok(GaCommit::Overridden(GtmOverridden {
            over,
            pending: pending.iter().map(|s| s.item).collect(),
        })),
        (false, None) => Err(GtmGateError::Pending { pending }),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::signoff::{RevisionNo, SignOff};

    fn at() -> Timestamp {
        Timestamp::constant(1_760_000_000, 0)
    }

    fn due() -> Date {
        date(2026, 12, 1)
    }

    fn upd() -> GtmUpdate {
        GtmUpdate {
            status: None,
            owner: None,
            due: None,
            link: None,
            by: "ana".into(),
            at: at(),
        }
    }

    fn new_item(owner: &str) -> GtmUpdate {
        GtmUpdate {
            owner: Some(owner.into()),
            due: Some(due()),
            ..upd()
        }
    }

    fn done(link: Option<&str>) -> GtmUpdate {
        GtmUpdate {
            status: Some(GtmStatus::Done),
            link: link.map(str::to_owned),
            ..new_item("partner marketing")
        }
    }

    fn back_to_pending() -> GtmUpdate {
        GtmUpdate {
            status: Some(GtmStatus::Pending),
            ..upd()
        }
    }

    fn legal_signed() -> SignOffs {
        let mut s = SignOffs::new(RevisionNo(1));
        s.record(
            RevisionNo(1),
            Role::Legal,
            SignOff {
                by: "counsel".into(),
                at: at(),
            },
        )
        .unwrap();
        s
    }

    /// Every settable item done.
    fn all_done() -> GtmReadiness {
        let mut g = GtmReadiness::new();
        for item in GtmItem::ALL.into_iter().filter(|i| !i.derived()) {
            g.set(item, done(Some("https://partner.example/page"))).unwrap();
        }
        g
    }

    #[test]
    fn item_names_parse_and_print() {
        // (input, item)
        let cases = [
            ("agreement", GtmItem::PartnershipAgreement),
            ("partnership_agreement", GtmItem::PartnershipAgreement),
            ("mini-site", GtmItem::MiniSite),
            ("MiniSite", GtmItem::MiniSite),
            ("logo", GtmItem::DirectoryLogo),
            (" blog ", GtmItem::LaunchBlog),
            ("launch-blog", GtmItem::LaunchBlog),
            ("docs", GtmItem::Documentation),
            ("documentation", GtmItem::Documentation),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<GtmItem>(), Ok(want), "{input:?}");
        }
        for item in GtmItem::ALL {
            assert_eq!(item.as_str().parse::<GtmItem>(), Ok(item));
            assert_eq!(
                serde_json::to_string(&item).unwrap(),
                format!("\"{}\"", item.as_str())
            );
        }
        assert_eq!(
            "press".parse::<GtmItem>().unwrap_err().to_string(),
            "unknown go-to-market item \"press\"; the items are agreement, mini-site, logo, blog, docs"
        );
    }

    #[test]
    fn setting_rules() {
        let bad_link = GtmUpdate {
            link: Some("ftp://x.example".into()),
            ..new_item("ana")
        };
        // (item, update, expected error)
        let cases: Vec<(GtmItem, GtmUpdate, Option<GtmError>)> = vec![
            (GtmItem::MiniSite, new_item("ana"), None),
            (GtmItem::DirectoryLogo, done(None), None),
            (
                GtmItem::LaunchBlog,
                done(Some("https://partner.example/blog")),
                None,
            ),
            (
                GtmItem::Documentation,
                done(Some("https://docs.partner.example")),
                None,
            ),
            (GtmItem::PartnershipAgreement, done(None), Some(GtmError::Derived)),
            (
                GtmItem::PartnershipAgreement,
                new_item("ana"),
                Some(GtmError::Derived),
            ),
            (
                GtmItem::MiniSite,
                GtmUpdate {
                    by: " ".into(),
                    ..new_item("ana")
                },
                Some(GtmError::NoRecorder {
                    item: GtmItem::MiniSite,
                }),
            ),
            (
                GtmItem::MiniSite,
                upd(),
                Some(GtmError::NothingToSet {
                    item: GtmItem::MiniSite,
                }),
            ),
            (
                GtmItem::LaunchBlog,
                GtmUpdate {
                    owner: None,
                    ..new_item("x")
                },
                Some(GtmError::NoOwner {
                    item: GtmItem::LaunchBlog,
                }),
            ),
            (
                GtmItem::LaunchBlog,
                new_item("  "),
                Some(GtmError::NoOwner {
                    item: GtmItem::LaunchBlog,
                }),
            ),
            (
                GtmItem::LaunchBlog,
                GtmUpdate {
                    due: None,
                    ..new_item("ana")
                },
                Some(GtmError::NoDueDate {
                    item: GtmItem::LaunchBlog,
                }),
            ),
            (
                GtmItem::MiniSite,
                done(None),
                Some(GtmError::NoLink {
                    item: GtmItem::MiniSite,
                }),
            ),
            (
                GtmItem::LaunchBlog,
                done(None),
                Some(GtmError::NoLink {
                    item: GtmItem::LaunchBlog,
                }),
            ),
            (
                GtmItem::Documentation,
                done(None),
                Some(GtmError::NoLink {
                    item: GtmItem::Documentation,
                }),
            ),
            (
                GtmItem::MiniSite,
                bad_link,
                Some(GtmError::BadLink {
                    item: GtmItem::MiniSite,
                    reason: "URL \"ftp://x.example\" must use https, not \"ftp\"".into(),
                }),
            ),
        ];
        for (item, update, want) in cases {
            let mut g = GtmReadiness::new();
            let got = g.set(item, update.clone());
            match want {
                None => {
                    let change = got.unwrap();
                    assert_eq!((change.item, &change.before), (item, &None));
                    assert_eq!(g.get(item), Some(&change.after));
                    assert_eq!(change.after.owner, update.owner.unwrap());
                    assert_eq!(change.after.status, update.status.unwrap_or(GtmStatus::Pending));
                }
                Some(e) => {
                    assert_eq!(got.unwrap_err(), e, "{item} {update:?}");
                    assert_eq!(g, GtmReadiness::new(), "a refusal sets nothing");
                }
            }
        }
    }

    #[test]
    fn refusal_messages_read_well() {
        let cases = [
            (
                GtmError::Derived,
                "the partnership agreement is not set here: it is done when legal signs off the current \
                 revision (`tilewave tile signoff TILE --role legal`)",
            ),
            (
                GtmError::NoOwner {
                    item: GtmItem::LaunchBlog,
                },
                "blog (the partner's launch blog) needs an owner: give --owner NAME",
            ),
            (
                GtmError::NoDueDate {
                    item: GtmItem::DirectoryLogo,
                },
                "logo (logo in the partner directory) needs a due date: give --due YYYY-MM-DD",
            ),
            (
                GtmError::NoLink {
                    item: GtmItem::MiniSite,
                },
                "mini-site (partner mini site) cannot be done without its link: give --link https://...",
            ),
            (
                GtmError::NothingToSet {
                    item: GtmItem::Documentation,
                },
                "nothing to set for docs: give --done, --pending, --owner, --due or --link",
            ),
            (
                GtmError::NoRecorder {
                    item: GtmItem::Documentation,
                },
                "the change to docs names nobody as its author; every change records who made it",
            ),
            (
                GtmError::BadLink {
                    item: GtmItem::LaunchBlog,
                    reason: "URL \"x\" is bad".into(),
                },
                "link of blog refused: URL \"x\" is bad",
            ),
        ];
        for (err, msg) in cases {
            assert_eq!(err.to_string(), msg);
        }
        let gate = [
            (
                GtmGateError::OverrideWithoutReason,
                "a go-to-market override needs a reason: say why the GA date may be committed with items \
                 pending",
            ),
            (
                GtmGateError::OverrideWithoutName,
                "a go-to-market override must name who gives it",
            ),
        ];
        for (err, msg) in gate {
            assert_eq!(err.to_string(), msg);
        }
        // A long bad link is quoted bounded.
        let long = format!("https://{}", "a".repeat(100_000));
        let mut g = GtmReadiness::new();
        let err = g
            .set(
                GtmItem::MiniSite,
                GtmUpdate {
                    link: Some(long),
                    ..new_item("ana")
                },
            )
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn updates_change_only_what_they_name() {
        let mut g = GtmReadiness::new();
        g.set(GtmItem::LaunchBlog, new_item("ana")).unwrap();
        // Later: the link, then done, each alone, by someone else.
        let change = g
            .set(
                GtmItem::LaunchBlog,
                GtmUpdate {
                    link: Some("https://partner.example/launch".into()),
                    by: "bo".into(),
                    ..upd()
                },
            )
            .unwrap();
        assert_eq!(change.before.as_ref().map(|b| b.link.clone()), Some(None));
        let change = g
            .set(
                GtmItem::LaunchBlog,
                GtmUpdate {
                    status: Some(GtmStatus::Done),
                    by: "bo".into(),
                    ..upd()
                },
            )
            .unwrap();
        assert_eq!(
            change.after,
            GtmEntry {
                status: GtmStatus::Done,
                owner: "ana".into(),
                due: due(),
                link: Some("https://partner.example/launch".into()),
                by: "bo".into(),
                at: at(),
            }
        );
        // A blank owner never replaces a recorded one.
        let before = g.clone();
        assert_eq!(
            g.set(GtmItem::LaunchBlog, new_item("")),
            Err(GtmError::NoOwner {
                item: GtmItem::LaunchBlog
            })
        );
        assert_eq!(g, before);
        // Back to pending keeps owner, due and link.
        g.set(GtmItem::LaunchBlog, back_to_pending()).unwrap();
        assert_eq!(
            g.get(GtmItem::LaunchBlog).map(|e| (e.status, e.owner.as_str())),
            Some((GtmStatus::Pending, "ana"))
        );
    }

    #[test]
    fn the_agreement_is_read_from_legal_s_sign_off() {
        let g = all_done();
        let unsigned = SignOffs::new(RevisionNo(1));
        let items = g.items(&unsigned);
        assert_eq!(items.iter().map(|s| s.item).collect::<Vec<_>>(), GtmItem::ALL);
        assert_eq!(
            g.pending(&unsigned).iter().map(|s| s.item).collect::<Vec<_>>(),
            [GtmItem::PartnershipAgreement]
        );
        let signed = legal_signed();
        let agreement = &g.items(&signed)[0];
        assert_eq!(
            (
                agreement.status,
                agreement.owner.as_deref(),
                agreement.by.as_deref(),
                agreement.at
            ),
            (GtmStatus::Done, Some("legal"), Some("counsel"), Some(at()))
        );
        assert!(g.pending(&signed).is_empty());
        // A new revision clears legal's sign-off, and so the agreement.
        let mut next = signed.clone();
        next.new_revision(RevisionNo(2)).unwrap();
        assert_eq!(g.pending(&next).len(), 1);
    }

    #[test]
    fn item_states_print_and_know_when_overdue() {
        let mut g = GtmReadiness::new();
        g.set(GtmItem::MiniSite, new_item("ana")).unwrap();
        g.set(GtmItem::DirectoryLogo, done(None)).unwrap();
        let items = g.items(&SignOffs::new(RevisionNo(1)));
        let shown: Vec<String> = items.iter().map(GtmItemState::to_string).collect();
        assert_eq!(
            shown,
            [
                "agreement (partnership agreement signed): pending until legal signs off (`tilewave tile \
                 signoff TILE --role legal`)",
                "mini-site (partner mini site): pending, owner \"ana\", due 2026-12-01",
                "logo (logo in the partner directory): done, owner \"partner marketing\", due 2026-12-01",
                "blog (the partner's launch blog): pending, no owner or due date yet",
                "docs (the partner's documentation): pending, no owner or due date yet",
            ]
        );
        // (item index, today, overdue)
        let cases = [
            (1, date(2026, 12, 2), true),
            (1, date(2026, 12, 1), false),
            (1, date(2026, 11, 1), false),
            (2, date(2027, 1, 1), false),
            (3, date(2027, 1, 1), false),
            (0, date(2027, 1, 1), false),
        ];
        for (i, today, overdue) in cases {
            assert_eq!(items[i].overdue(today), overdue, "{} {today}", items[i].item);
        }
    }

    #[test]
    fn the_ga_commit_gate() {
        let over = |reason: &str, by: &str| GtmOverride {
            reason: reason.into(),
            by: by.into(),
            at: at(),
        };
        let ok_over = over("partner blog slips a day; agreed with product", "dana");
        let partial = {
            let mut g = all_done();
            g.set(GtmItem::LaunchBlog, back_to_pending()).unwrap();
            g
        };
        let unsigned = SignOffs::new(RevisionNo(1));
        // (items, sign-offs, override, outcome: Ok(pending items overridden) or Err)
        type Want = Result<Option<Vec<GtmItem>>, GtmGateError>;
        let cases: Vec<(GtmReadiness, SignOffs, Option<GtmOverride>, Want)> = vec![
            (all_done(), legal_signed(), None, Ok(None)),
            (all_done(), legal_signed(), Some(ok_over.clone()), Ok(None)),
            (
                partial.clone(),
                legal_signed(),
                Some(ok_over.clone()),
                Ok(Some(vec![GtmItem::LaunchBlog])),
            ),
            (
                all_done(),
                unsigned.clone(),
                Some(ok_over.clone()),
                Ok(Some(vec![GtmItem::PartnershipAgreement])),
            ),
            (
                GtmReadiness::new(),
                unsigned.clone(),
                Some(ok_over.clone()),
                Ok(Some(GtmItem::ALL.to_vec())),
            ),
            (
                partial.clone(),
                legal_signed(),
                Some(over(" ", "dana")),
                Err(GtmGateError::OverrideWithoutReason),
            ),
            (
                all_done(),
                legal_signed(),
                Some(over("why", "")),
                Err(GtmGateError::OverrideWithoutName),
            ),
        ];
        for (g, s, o, want) in cases {
            let got = ga_commit_gate(&g, &s, o.clone());
            match want {
                Ok(None) => assert_eq!(got, Ok(GaCommit::Ready)),
                Ok(Some(pending)) => assert_eq!(
                    got,
                    Ok(GaCommit::Overridden(GtmOverridden {
                        over: o.unwrap(),
                        pending
                    }))
                ),
                Err(e) => assert_eq!(got, Err(e)),
            }
        }
        // Without an override the pending items are listed.
        let err = ga_commit_gate(&partial, &unsigned, None).unwrap_err();
        assert!(
            matches!(&err, GtmGateError::Pending { pending } if pending.len() == 2),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "GA date not committed: 2 go-to-market items are pending: agreement (partnership agreement \
             signed): pending until legal signs off (`tilewave tile signoff TILE --role legal`); blog (the \
             partner's launch blog): pending, owner \"partner marketing\", due 2026-12-01; mark each done \
             with `tilewave tile gtm TILE set ITEM --done|--pending --owner NAME --due YYYY-MM-DD --link \
             URL`, or commit anyway with `--gtm-override REASON` (the audit log records the override)"
        );
        let one = ga_commit_gate(&partial, &legal_signed(), None)
            .unwrap_err()
            .to_string();
        assert!(one.contains("1 go-to-market item is pending: blog"), "{one}");
        // The override as the audit log and `ga list` show it.
        let Ok(GaCommit::Overridden(o)) = ga_commit_gate(&partial, &legal_signed(), Some(ok_over)) else {
            panic!("overridden")
        };
        assert_eq!(
            o.to_string(),
            "go-to-market override by \"dana\" at 2025-10-09T08:53:20Z: \"partner blog slips a day; \
             agreed with product\" (pending: blog)"
        );
    }

    #[test]
    fn readiness_round_trips_through_json() {
        let mut g = all_done();
        g.set(GtmItem::LaunchBlog, new_item("ana")).unwrap();
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains("\"blog\":{\"status\":\"done\""), "{json}");
        assert_eq!(serde_json::from_str::<GtmReadiness>(&json).unwrap(), g);
        // A stored agreement entry (never written by `set`) is not read.
        let forged = json.replacen("\"blog\"", "\"agreement\"", 1);
        let forged: GtmReadiness = serde_json::from_str(&forged).unwrap();
        assert_eq!(forged.get(GtmItem::PartnershipAgreement), None);
        let unsigned = SignOffs::new(RevisionNo(1));
        assert_eq!(forged.items(&unsigned)[0].status, GtmStatus::Pending);
        let o = GaCommit::Overridden(GtmOverridden {
            over: GtmOverride {
                reason: "r".into(),
                by: "b".into(),
                at: at(),
            },
            pending: vec![GtmItem::Documentation],
        });
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<GaCommit>(&json).unwrap(), o);
    }
}
