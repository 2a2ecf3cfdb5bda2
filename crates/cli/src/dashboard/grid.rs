//! The roll-out's regions as a grid: grouped by cloud, ordered by wave
//! (then by planned order), each cell coloured by its step state and titled
//! with its region, time zone, wave and live revision. The same cells feed
//! the page and the live updates (`sse`), so both always agree.

use maud::{Markup, html};
use serde::Serialize;
use tilewave_core::regions::RegionCatalog;
use tilewave_proto::rollout::v1::{Rollout, StepState};

use crate::names::cloud_name;
use crate::rollout::render::step_name;

/// One region's cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// `<cloud>:<region>`.
    pub region: String,
    /// The cloud's short name (`gcp`).
    pub cloud: String,
    /// 1-based wave.
    pub wave: i32,
    /// The step state, kebab case (`baking`): the cell's class.
    pub state: String,
    /// The revision live in the region (0: none).
    pub live_revision: i64,
    /// The hover text: region, time zone, wave, state, live revision.
    pub title: String,
}

/// The revision live in a region whose step is in `state`.
fn live_revision(r: &Rollout, state: i32) -> i64 {
    match StepState::try_from(state) {
        Ok(StepState::Baking | StepState::Verified) => r.revision,
        _ => r.previous_revision,
    }
}

/// The cells of a roll-out, grouped by cloud (alphabetical), in wave order
/// within a cloud (planned order within a wave).
pub fn cells(r: &Rollout, catalog: &RegionCatalog) -> Vec<Cell> {
    let mut out: Vec<(usize, Cell)> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let cloud = s
                .region
                .split_once(':')
                .map_or_else(|| cloud_name(s.cloud), |(c, _)| c.to_owned());
            let tz = catalog
                .get(&s.region)
                .map_or_else(|_| "time zone unknown".to_owned(), |reg| reg.tz_name.clone());
            let live = live_revision(r, s.state);
            let state = step_name(s.state);
            let live_text = if live == 0 {
                "not live".to_owned()
            } else {
                format!("live revision {live}")
            };
            let mut title = format!("{} · {tz} · wave {} · {state} · {live_text}", s.region, s.wave);
            if !s.last_error.is_empty() {
                title.push_str(&format!(" · {}", s.last_error));
            }
            (
                i,
                Cell {
                    region: s.region.clone(),
                    cloud,
                    wave: s.wave,
                    state,
                    live_revision: live,
                    title,
                },
            )
        })
        .collect();
    out.sort_by(|(i, a), (j, b)| (&a.cloud, a.wave, i).cmp(&(&b.cloud, b.wave, j)));
    out.into_iter().map(|(_, c)| c).collect()
}

/// The grid: one block per cloud, one cell per region.
pub fn render(cells: &[Cell]) -> Markup {
    let mut clouds: Vec<&str> = cells.iter().map(|c| c.cloud.as_str()).collect();
    clouds.dedup();
    html! {
        div #grid .grid {
            @for cloud in &clouds {
                section.cloud {
                    h3 { (cloud) " " span.muted { "(" (cells.iter().filter(|c| c.cloud == *cloud).count()) ")" } }
                    div.cells {
                        @for c in cells.iter().filter(|c| c.cloud == *cloud) {
                            div class=(format!("cell st-{}", c.state)) data-region=(c.region) data-wave=(c.wave) title=(c.title) {
                                span.name { (c.region.split_once(':').map_or(c.region.as_str(), |(_, r)| r)) }
                                span.w { "w" (c.wave) }
                            }
                        }
                    }
                }
            }
        }
        p.legend {
            @for s in ["pending", "applying", "baking", "verified", "failed", "skipped", "rolling-back", "rolled-back"] {
                span class=(format!("key st-{s}")) {} (s) " "
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::rollout::v1::RolloutStep;

    use super::*;

    fn step(region: &str, wave: i32, state: StepState) -> RolloutStep {
        RolloutStep {
            region: region.into(),
            wave,
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn cells_group_by_cloud_then_wave_and_carry_zone_and_live_revision() {
        let r = Rollout {
            revision: 3,
            previous_revision: 2,
            steps: vec![
                step("gcp:us-central1", 1, StepState::Verified),
                step("aws:us-east-1", 1, StepState::Baking),
                step("gcp:europe-west1", 2, StepState::Applying),
                step("aws:eu-west-1", 3, StepState::Pending),
                step("aws:ap-south-1", 2, StepState::Failed),
            ],
            ..Default::default()
        };
        let cells = cells(&r, &RegionCatalog::builtin());
        let order: Vec<(&str, i32)> = cells.iter().map(|c| (c.region.as_str(), c.wave)).collect();
        assert_eq!(
            order,
            [
                ("aws:us-east-1", 1),
                ("aws:ap-south-1", 2),
                ("aws:eu-west-1", 3),
                ("gcp:us-central1", 1),
                ("gcp:europe-west1", 2),
            ]
        );
        let live: Vec<i64> = cells.iter().map(|c| c.live_revision).collect();
        assert_eq!(live, [3, 2, 2, 3, 2]);
        assert_eq!(cells[0].state, "baking");
        assert!(cells[0].title.contains("aws:us-east-1 · "), "{}", cells[0].title);
        assert!(cells[0].title.contains("live revision 3"), "{}", cells[0].title);
        let html = render(&cells).into_string();
        assert_eq!(html.matches("class=\"cell ").count(), 5, "{html}");
        assert!(html.contains("data-region=\"gcp:europe-west1\""));
        assert!(html.contains("cell st-failed"));
    }
}
