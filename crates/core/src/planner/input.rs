//! What a plan is computed from: [`PlanInput`] and its parts, with the
//! defaults of docs/domain.md, "The planner" as named constants.

use jiff::{SignedDuration, Timestamp};

use super::blackout::Blackouts;
use crate::regions::{Cloud, RegionCatalog};

/// How long applying a tile to one region takes, unless told otherwise.
pub const DEFAULT_APPLY_TIME: SignedDuration = SignedDuration::from_mins(5);
/// How long each wave bakes (is watched for health) after its last apply.
pub const DEFAULT_BAKE: SignedDuration = SignedDuration::from_hours(4);
/// How many regions of a wave may apply at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Each wave after the first is this many times the size of the one before
/// (1, 2, 4, 8... times the canary count).
pub const DEFAULT_WAVE_GROWTH: u32 = 2;
/// The earliest start is this long before GA (docs/domain.md: the week before GA).
pub const DEFAULT_LEAD_TIME: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The roll-out must be done this long before GA.
pub const DEFAULT_GA_MARGIN: SignedDuration = SignedDuration::from_hours(24);

/// Which regions the tile goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSelection {
    /// Every catalog region of the tile's clouds except these ids.
    AllExcept(Vec<String>),
    /// Exactly these region ids (each must be of one of the tile's clouds).
    Only(Vec<String>),
}

impl Default for RegionSelection {
    fn default() -> Self {
        RegionSelection::AllExcept(Vec::new())
    }
}

/// How the selected regions are grouped into waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveShape {
    /// Wave 1 is one canary per cloud (the catalog's `canary_of`, or the
    /// first selected region of the cloud when that one is excluded); each
    /// later wave is `growth` times the one before, filled with the remaining
    /// regions in catalog order with the clouds interleaved in proportion to
    /// their size, until every region is covered.
    Canary {
        /// Size ratio of consecutive waves (at least 1).
        growth: u32,
    },
    /// Waves given region by region; together they must list every selected
    /// region exactly once.
    Explicit(Vec<Vec<String>>),
}

impl Default for WaveShape {
    fn default() -> Self {
        WaveShape::Canary {
            growth: DEFAULT_WAVE_GROWTH,
        }
    }
}

/// How long each wave bakes after its last apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BakePolicy {
    /// The same bake for every wave.
    Uniform(SignedDuration),
    /// One bake per wave, in order; the last one repeats for further waves.
    PerWave(Vec<SignedDuration>),
}

impl Default for BakePolicy {
    fn default() -> Self {
        BakePolicy::Uniform(DEFAULT_BAKE)
    }
}

/// Everything a plan depends on. Time is an input (`now`), never read.
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// The regions that exist.
    pub catalog: RegionCatalog,
    /// The clouds the tile supports.
    pub clouds: Vec<Cloud>,
    /// Which of their regions to roll out to.
    pub regions: RegionSelection,
    /// Time to apply the tile to one region.
    pub apply_time: SignedDuration,
    /// How regions are grouped into waves.
    pub waves: WaveShape,
    /// Bake after each wave.
    pub bake: BakePolicy,
    /// Regions of one wave applying at once (at least 1).
    pub concurrency: usize,
    /// Waves (numbered from 1) after which a person must Approve before the
    /// next wave starts. The plan cannot know how long that takes: it counts
    /// the hold as zero time and flags it.
    pub holds_after: Vec<usize>,
    /// When applies may not start.
    pub blackouts: Blackouts,
    /// The GA moment; gives the default earliest start and deadline.
    pub ga: Option<Timestamp>,
    /// No apply starts before this; default GA - [`DEFAULT_LEAD_TIME`].
    pub earliest_start: Option<Timestamp>,
    /// Every wave must be verified by this; default GA - [`DEFAULT_GA_MARGIN`].
    pub deadline: Option<Timestamp>,
    /// The current time: the plan starts at `max(now, earliest_start)`.
    pub now: Timestamp,
}

impl PlanInput {
    /// A launch plan with every default: all regions of `clouds`, canary
    /// waves, 4 h bakes, 4 applies at once, starting a week before `ga`
    /// (or `now` if later) with a deadline of GA - 24 h.
    pub fn launch(catalog: RegionCatalog, clouds: &[Cloud], ga: Timestamp, now: Timestamp) -> Self {
        Self {
            catalog,
            clouds: clouds.to_vec(),
            regions: RegionSelection::default(),
            apply_time: DEFAULT_APPLY_TIME,
            waves: WaveShape::default(),
            bake: BakePolicy::default(),
            concurrency: DEFAULT_CONCURRENCY,
            holds_after: Vec::new(),
            blackouts: Blackouts::default(),
            ga: Some(ga),
            earliest_start: None,
            deadline: None,
            now,
        }
    }
}
