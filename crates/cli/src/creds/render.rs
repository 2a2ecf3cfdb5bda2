//! How credentials and rotations are shown: serde views for `-o json|yaml`
//! (fingerprints and metadata only: the API never returns a secret, and
//! nothing here could print one) and the tables and lines for people.

use serde::Serialize;
use tilewave_proto::ShortName as _;
use tilewave_proto::credentials::v1::{
    Credential, CredentialKind, CredentialStage, RegionRotation, RegionRotationState, Retirement,
    RewrapResponse, Rotation, RotationSchedule, RotationState,
};

use crate::names::{format_time, from_proto_duration, human_duration, kebab, short_time};
use crate::output::{Table, fields};

/// `partner-basic-auth`.
pub fn kind_name(kind: i32) -> String {
    kebab(CredentialKind::short_name_of(kind), "")
}

/// `PENDING`.
pub fn stage_name(stage: i32) -> &'static str {
    CredentialStage::short_name_of(stage)
}

/// `DISTRIBUTING`.
pub fn state_name(state: i32) -> &'static str {
    RotationState::short_name_of(state)
}

/// `VERIFIED`.
pub fn region_state_name(state: i32) -> &'static str {
    RegionRotationState::short_name_of(state)
}

/// `first-of`.
pub fn retirement_name(r: i32) -> String {
    kebab(Retirement::short_name_of(r), "")
}

/// Whether a rotation has ended for good.
pub fn is_terminal(r: &Rotation) -> bool {
    matches!(
        RotationState::try_from(r.state),
        Ok(RotationState::Completed | RotationState::Failed | RotationState::Cancelled)
    )
}

/// Whether `status --watch` stops here: ended, or promoted (the new version
/// is CURRENT everywhere; retiring the old one may take the grace period).
pub fn watch_done(r: &Rotation) -> bool {
    is_terminal(r) || r.state == RotationState::Promoted as i32
}

/// A credential version for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialView {
    pub id: String,
    pub tile_id: String,
    pub kind: String,
    pub version: i64,
    pub stage: String,
    pub fingerprint: String,
    pub username: String,
    pub generated: bool,
    pub kek_id: String,
    pub submitted_at: Option<String>,
    pub submitted_by: String,
    pub current_since: Option<String>,
    pub retired_at: Option<String>,
}

impl From<&Credential> for CredentialView {
    fn from(c: &Credential) -> Self {
        Self {
            id: c.id.clone(),
            tile_id: c.tile_id.clone(),
            kind: kind_name(c.kind),
            version: c.version,
            stage: stage_name(c.stage).to_owned(),
            fingerprint: c.fingerprint.clone(),
            username: c.username.clone(),
            generated: c.generated,
            kek_id: c.kek_id.clone(),
            submitted_at: format_time(c.submitted_at.as_ref()),
            submitted_by: c.submitted_by.clone(),
            current_since: format_time(c.current_since.as_ref()),
            retired_at: format_time(c.retired_at.as_ref()),
        }
    }
}

/// One region of a rotation for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionView {
    pub region: String,
    pub wave: i32,
    pub state: String,
    pub failures: i32,
    pub last_error: String,
    pub verified_at: Option<String>,
    /// After a failed attempt: not tried again before this.
    pub retry_at: Option<String>,
}

impl From<&RegionRotation> for RegionView {
    fn from(r: &RegionRotation) -> Self {
        Self {
            region: r.region.clone(),
            wave: r.wave,
            state: region_state_name(r.state).to_owned(),
            failures: r.failures,
            last_error: r.last_error.clone(),
            verified_at: format_time(r.verified_at.as_ref()),
            retry_at: format_time(r.retry_at.as_ref()),
        }
    }
}

/// A rotation for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RotationView {
    pub id: String,
    pub tile_id: String,
    pub kind: String,
    pub state: String,
    pub from_version: i64,
    pub to_version: i64,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    pub progress: String,
    pub regions_total: i32,
    pub regions_distributed: i32,
    pub regions_verified: i32,
    pub current_wave: i32,
    pub wave_count: i32,
    pub concurrency: i32,
    pub max_attempts: i32,
    pub bake_seconds: Option<i64>,
    pub retirement: String,
    pub grace_seconds: Option<i64>,
    pub emergency: bool,
    pub wave_ready_at: Option<String>,
    pub promoted_at: Option<String>,
    pub partner_notified: bool,
    pub partner_confirmed: bool,
    pub grace_ends_at: Option<String>,
    pub failed_region: String,
    pub reason: String,
    pub withdrawn: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub started_by: String,
    pub trace_id: String,
    pub etag: i64,
    pub regions: Vec<RegionView>,
}

impl From<&Rotation> for RotationView {
    fn from(r: &Rotation) -> Self {
        Self {
            id: r.id.clone(),
            tile_id: r.tile_id.clone(),
            kind: kind_name(r.kind),
            state: state_name(r.state).to_owned(),
            from_version: r.from_version,
            to_version: r.to_version,
            old_fingerprint: r.old_fingerprint.clone(),
            new_fingerprint: r.new_fingerprint.clone(),
            progress: r.progress.clone(),
            regions_total: r.regions_total,
            regions_distributed: r.regions_distributed,
            regions_verified: r.regions_verified,
            current_wave: r.current_wave,
            wave_count: r.wave_count,
            concurrency: r.concurrency,
            max_attempts: r.max_attempts,
            bake_seconds: r.bake.as_ref().map(|d| d.seconds),
            retirement: retirement_name(r.retirement),
            grace_seconds: r.grace.as_ref().map(|d| d.seconds),
            emergency: r.emergency,
            wave_ready_at: format_time(r.wave_ready_at.as_ref()),
            promoted_at: format_time(r.promoted_at.as_ref()),
            partner_notified: r.partner_notified,
            partner_confirmed: r.partner_confirmed,
            grace_ends_at: format_time(r.grace_ends_at.as_ref()),
            failed_region: r.failed_region.clone(),
            reason: r.reason.clone(),
            withdrawn: r.withdrawn,
            started_at: format_time(r.started_at.as_ref()),
            finished_at: format_time(r.finished_at.as_ref()),
            started_by: r.started_by.clone(),
            trace_id: r.trace_id.clone(),
            etag: r.etag,
            regions: r.regions.iter().map(RegionView::from).collect(),
        }
    }
}

/// A rotation schedule for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleView {
    pub tile_id: String,
    pub kind: String,
    pub every_days: i32,
    pub window: String,
    pub time_zone: String,
    pub next_due: Option<String>,
    pub etag: i64,
}

impl From<&RotationSchedule> for ScheduleView {
    fn from(s: &RotationSchedule) -> Self {
        let hhmm = |t: Option<&tilewave_proto::common::v1::LocalTime>| {
            t.map_or_else(String::new, |t| format!("{:02}:{:02}", t.hour, t.minute))
        };
        Self {
            tile_id: s.tile_id.clone(),
            kind: kind_name(s.kind),
            every_days: s.every_days,
            window: format!(
                "{}-{}",
                hhmm(s.window_start.as_ref()),
                hhmm(s.window_end.as_ref())
            ),
            time_zone: s.time_zone.clone(),
            next_due: format_time(s.next_due.as_ref()),
            etag: s.etag,
        }
    }
}

/// What a re-wrap did, for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewrapView {
    pub primary_kek_id: String,
    pub rewrapped: i32,
    pub already_primary: i32,
    pub dry_run: bool,
}

impl RewrapView {
    /// The view of a response.
    pub fn new(r: &RewrapResponse, dry_run: bool) -> Self {
        Self {
            primary_kek_id: r.primary_kek_id.clone(),
            rewrapped: r.rewrapped,
            already_primary: r.already_primary,
            dry_run,
        }
    }
}

/// One submitted (or generated) version: its id, stage and fingerprint.
pub fn submitted(c: &Credential) -> String {
    let user = if c.username.is_empty() {
        String::new()
    } else {
        format!(" for user {}", c.username)
    };
    let how = if c.generated { "generated" } else { "stored" };
    format!(
        "{how} {} (version {}{user}): {}, fingerprint {}\nrotate to it:  tilewave creds rotate {}\n",
        c.id,
        c.version,
        stage_name(c.stage),
        c.fingerprint,
        c.tile_id
    )
}

/// The credential versions as a table.
pub fn credentials_table(list: &[Credential]) -> String {
    let mut t = Table::new(&[
        "TILE",
        "KIND",
        "VERSION",
        "STAGE",
        "FINGERPRINT",
        "USER",
        "SUBMITTED",
    ]);
    for c in list {
        let by = if c.generated {
            "generated".to_owned()
        } else {
            c.submitted_by.clone()
        };
        let when = short_time(c.submitted_at.as_ref()).unwrap_or_default();
        t.row(vec![
            c.tile_id.clone(),
            kind_name(c.kind),
            c.version.to_string(),
            stage_name(c.stage).to_owned(),
            c.fingerprint.clone(),
            c.username.clone(),
            format!("{when} {by}").trim().to_owned(),
        ]);
    }
    t.render()
}

/// The rotations as a table.
pub fn rotations_table(list: &[Rotation]) -> String {
    let mut t = Table::new(&["ID", "TILE", "STATE", "VERSIONS", "PROGRESS", "STARTED"]);
    for r in list {
        t.row(vec![
            r.id.clone(),
            r.tile_id.clone(),
            state_name(r.state).to_owned(),
            format!("{} -> {}", r.from_version, r.to_version),
            progress(r),
            short_time(r.started_at.as_ref()).unwrap_or_default(),
        ]);
    }
    t.render()
}

/// "distributed 12/70, verified 9/70": the service's words, or counted.
pub fn progress(r: &Rotation) -> String {
    if !r.progress.is_empty() {
        return r.progress.clone();
    }
    format!(
        "distributed {}/{t}, verified {}/{t}",
        r.regions_distributed,
        r.regions_verified,
        t = r.regions_total
    )
}

/// Where a rotation stands, in a few words: `wave 2/5`, the failed
/// region, the grace period's end.
pub fn phase(r: &Rotation) -> String {
    let state = state_name(r.state);
    match RotationState::try_from(r.state) {
        Ok(RotationState::Distributing) => format!("{state}, wave {}/{}", r.current_wave, r.wave_count),
        Ok(RotationState::Promoted) => match short_time(r.grace_ends_at.as_ref()) {
            Some(end) => format!("{state}, old version accepted until {end} or the partner confirms"),
            None => format!("{state}, old version accepted until the partner confirms"),
        },
        Ok(RotationState::Failed) => format!("{state} in {}: {}", r.failed_region, r.reason),
        Ok(RotationState::Cancelled) => format!("{state}: {}", r.reason),
        _ => state.to_owned(),
    }
}

/// One line per change, for `status --watch` into a pipe or a log.
pub fn one_line(r: &Rotation) -> String {
    format!("{}: {}, {}", r.id, phase(r), progress(r))
}

/// A rotation: its summary, then a table of its regions (wave, state,
/// failures, last error).
pub fn rotation_block(r: &Rotation) -> String {
    let mut pairs = vec![
        ("ROTATION", r.id.clone()),
        ("TILE", format!("{} ({})", r.tile_id, kind_name(r.kind))),
        ("STATE", phase(r)),
        ("PROGRESS", progress(r)),
        (
            "VERSIONS",
            format!(
                "{} -> {} ({} -> {})",
                r.from_version,
                r.to_version,
                if r.old_fingerprint.is_empty() {
                    "none"
                } else {
                    &r.old_fingerprint
                },
                r.new_fingerprint
            ),
        ),
    ];
    let bake = r.bake.as_ref().map_or_else(
        || "default".to_owned(),
        |d| human_duration(from_proto_duration(d)),
    );
    let mut how = format!(
        "{} waves, {} at once, bake {bake}, {} attempts a region",
        r.wave_count, r.concurrency, r.max_attempts
    );
    if let Some(d) = r.retry_delay.as_ref().map(from_proto_duration) {
        // Seconds matter here (human_duration counts minutes): "10s".
        how.push_str(&format!(", retried after {d:#}"));
    }
    if r.emergency {
        how.push_str(", emergency");
    }
    pairs.push(("WAVES", how));
    let grace = r.grace.as_ref().map_or_else(
        || "default".to_owned(),
        |d| human_duration(from_proto_duration(d)),
    );
    pairs.push((
        "RETIREMENT",
        format!("{}, grace {grace}", retirement_name(r.retirement)),
    ));
    if r.withdrawn {
        pairs.push((
            "WITHDRAWN",
            "the new version was removed from the regions it reached".to_owned(),
        ));
    }
    if let Some(at) = short_time(r.started_at.as_ref()) {
        pairs.push(("STARTED", format!("{at} by {}", r.started_by)));
    }
    if let Some(at) = short_time(r.finished_at.as_ref()) {
        pairs.push(("FINISHED", at));
    }
    let mut text = fields(&pairs);
    if !r.regions.is_empty() {
        let mut t = Table::new(&["REGION", "WAVE", "STATE", "FAILURES", "LAST ERROR"]);
        for g in &r.regions {
            let state = match short_time(g.retry_at.as_ref()) {
                Some(at) => format!("{}, retry at {at}", region_state_name(g.state)),
                None => region_state_name(g.state).to_owned(),
            };
            t.row(vec![
                g.region.clone(),
                g.wave.to_string(),
                state,
                g.failures.to_string(),
                g.last_error.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    text
}

/// What to do next about a rotation, for the table form.
pub fn next_step(r: &Rotation) -> Option<String> {
    match RotationState::try_from(r.state) {
        Ok(RotationState::Distributing | RotationState::Promoting) => {
            Some(format!("follow it:  tilewave creds status {} --watch", r.tile_id))
        }
        Ok(RotationState::Promoted) if !r.partner_confirmed => Some(format!(
            "when the partner no longer accepts the old credential:  tilewave creds confirm-retired {}",
            r.tile_id
        )),
        Ok(RotationState::Failed) => Some(format!(
            "CURRENT is unchanged everywhere; fix the credential (or the region) and submit and rotate again: \
             tilewave creds submit {t} < new-credential.txt && tilewave creds rotate {t}",
            t = r.tile_id
        )),
        _ => None,
    }
}

/// A schedule, for people.
pub fn schedule_text(s: &RotationSchedule) -> String {
    let v = ScheduleView::from(s);
    let every = if v.every_days == 0 {
        "off (every-days 0)".to_owned()
    } else {
        format!("every {} days", v.every_days)
    };
    fields(&[
        ("TILE", format!("{} ({})", v.tile_id, v.kind)),
        ("ROTATES", every),
        ("WINDOW", format!("{} {}", v.window, v.time_zone)),
        ("NEXT DUE", v.next_due.unwrap_or_else(|| "-".to_owned())),
        ("ETAG", v.etag.to_string()),
    ])
}

/// A re-wrap's result, for people.
pub fn rewrap_text(v: &RewrapView) -> String {
    if v.dry_run {
        format!(
            "would re-wrap {} secrets under the primary key-encryption key {} ({} already under it)\n",
            v.rewrapped, v.primary_kek_id, v.already_primary
        )
    } else {
        format!(
            "re-wrapped {} secrets under the primary key-encryption key {} ({} already under it)\n",
            v.rewrapped, v.primary_kek_id, v.already_primary
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rotation in the middle of wave 2, one region failing.
    pub fn rotation(state: RotationState) -> Rotation {
        Rotation {
            id: "riverflow-cred-3".into(),
            tile_id: "riverflow".into(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            state: state as i32,
            from_version: 2,
            to_version: 3,
            old_fingerprint: "11aa22bb...ccdd".into(),
            new_fingerprint: "5f2c9a01...e1b4".into(),
            progress: "distributed 2/3, verified 1/3".into(),
            regions_total: 3,
            regions_distributed: 2,
            regions_verified: 1,
            regions: vec![
                RegionRotation {
                    region: "aws:us-east-1".into(),
                    wave: 1,
                    state: RegionRotationState::Verified as i32,
                    ..RegionRotation::default()
                },
                RegionRotation {
                    region: "gcp:us-central1".into(),
                    wave: 2,
                    state: RegionRotationState::Verifying as i32,
                    failures: 2,
                    last_error: "partner answered 401 unauthorized".into(),
                    ..RegionRotation::default()
                },
                RegionRotation {
                    region: "azure:westeurope".into(),
                    wave: 2,
                    state: RegionRotationState::Pending as i32,
                    ..RegionRotation::default()
                },
            ],
            current_wave: 2,
            wave_count: 2,
            concurrency: 8,
            max_attempts: 5,
            bake: Some(prost_types::Duration {
                seconds: 1800,
                nanos: 0,
            }),
            retirement: Retirement::FirstOf as i32,
            grace: Some(prost_types::Duration {
                seconds: 7 * 86_400,
                nanos: 0,
            }),
            failed_region: if state == RotationState::Failed {
                "gcp:us-central1".into()
            } else {
                String::new()
            },
            reason: if state == RotationState::Failed {
                "out of attempts".into()
            } else {
                String::new()
            },
            started_by: "ada".into(),
            etag: 42,
            ..Rotation::default()
        }
    }

    #[test]
    fn a_region_waiting_to_be_retried_says_until_when() {
        let mut r = rotation(RotationState::Distributing);
        r.retry_delay = Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        });
        r.regions[2].failures = 1;
        r.regions[2].last_error = "agent unreachable".into();
        r.regions[2].retry_at = Some(prost_types::Timestamp {
            seconds: 1_796_000_010,
            nanos: 0,
        });
        let text = rotation_block(&r);
        assert!(text.contains("5 attempts a region, retried after 10s"), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("azure:westeurope"))
            .unwrap_or_default();
        assert!(row.contains("PENDING, retry at "), "{row}");
        assert!(row.contains("agent unreachable"), "{row}");
        let view = RegionView::from(&r.regions[2]);
        assert!(
            view.retry_at.as_deref().is_some_and(|t| t.starts_with("2026-")),
            "{view:?}"
        );
        assert_eq!(RegionView::from(&r.regions[0]).retry_at, None);
    }

    #[test]
    fn a_rotation_shows_its_summary_and_a_row_per_region() {
        let text = rotation_block(&rotation(RotationState::Distributing));
        for want in [
            "ROTATION    riverflow-cred-3",
            "TILE        riverflow (partner-basic-auth)",
            "STATE       DISTRIBUTING, wave 2/2",
            "PROGRESS    distributed 2/3, verified 1/3",
            "VERSIONS    2 -> 3 (11aa22bb...ccdd -> 5f2c9a01...e1b4)",
            "RETIREMENT  first-of, grace 7d",
            "REGION            WAVE  STATE      FAILURES  LAST ERROR",
            "aws:us-east-1     1     VERIFIED   0",
            "gcp:us-central1   2     VERIFYING  2         partner answered 401 unauthorized",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert_eq!(
            one_line(&rotation(RotationState::Failed)),
            "riverflow-cred-3: FAILED in gcp:us-central1: out of attempts, distributed 2/3, verified 1/3"
        );
        let first = Rotation {
            from_version: 0,
            old_fingerprint: String::new(),
            ..rotation(RotationState::Completed)
        };
        assert!(rotation_block(&first).contains("0 -> 3 (none -> 5f2c9a01...e1b4)"));
    }

    #[test]
    fn watching_stops_at_promoted_or_an_end() {
        let cases = [
            (RotationState::Distributing, false, false),
            (RotationState::Promoting, false, false),
            (RotationState::Promoted, false, true),
            (RotationState::Completed, true, true),
            (RotationState::Failed, true, true),
            (RotationState::Cancelled, true, true),
        ];
        for (state, terminal, done) in cases {
            let r = rotation(state);
            assert_eq!((is_terminal(&r), watch_done(&r)), (terminal, done), "{state:?}");
        }
        assert!(next_step(&rotation(RotationState::Failed)).is_some_and(|s| s.contains("unchanged")));
        assert!(
            next_step(&rotation(RotationState::Promoted))
                .is_some_and(|s| s.contains("confirm-retired riverflow"))
        );
    }

    #[test]
    fn views_and_tables_of_credentials_show_fingerprints_only() {
        let c = Credential {
            id: "riverflow/partner-basic-auth/3".into(),
            tile_id: "riverflow".into(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            version: 3,
            fingerprint: "5f2c9a01...e1b4".into(),
            username: "tilewave".into(),
            stage: CredentialStage::Pending as i32,
            submitted_by: "ada".into(),
            submitted_at: Some(prost_types::Timestamp {
                seconds: 1_796_749_200,
                nanos: 0,
            }),
            ..Credential::default()
        };
        let table = credentials_table(std::slice::from_ref(&c));
        assert!(
            table.contains("riverflow  partner-basic-auth  3        PENDING  5f2c9a01...e1b4  tilewave  2026-12-08T17:00:00Z ada"),
            "{table}"
        );
        let v = serde_json::to_value(CredentialView::from(&c)).unwrap();
        assert_eq!(v["stage"], "PENDING");
        assert_eq!(v["kind"], "partner-basic-auth");
        assert_eq!(v["submitted_at"], "2026-12-08T17:00:00Z");
        assert_eq!(
            submitted(&c),
            "stored riverflow/partner-basic-auth/3 (version 3 for user tilewave): PENDING, fingerprint 5f2c9a01...e1b4\n\
             rotate to it:  tilewave creds rotate riverflow\n"
        );
        let r = rotation(RotationState::Promoted);
        let v = serde_json::to_value(RotationView::from(&r)).unwrap();
        assert_eq!(
            (v["state"].as_str(), v["etag"].as_i64()),
            (Some("PROMOTED"), Some(42))
        );
        assert_eq!(v["regions"][1]["last_error"], "partner answered 401 unauthorized");
        let t = rotations_table(&[r]);
        assert!(t.contains("riverflow-cred-3  riverflow  PROMOTED  2 -> 3"), "{t}");
    }

    #[test]
    fn schedules_and_rewraps_read_well() {
        let s = RotationSchedule {
            tile_id: "riverflow".into(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            every_days: 30,
            window_start: Some(tilewave_proto::common::v1::LocalTime { hour: 2, minute: 0 }),
            window_end: Some(tilewave_proto::common::v1::LocalTime { hour: 4, minute: 30 }),
            time_zone: "Europe/Berlin".into(),
            next_due: None,
            etag: 7,
        };
        let text = schedule_text(&s);
        assert!(text.contains("ROTATES   every 30 days"), "{text}");
        assert!(text.contains("WINDOW    02:00-04:30 Europe/Berlin"), "{text}");
        let v = RewrapView::new(
            &RewrapResponse {
                primary_kek_id: "dev-2".into(),
                rewrapped: 4,
                already_primary: 1,
            },
            true,
        );
        assert_eq!(
            rewrap_text(&v),
            "would re-wrap 4 secrets under the primary key-encryption key dev-2 (1 already under it)\n"
        );
    }
}
