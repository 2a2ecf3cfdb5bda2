//! The rotation's rules: credential versions, the happy path over three
//! waves, retries, failure, emergency, crash-resume, every (state, command)
//! pair of [`handle`], every (state, outcome) pair of [`apply`],
//! [`start_refusal`], the schedule, and a property over random outcomes.

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::schedule::{RotationSchedule, ScheduleError, next_rotation};
use super::*;

const T: Timestamp = Timestamp::constant(1_800_000_000, 0);

fn at(mins: i64) -> Timestamp {
    T.checked_add(SignedDuration::from_mins(mins)).unwrap()
}

fn waves() -> Vec<Vec<String>> {
    vec![
        vec!["aws:a1".into(), "gcp:a2".into()],
        vec!["aws:b1".into(), "gcp:b2".into(), "azure:b3".into()],
        vec!["aws:c1".into()],
    ]
}

fn spec(policy: Policy, emergency: bool) -> Spec {
    Spec {
        id: "rot-7".into(),
        tile: "riverflow".into(),
        from: Some(1),
        to: 2,
        waves: waves(),
        concurrency: 2,
        policy,
        emergency,
    }
}

fn rotation() -> Rotation {
    Rotation::new(spec(Policy::default(), false), T)
}

/// A tile with v1 CURRENT and v2 PENDING.
fn versions() -> Versions {
    let v = Versions::new("riverflow");
    let (v, one) = v.submit("sha256:one", at(-100), None).unwrap();
    let v = v.promote(one).unwrap();
    let (v, two) = v.submit("sha256:two", at(-10), None).unwrap();
    assert_eq!((one, two), (1, 2));
    v
}

// ---------------------------------------------------------------- versions

#[test]
fn versions_submit_promote_retire() {
    let v = versions();
    assert_eq!(v.current().map(|v| v.id), Some(1));
    assert_eq!(v.pending().map(|v| v.id), Some(2));
    let v = v.promote(2).unwrap();
    assert_eq!(v.current().map(|v| v.id), Some(2));
    assert_eq!(v.previous().map(|v| v.id), Some(1));
    assert!(v.pending().is_none());
    // Promoting again is a replayed step: nothing changes.
    assert_eq!(v.promote(2).unwrap(), v);
    // A third version's promotion retires the oldest PREVIOUS.
    let (v3, three) = v.submit("sha256:three", at(0), None).unwrap();
    let v3 = v3.promote(three).unwrap();
    assert_eq!(v3.get(1).unwrap().stage, Stage::Retired);
    assert_eq!(v3.previous().map(|v| v.id), Some(2));
    v3.check().unwrap();
    let v = v.retire(1).unwrap();
    assert_eq!(v.get(1).unwrap().stage, Stage::Retired);
    assert_eq!(v.retire(1).unwrap(), v);
    assert!(matches!(v.retire(2), Err(VersionError::WrongStage { .. })));
    assert!(matches!(v.promote(9), Err(VersionError::NoSuchVersion { .. })));
}

#[test]
fn submit_refusals_and_replacement() {
    let v = versions();
    let e = v.submit("sha256:new", at(0), Some(&rotation())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot submit a new credential for riverflow: rotation rot-7 is running; wait for it to \
         finish or cancel it with `tilewave creds cancel riverflow` first"
    );
    // A finished rotation does not hold the tile.
    let mut failed = rotation();
    failed.state = State::Failed {
        region: "aws:a1".into(),
        reason: "boom".into(),
    };
    assert!(v.submit("sha256:new", at(0), Some(&failed)).is_ok());
    assert!(matches!(
        v.submit("sha256:one", at(0), None),
        Err(VersionError::SameSecret { id: 1, .. })
    ));
    assert!(matches!(
        v.submit(" ", at(0), None),
        Err(VersionError::NoFingerprint { .. })
    ));
    // An unrotated pending version is replaced by a newer one.
    let (v, three) = v.submit("sha256:three", at(0), None).unwrap();
    assert_eq!(three, 3);
    assert_eq!(v.get(2).unwrap().stage, Stage::Retired);
    assert_eq!(v.pending().map(|p| p.id), Some(3));
    v.check().unwrap();
    let broken = Versions {
        versions: vec![v.versions[0].clone(), v.versions[0].clone()],
        ..v.clone()
    };
    assert!(matches!(
        broken.check(),
        Err(VersionError::TooMany { count: 2, .. })
    ));
    // A discarded pending version is retired; again changes nothing.
    let d = v.discard(3).unwrap();
    assert!(d.pending().is_none());
    assert_eq!(d.discard(3).unwrap(), d);
}

// ------------------------------------------------------------- a simulator

/// How the agents answer one issued region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Fail,
    /// The service crashes after recording the intent: no answer.
    Lost,
}

/// A service driving a rotation: decides, records intents, answers, and
/// applies the effects to the versions.
struct Sim {
    r: Rotation,
    v: Versions,
    now: Timestamp,
    decisions: Vec<Decision>,
    effects: Vec<Effect>,
    confirm: bool,
    /// What the service stored after each accepted outcome.
    stored: Vec<(Rotation, Versions, Timestamp)>,
}

impl Sim {
    fn new(r: Rotation) -> Self {
        Self {
            r,
            v: versions(),
            now: T,
            decisions: vec![],
            effects: vec![],
            confirm: false,
            stored: vec![],
        }
    }

    fn apply(&mut self, o: Outcome) -> Result<(), Refused> {
        let before = self.r.clone();
        let t = apply(&self.r, o.clone(), self.now)?;
        check_step(&before, &t, &o);
        for e in &t.effects {
            match e {
                Effect::PromoteVersion(id) => self.v = self.v.promote(*id).unwrap(),
                Effect::RetireVersion(id) => self.v = self.v.retire(*id).unwrap(),
                Effect::Withdraw { .. } | Effect::CredentialFailedEvent { .. } => {}
            }
        }
        self.v.check().unwrap();
        self.effects.extend(t.effects);
        self.r = t.rotation;
        self.stored.push((self.r.clone(), self.v.clone(), self.now));
        Ok(())
    }

    /// One decision carried out; false when done.
    fn step(&mut self, answer: &mut dyn FnMut(&str, Intent) -> Answer) -> bool {
        let d = decide(&self.r, self.now);
        assert_eq!(d, decide(&self.r, self.now), "decide is deterministic");
        self.decisions.push(d.clone());
        match d {
            Decision::Install { regions } | Decision::Verify { regions } => {
                let intent = if matches!(self.decisions.last(), Some(Decision::Install { .. })) {
                    Intent::Install
                } else {
                    Intent::Verify
                };
                self.apply(Outcome::IntentRecorded {
                    regions: regions.clone(),
                    intent,
                })
                .unwrap();
                // Recording the intent does not change the decision.
                assert_eq!(decide(&self.r, self.now), *self.decisions.last().unwrap());
                for region in regions {
                    let o = match (answer(&region, intent), intent) {
                        (Answer::Lost, _) => break,
                        (Answer::Ok, Intent::Install) => Outcome::Installed { region },
                        (Answer::Ok, Intent::Verify) => Outcome::Verified { region },
                        (Answer::Fail, Intent::Install) => Outcome::InstallFailed {
                            region,
                            error: "connection refused".into(),
                        },
                        (Answer::Fail, Intent::Verify) => Outcome::VerifyFailed {
                            region,
                            error: "401 Unauthorized".into(),
                        },
                    };
                    self.apply(o).unwrap();
                    if self.r.state.is_terminal() {
                        break;
                    }
                }
            }
            Decision::WaitUntil(t) => {
                assert!(t > self.now, "a wait is in the future");
                if self.confirm {
                    let t = handle(&self.r, &Command::ConfirmOldRetired, self.now).unwrap();
                    self.r = t.rotation;
                    self.confirm = false;
                } else {
                    self.now = t;
                }
            }
            Decision::AwaitConfirmation => {
                let t = handle(&self.r, &Command::ConfirmOldRetired, self.now).unwrap();
                self.r = t.rotation;
            }
            Decision::Promote => {
                assert!(self.r.all_verified());
                self.apply(Outcome::Promoted).unwrap();
            }
            Decision::NotifyPartner => self.apply(Outcome::PartnerNotified).unwrap(),
            Decision::Retire => self.apply(Outcome::Retired).unwrap(),
            Decision::Withdraw { .. } => self.apply(Outcome::Withdrawn).unwrap(),
            Decision::Done => return false,
            Decision::Inconsistent(why) => panic!("inconsistent: {why}"),
        }
        true
    }

    fn run(&mut self, answer: &mut dyn FnMut(&str, Intent) -> Answer) {
        for _ in 0..1000 {
            if !self.step(answer) {
                return;
            }
        }
        panic!("the rotation did not finish: {:?}", self.r.state);
    }

    fn count(&self, f: impl Fn(&Decision) -> bool) -> usize {
        self.decisions.iter().filter(|d| f(d)).count()
    }
}

/// The invariants of one accepted outcome: a region becomes VERIFIED only
/// by a `Verified` answer to a recorded verification; a promotion only when
/// every region verified; at most one CURRENT version.
fn check_step(before: &Rotation, t: &Transition, o: &Outcome) {
    for (name, p) in &t.rotation.regions {
        let was = &before.regions[name].step;
        if p.step == RegionStep::Verified && *was != RegionStep::Verified {
            assert_eq!(
                *was,
                RegionStep::Verifying,
                "{name} verified without a recorded verify"
            );
            assert_eq!(*o, Outcome::Verified { region: name.clone() });
        }
    }
    if t.effects.iter().any(|e| matches!(e, Effect::PromoteVersion(_))) {
        assert!(before.all_verified(), "promoted before every region verified");
    }
    if matches!(
        t.rotation.state,
        State::Promoting | State::Promoted { .. } | State::Completed
    ) {
        assert!(t.rotation.all_verified());
    }
}

// -------------------------------------------------------------- happy path

#[test]
fn happy_path_over_three_waves() {
    let mut sim = Sim::new(rotation());
    sim.run(&mut |_, _| Answer::Ok);
    assert_eq!(sim.r.state, State::Completed);
    // Wave 1: 2 regions (one decision); wave 2: 3 regions at concurrency 2
    // (two decisions); wave 3: 1 region.
    let installs: Vec<usize> = sim
        .decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Install { regions } => Some(regions.len()),
            _ => None,
        })
        .collect();
    assert_eq!(installs, vec![2, 2, 1, 1]);
    assert_eq!(sim.count(|d| matches!(d, Decision::Verify { .. })), 4);
    // Two bakes between waves, then the grace period.
    let waits: Vec<Timestamp> = sim
        .decisions
        .iter()
        .filter_map(|d| match d {
            Decision::WaitUntil(t) => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 3);
    assert_eq!(waits[0], at(30));
    assert_eq!(waits[1], at(60));
    assert_eq!(waits[2], later(at(60), DEFAULT_GRACE));
    assert_eq!(sim.count(|d| *d == Decision::Promote), 1);
    assert_eq!(sim.count(|d| *d == Decision::NotifyPartner), 1);
    assert_eq!(sim.count(|d| *d == Decision::Retire), 1);
    assert_eq!(sim.count(|d| *d == Decision::Done), 1);
    assert_eq!(
        sim.effects,
        vec![Effect::PromoteVersion(2), Effect::RetireVersion(1)]
    );
    assert_eq!(sim.v.current().map(|v| v.id), Some(2));
    assert_eq!(sim.v.get(1).unwrap().stage, Stage::Retired);
    assert!(sim.v.previous().is_none() && sim.v.pending().is_none());
    assert_eq!(sim.r.finished_at, Some(later(at(60), DEFAULT_GRACE)));
    assert_eq!(sim.r.progress(), "distributed 6/6, verified 6/6");
}

#[test]
fn seventy_regions_in_waves_of_the_catalog() {
    // Every region of the catalog: canaries first, then waves of 20.
    let ids = crate::regions::RegionCatalog::builtin().representative(70);
    assert_eq!(ids.len(), 70);
    let mut waves = vec![ids[..3].to_vec()];
    waves.extend(ids[3..].chunks(20).map(<[String]>::to_vec));
    let mut s = spec(Policy::default(), false);
    s.waves = waves;
    s.concurrency = 8;
    let mut sim = Sim::new(Rotation::new(s, T));
    let mut held = None;
    while sim.step(&mut |_, _| Answer::Ok) {
        if held.is_none() && sim.r.distributed() >= 12 && sim.r.verified() >= 3 {
            held = Some(start_refusal(Some(&sim.r)).unwrap_err().to_string());
        }
    }
    assert_eq!(sim.r.state, State::Completed);
    let issued = |install: bool| -> usize {
        sim.decisions
            .iter()
            .map(|d| match d {
                Decision::Install { regions } if install => regions.len(),
                Decision::Verify { regions } if !install => regions.len(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!((issued(true), issued(false)), (70, 70));
    // Four bakes between five waves, then the grace period.
    assert_eq!(sim.count(|d| matches!(d, Decision::WaitUntil(_))), 5);
    let held = held.unwrap();
    assert!(
        held.contains("rotation rot-7 holds it (DISTRIBUTING wave 2 of 5; distributed"),
        "{held}"
    );
    assert!(held.contains("/70, verified 3/70)"), "{held}");
}

#[test]
fn emergency_has_no_bake_waits() {
    let policy = Policy {
        retirement: Retirement::OnConfirmation,
        ..Policy::default()
    };
    let mut sim = Sim::new(Rotation::new(spec(policy, true), T));
    sim.run(&mut |_, _| Answer::Ok);
    assert_eq!(sim.r.state, State::Completed);
    assert_eq!(sim.count(|d| matches!(d, Decision::WaitUntil(_))), 0);
    assert_eq!(sim.count(|d| *d == Decision::AwaitConfirmation), 1);
    assert_eq!(sim.now, T, "no domain time passed");
}

#[test]
fn first_credential_completes_at_promotion() {
    let mut s = spec(Policy::default(), false);
    s.from = None;
    let mut sim = Sim::new(Rotation::new(s, T));
    sim.v = Versions::new("riverflow")
        .submit("sha256:one", T, None)
        .unwrap()
        .0;
    sim.r.to = 1;
    sim.run(&mut |_, _| Answer::Ok);
    assert_eq!(sim.r.state, State::Completed);
    assert_eq!(sim.effects, vec![Effect::PromoteVersion(1)]);
    assert_eq!(sim.count(|d| *d == Decision::NotifyPartner), 0);
}

#[test]
fn confirmation_retires_before_the_grace_ends() {
    let mut sim = Sim::new(rotation());
    sim.confirm = false;
    let mut promoted = false;
    while sim.step(&mut |_, _| Answer::Ok) {
        if matches!(sim.r.state, State::Promoted { notified: true, .. }) && !promoted {
            promoted = true;
            sim.confirm = true;
        }
    }
    assert_eq!(sim.r.state, State::Completed);
    // Retired on the confirmation, long before the 7 days.
    assert_eq!(sim.r.finished_at, Some(at(60)));
}

// ------------------------------------------------------ retries and failure

#[test]
fn retries_under_budget_then_succeed() {
    let mut fails = std::collections::BTreeMap::from([
        (("gcp:b2".to_owned(), Intent::Install), 2),
        (("aws:c1".to_owned(), Intent::Verify), 1),
    ]);
    let mut sim = Sim::new(rotation());
    sim.run(
        &mut |region, intent| match fails.get_mut(&(region.to_owned(), intent)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Answer::Fail
            }
            _ => Answer::Ok,
        },
    );
    assert_eq!(sim.r.state, State::Completed);
    assert_eq!(sim.r.regions["gcp:b2"].failures, 2);
    assert_eq!(sim.r.regions["aws:c1"].failures, 1);
    assert_eq!(sim.r.regions["aws:c1"].last_error, "401 Unauthorized");
}

#[test]
fn a_failed_verify_goes_back_to_installed() {
    let mut r = rotation();
    r.regions.get_mut("aws:a1").unwrap().step = RegionStep::Verifying;
    let t = apply(
        &r,
        Outcome::VerifyFailed {
            region: "aws:a1".into(),
            error: "401".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.rotation.regions["aws:a1"].step, RegionStep::Installed);
    assert!(t.effects.is_empty());
    assert_eq!(
        t.summary,
        "verification of v2 failed in aws:a1 (attempt 1 of 3, retrying): \"401\""
    );
}

#[test]
fn retry_delays_double_up_to_their_bound() {
    let table = [
        (SignedDuration::from_secs(10), 1, 10),
        (SignedDuration::from_secs(10), 2, 20),
        (SignedDuration::from_secs(10), 3, 40),
        (SignedDuration::from_secs(10), 6, 300),
        (SignedDuration::from_secs(10), 99, 300),
        (SignedDuration::ZERO, 3, 0),
        (SignedDuration::from_mins(9), 2, 540),
        (SignedDuration::from_secs(-5), 2, 0),
    ];
    for (retry_delay, failures, secs) in table {
        let policy = Policy {
            retry_delay,
            ..Policy::default()
        };
        assert_eq!(
            policy.retry_after(failures),
            SignedDuration::from_secs(secs),
            "{retry_delay} after {failures} failures"
        );
    }
}

#[test]
fn a_failed_region_waits_for_its_retry_and_is_then_issued_again() {
    let secs = |n: i64| T.checked_add(SignedDuration::from_secs(n)).unwrap();
    // Wave 1 is aws:a1 and gcp:a2 (concurrency 2); aws:a1's install fails.
    let mut r = rotation();
    for region in ["aws:a1", "gcp:a2"] {
        r.regions.get_mut(region).unwrap().step = RegionStep::Installing;
    }
    let failed = |r: &Rotation, now| {
        apply(
            r,
            Outcome::InstallFailed {
                region: "aws:a1".into(),
                error: "connection refused".into(),
            },
            now,
        )
        .unwrap()
        .rotation
    };
    let r = failed(&r, T);
    let a1 = &r.regions["aws:a1"];
    assert_eq!((a1.step.clone(), a1.failures), (RegionStep::Pending, 1));
    assert_eq!(a1.retry_at, Some(secs(10)));
    // gcp:a2 is still in flight: re-issued alone, aws:a1 is not due.
    assert_eq!(
        decide(&r, T),
        Decision::Install {
            regions: vec!["gcp:a2".into()]
        }
    );
    let mut r = r;
    r.regions.get_mut("gcp:a2").unwrap().step = RegionStep::Installed;
    assert_eq!(
        decide(&r, secs(9)),
        Decision::WaitUntil(secs(10)),
        "nothing else to do"
    );
    assert_eq!(
        decide(&r, secs(10)),
        Decision::Install {
            regions: vec!["aws:a1".into()]
        }
    );
    // Issued again: the wait is over; a second failure waits twice as long.
    let issued = apply(
        &r,
        Outcome::IntentRecorded {
            regions: vec!["aws:a1".into()],
            intent: Intent::Install,
        },
        secs(10),
    )
    .unwrap()
    .rotation;
    assert_eq!(issued.regions["aws:a1"].retry_at, None);
    let r = failed(&issued, secs(11));
    assert_eq!(r.regions["aws:a1"].retry_at, Some(secs(31)));
    assert_eq!(decide(&r, secs(30)), Decision::WaitUntil(secs(31)));
    // With no delay the retry is at once, as before.
    let mut quick = rotation();
    quick.policy.retry_delay = SignedDuration::ZERO;
    quick.regions.get_mut("aws:a1").unwrap().step = RegionStep::Installing;
    let quick = failed(&quick, T);
    assert_eq!(quick.regions["aws:a1"].retry_at, None);
    assert_eq!(
        decide(&quick, T),
        Decision::Install {
            regions: vec!["aws:a1".into(), "gcp:a2".into()]
        }
    );
}

#[test]
fn exhausted_budget_fails_without_promotion() {
    let mut sim = Sim::new(rotation());
    sim.run(&mut |region, intent| {
        if region == "gcp:b2" && intent == Intent::Verify {
            Answer::Fail
        } else {
            Answer::Ok
        }
    });
    let State::Failed { region, reason } = &sim.r.state else {
        panic!("{:?}", sim.r.state);
    };
    assert_eq!(region, "gcp:b2");
    assert_eq!(
        reason,
        "verification failed in gcp:b2 after 3 of 3 attempts; last error: \"401 Unauthorized\""
    );
    assert_eq!(
        sim.r.regions["gcp:b2"].step,
        RegionStep::Failed {
            attempts: 3,
            last_error: "401 Unauthorized".into()
        }
    );
    assert!(!sim.effects.iter().any(|e| matches!(e, Effect::PromoteVersion(_))));
    assert_eq!(sim.count(|d| *d == Decision::Promote), 0);
    // The pending version is withdrawn from every region it reached (wave 1
    // and wave 2), and the event names the region.
    let withdraw = Effect::Withdraw {
        regions: vec![
            "aws:a1".into(),
            "gcp:a2".into(),
            "aws:b1".into(),
            "gcp:b2".into(),
            "azure:b3".into(),
        ],
    };
    assert!(sim.effects.contains(&withdraw));
    let message = sim
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::CredentialFailedEvent { region, message } if region == "gcp:b2" => Some(message),
            _ => None,
        })
        .unwrap();
    assert!(message.contains("v1 stays CURRENT everywhere"), "{message}");
    assert!(message.contains("`tilewave creds rotate riverflow`"), "{message}");
    // CURRENT untouched; the version stays PENDING for another rotation.
    assert_eq!(sim.v.current().map(|v| v.id), Some(1));
    assert_eq!(sim.v.pending().map(|v| v.id), Some(2));
    // decide re-issued the withdrawal until acknowledged, then done.
    assert_eq!(sim.count(|d| matches!(d, Decision::Withdraw { .. })), 1);
    assert!(sim.r.withdrawn);
    assert_eq!(decide(&sim.r, sim.now), Decision::Done);
}

#[test]
fn install_failure_exhausting_budget_in_first_region() {
    let mut r = rotation();
    r.policy.max_attempts = 1;
    r.regions.get_mut("aws:a1").unwrap().step = RegionStep::Installing;
    let t = apply(
        &r,
        Outcome::InstallFailed {
            region: "aws:a1".into(),
            error: "timeout".into(),
        },
        T,
    )
    .unwrap();
    assert!(matches!(t.rotation.state, State::Failed { .. }));
    assert_eq!(
        t.effects[1],
        Effect::Withdraw {
            regions: vec!["aws:a1".into()]
        }
    );
}

// ------------------------------------------------------------ crash-resume

#[test]
fn crash_after_every_intent_resumes_without_skipping() {
    // Every issued region loses its first answer (a crash after the intent
    // was recorded); the re-issue answers.
    let mut seen = std::collections::BTreeSet::new();
    let mut sim = Sim::new(rotation());
    sim.run(&mut |region, intent| {
        if seen.insert((region.to_owned(), intent)) {
            Answer::Lost
        } else {
            Answer::Ok
        }
    });
    assert_eq!(sim.r.state, State::Completed);
    assert_eq!(sim.v.current().map(|v| v.id), Some(2));
    for p in sim.r.regions.values() {
        assert_eq!(p.failures, 0);
    }
}

#[test]
fn resuming_from_every_stored_state_completes_without_skipping() {
    // A run with lost answers and a retried failure; then a crash after
    // every stored write, resumed by a new service from what was stored.
    let mut n = 0;
    let mut failed_once = false;
    let mut sim = Sim::new(rotation());
    sim.run(&mut |region, intent| {
        n += 1;
        match (n % 4, region, intent) {
            (0, _, _) => Answer::Lost,
            (_, "azure:b3", Intent::Verify) if !failed_once => {
                failed_once = true;
                Answer::Fail
            }
            _ => Answer::Ok,
        }
    });
    assert!(failed_once);
    assert_eq!(sim.r.state, State::Completed);
    assert!(sim.stored.len() > 20);
    for (r, v, now) in &sim.stored {
        let mut resumed = Sim::new(r.clone());
        resumed.v = v.clone();
        resumed.now = *now;
        // check_step (in every apply) holds the invariants on the way.
        resumed.run(&mut |_, _| Answer::Ok);
        assert!(
            matches!(resumed.r.state, State::Completed | State::Failed { .. }),
            "{:?}",
            resumed.r.state
        );
        if resumed.r.state == State::Completed {
            assert_eq!(resumed.v.current().map(|v| v.id), Some(2));
        }
    }
}

#[test]
fn in_flight_regions_are_reissued_first_and_count_against_concurrency() {
    let mut r = rotation();
    r.state = State::Distributing { wave: 1 };
    for n in ["aws:a1", "gcp:a2"] {
        r.regions.get_mut(n).unwrap().step = RegionStep::Verified;
    }
    r.regions.get_mut("gcp:b2").unwrap().step = RegionStep::Installing;
    assert_eq!(
        decide(&r, T),
        Decision::Install {
            regions: vec!["aws:b1".into(), "gcp:b2".into()]
        }
    );
    // Not ready (bake): the recorded install is still re-issued alone.
    r.wave_ready_at = Some(at(10));
    assert_eq!(
        decide(&r, T),
        Decision::Install {
            regions: vec!["gcp:b2".into()]
        }
    );
    r.regions.get_mut("gcp:b2").unwrap().step = RegionStep::Installed;
    assert_eq!(decide(&r, T), Decision::WaitUntil(at(10)));
    // A verification in flight with pending regions: re-issued.
    r.regions.get_mut("gcp:b2").unwrap().step = RegionStep::Verifying;
    r.concurrency = 1;
    assert_eq!(
        decide(&r, at(10)),
        Decision::Verify {
            regions: vec!["gcp:b2".into()]
        }
    );
}

#[test]
fn inconsistent_rotations_are_not_acted_on() {
    let mut r = rotation();
    r.state = State::Promoting;
    assert!(matches!(decide(&r, T), Decision::Inconsistent(_)));
    r.state = State::Distributing { wave: 5 };
    assert!(matches!(decide(&r, T), Decision::Inconsistent(_)));
    let mut r = rotation();
    for n in ["aws:a1", "gcp:a2"] {
        r.regions.get_mut(n).unwrap().step = RegionStep::Verified;
    }
    assert!(matches!(decide(&r, T), Decision::Inconsistent(_)));
}

// ----------------------------------------------------- commands, per state

/// A rotation in each state, by name.
fn in_states() -> Vec<(&'static str, Rotation)> {
    let fresh = rotation();
    let mut touched = rotation();
    touched.regions.get_mut("aws:a1").unwrap().step = RegionStep::Installed;
    let mut all = rotation();
    for p in all.regions.values_mut() {
        p.step = RegionStep::Verified;
    }
    let promoting = Rotation {
        state: State::Promoting,
        ..all.clone()
    };
    let promoted = Rotation {
        state: State::Promoted {
            at: T,
            notified: true,
            confirmed: false,
        },
        ..all.clone()
    };
    let completed = Rotation {
        state: State::Completed,
        ..all
    };
    let failed = Rotation {
        state: State::Failed {
            region: "aws:a1".into(),
            reason: "boom".into(),
        },
        ..touched.clone()
    };
    let cancelled = Rotation {
        state: State::Cancelled { reason: "no".into() },
        ..touched.clone()
    };
    vec![
        ("distributing, nothing issued", fresh),
        ("distributing, one installed", touched),
        ("promoting", promoting),
        ("promoted", promoted),
        ("completed", completed),
        ("failed", failed),
        ("cancelled", cancelled),
    ]
}

#[test]
fn every_state_and_command() {
    use Refusal as R;
    type Want = Result<&'static str, Refusal>;
    let table: [(&str, Want, Want); 7] = [
        (
            "distributing, nothing issued",
            Ok("CANCELLED"),
            Err(R::ConfirmBeforePromotion),
        ),
        (
            "distributing, one installed",
            Ok("CANCELLED"),
            Err(R::ConfirmBeforePromotion),
        ),
        (
            "promoting",
            Err(R::CancelWhilePromoting),
            Err(R::ConfirmBeforePromotion),
        ),
        ("promoted", Err(R::CancelAfterPromotion), Ok("PROMOTED")),
        ("completed", Err(R::Finished), Err(R::Finished)),
        ("failed", Err(R::Finished), Err(R::Finished)),
        ("cancelled", Err(R::Finished), Err(R::Finished)),
    ];
    let states = in_states();
    assert_eq!(states.len(), table.len());
    for ((name, r), (row, cancel, confirm)) in states.iter().zip(table) {
        assert_eq!(*name, row);
        let commands = [
            (
                Command::Cancel {
                    reason: "partner asked".into(),
                },
                cancel,
            ),
            (Command::ConfirmOldRetired, confirm),
        ];
        for (command, want) in commands {
            let got = handle(r, &command, at(5));
            match (got, want) {
                (Ok(t), Ok(state)) => assert_eq!(t.rotation.state.name(), state, "{name} {command:?}"),
                (Err(e), Err(reason)) => assert_eq!(e.reason, reason, "{name} {command:?}"),
                (got, want) => panic!("{name} {command:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn cancel_withdraws_what_was_installed() {
    let states = in_states();
    let cancel = Command::Cancel {
        reason: "partner asked".into(),
    };
    let t = handle(&states[0].1, &cancel, at(5)).unwrap();
    assert!(t.effects.is_empty());
    assert!(t.rotation.withdrawn);
    assert_eq!(decide(&t.rotation, at(5)), Decision::Done);
    let t = handle(&states[1].1, &cancel, at(5)).unwrap();
    assert_eq!(
        t.effects,
        vec![Effect::Withdraw {
            regions: vec!["aws:a1".into()]
        }]
    );
    assert!(!t.effects.iter().any(|e| matches!(e, Effect::PromoteVersion(_))));
    assert_eq!(
        t.summary,
        "cancelled (distributed 1/6, verified 0/6): \"partner asked\"; v2 is withdrawn from 1 regions, \
         the current credential is untouched"
    );
    assert_eq!(
        decide(&t.rotation, at(5)),
        Decision::Withdraw {
            regions: vec!["aws:a1".into()]
        }
    );
    assert_eq!(t.rotation.finished_at, Some(at(5)));
}

#[test]
fn refusal_messages_say_what_to_do() {
    let states = in_states();
    let cancel = Command::Cancel { reason: "x".into() };
    let e = handle(&states[3].1, &cancel, T).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot cancel rotation rot-7 of riverflow: the new credential v2 is already current \
         everywhere; confirm the partner removed the old one with `tilewave creds confirm-retired \
         riverflow`, or rotate again with `tilewave creds rotate riverflow`"
    );
    let e = handle(&states[1].1, &Command::ConfirmOldRetired, T).unwrap_err();
    assert_eq!(
        e.to_string(),
        "confirming retirement before promotion: rotation rot-7 of riverflow is DISTRIBUTING wave 1 \
         of 3 and v2 is not current yet (distributed 1/6, verified 0/6); every region still calls \
         the partner with the old credential, so the partner must keep it; confirm once the \
         rotation is PROMOTED"
    );
    let e = handle(&states[5].1, &cancel, T).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot cancel rotation rot-7 of riverflow: it is FAILED: boom (finished); the old \
         credential is still current; start a new rotation with `tilewave creds rotate riverflow`"
    );
    let e = handle(&states[4].1, &Command::ConfirmOldRetired, T).unwrap_err();
    assert!(
        e.to_string().contains("the old credential is already retired"),
        "{e}"
    );
    // Under a grace-only policy the confirmation is not used.
    let mut r = states[3].1.clone();
    r.policy.retirement = Retirement::AfterGrace(SignedDuration::from_hours(24));
    let e = handle(&r, &Command::ConfirmOldRetired, T).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "rotation rot-7 of riverflow retires the old credential when its grace period ends ({}), \
             not on the partner's confirmation; nothing to confirm",
            at(24 * 60)
        )
    );
}

// ------------------------------------------------------------ start refusal

#[test]
fn start_refusal_names_the_rotation_holding_the_tile() {
    assert!(start_refusal(None).is_ok());
    let mut r = rotation();
    r.state = State::Distributing { wave: 1 };
    let names = ["aws:a1", "gcp:a2", "aws:b1"];
    for n in names {
        r.regions.get_mut(n).unwrap().step = RegionStep::Verified;
    }
    r.regions.get_mut("gcp:b2").unwrap().step = RegionStep::Installed;
    let e = start_refusal(Some(&r)).unwrap_err();
    assert_eq!(e.reason, Refusal::Held);
    assert_eq!(
        e.to_string(),
        "cannot start a rotation of riverflow: rotation rot-7 holds it (DISTRIBUTING wave 2 of 3; \
         distributed 4/6, verified 3/6); wait for it to finish or cancel it with `tilewave creds \
         cancel riverflow`"
    );
    let states = in_states();
    let holds: Vec<bool> = states
        .iter()
        .map(|(_, r)| start_refusal(Some(r)).is_err())
        .collect();
    assert_eq!(holds, vec![true, true, true, true, false, false, false]);
    let e = start_refusal(Some(&states[3].1)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("confirm the partner removed it with `tilewave creds confirm-retired riverflow`"),
        "{e}"
    );
}

// -------------------------------------------------------- outcomes per state

#[test]
fn every_state_and_outcome() {
    let r1 = "aws:a1".to_owned();
    let outcomes = [
        Outcome::IntentRecorded {
            regions: vec![r1.clone()],
            intent: Intent::Install,
        },
        Outcome::Installed { region: r1.clone() },
        Outcome::InstallFailed {
            region: r1.clone(),
            error: "e".into(),
        },
        Outcome::Verified { region: r1.clone() },
        Outcome::VerifyFailed {
            region: r1.clone(),
            error: "e".into(),
        },
        Outcome::Promoted,
        Outcome::PartnerNotified,
        Outcome::Retired,
        Outcome::Withdrawn,
    ];
    // Accepted outcomes per state (the rest are refused).
    let accepted: [(&str, &[usize]); 7] = [
        ("distributing, nothing issued", &[0]),
        // aws:a1 is INSTALLED: no intent of an install, no answer.
        ("distributing, one installed", &[]),
        ("promoting", &[5]),
        // Notified already; retirement not due at T + 5 min.
        ("promoted", &[]),
        ("completed", &[]),
        ("failed", &[8]),
        ("cancelled", &[8]),
    ];
    for ((name, r), (row, ok)) in in_states().iter().zip(accepted) {
        assert_eq!(*name, row);
        for (i, o) in outcomes.iter().enumerate() {
            let got = apply(r, o.clone(), at(5));
            assert_eq!(got.is_ok(), ok.contains(&i), "{name}: {o:?} gave {got:?}");
            if let Err(e) = got {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn stale_and_early_outcomes_change_nothing() {
    let r = rotation();
    let e = apply(
        &r,
        Outcome::Verified {
            region: "aws:a1".into(),
        },
        T,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "\"aws:a1\" of rotation rot-7 is PENDING: verified in \"aws:a1\" does not answer it (a stale \
         or repeated answer); nothing changed"
    );
    let e = apply(
        &r,
        Outcome::IntentRecorded {
            regions: vec!["aws:c1".into()],
            intent: Intent::Install,
        },
        T,
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        Refusal::NotInWave {
            region: "aws:c1".into(),
            wave: 1
        }
    );
    let e = apply(
        &r,
        Outcome::Installed {
            region: "mars:x".into(),
        },
        T,
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        Refusal::NoSuchRegion {
            region: "mars:x".into()
        }
    );
    // Retirement before the grace period ends, without confirmation.
    let promoted = &in_states()[3].1;
    let e = apply(promoted, Outcome::Retired, at(5)).unwrap_err();
    assert_eq!(
        e.reason,
        Refusal::RetirementNotDue {
            until: Some(later(T, DEFAULT_GRACE))
        }
    );
    assert!(apply(promoted, Outcome::Retired, later(T, DEFAULT_GRACE)).is_ok());
}

// ---------------------------------------------------------------- property

fn answer_of(op: u8) -> Answer {
    match op % 6 {
        0 => Answer::Lost,
        1 => Answer::Fail,
        _ => Answer::Ok,
    }
}

proptest! {
    /// Whatever the agents answer, lose, or repeat, and whatever stale
    /// outcomes arrive: promotion only after every region verified, a
    /// region verified only by a verify answer, at most one CURRENT
    /// version, and the rotation always ends (completed or failed) once
    /// the agents answer again (after `ops`, every answer is a success).
    #[test]
    fn random_outcomes_keep_the_invariants(
        ops in proptest::collection::vec(any::<u8>(), 1..200),
        stale in proptest::collection::vec((0u8..9, 0usize..6), 0..40),
        emergency in any::<bool>(),
        concurrency in 1usize..4,
    ) {
        let mut s = spec(Policy::default(), emergency);
        s.concurrency = concurrency;
        let mut sim = Sim::new(Rotation::new(s, T));
        let names: Vec<String> = waves().into_iter().flatten().collect();
        let mut i = 0usize;
        let mut stale = stale.into_iter();
        for _ in 0..2000 {
            // Now and then a stale or repeated outcome arrives.
            if let Some((kind, region)) = i.is_multiple_of(3).then(|| stale.next()).flatten() {
                let region = names[region % names.len()].clone();
                let o = match kind {
                    0 => Outcome::Installed { region },
                    1 => Outcome::Verified { region },
                    2 => Outcome::InstallFailed { region, error: "late".into() },
                    3 => Outcome::VerifyFailed { region, error: "late".into() },
                    4 => Outcome::Promoted,
                    5 => Outcome::PartnerNotified,
                    6 => Outcome::Retired,
                    7 => Outcome::Withdrawn,
                    _ => Outcome::IntentRecorded { regions: vec![region], intent: Intent::Verify },
                };
                let _ = sim.apply(o);
            }
            let more = sim.step(&mut |_, _| {
                let a = ops.get(i).map_or(Answer::Ok, |op| answer_of(*op));
                i += 1;
                a
            });
            prop_assert!(sim.v.versions.iter().filter(|v| v.stage == Stage::Current).count() <= 1);
            if !more {
                break;
            }
        }
        prop_assert!(sim.r.state.is_terminal(), "stuck in {:?}", sim.r.state);
        match &sim.r.state {
            State::Completed => {
                prop_assert!(sim.r.all_verified());
                prop_assert_eq!(sim.v.current().map(|v| v.id), Some(2));
            }
            State::Failed { .. } => {
                prop_assert_eq!(sim.v.current().map(|v| v.id), Some(1));
                prop_assert!(!sim.effects.iter().any(|e| matches!(e, Effect::PromoteVersion(_))));
                let event = sim.effects.iter().any(|e| matches!(e, Effect::CredentialFailedEvent { .. }));
                prop_assert!(event, "no CREDENTIAL_FAILED event");
            }
            other => prop_assert!(false, "ended {:?}", other),
        }
    }
}

// ---------------------------------------------------------------- schedule

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn schedule(every_days: u32, start: (i8, i8), end: (i8, i8), tz: &str) -> RotationSchedule {
    RotationSchedule {
        every_days,
        window_start: Time::constant(start.0, start.1, 0, 0),
        window_end: Time::constant(end.0, end.1, 0, 0),
        tz: tz.into(),
    }
}

#[test]
fn next_rotation_table() {
    let berlin = schedule(30, (2, 0), (4, 0), "Europe/Berlin");
    let ny_night = schedule(1, (22, 0), (2, 0), "America/New_York");
    let utc = schedule(7, (9, 0), (17, 0), "UTC");
    let ny_fold = schedule(1, (1, 0), (1, 30), "America/New_York");
    let xmas = (ts("2026-12-20T00:00:00Z"), ts("2027-01-04T00:00:00Z"));
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        &str,
        &RotationSchedule,
        &str,
        Vec<(Timestamp, Timestamp)>,
        &str,
        Option<&str>,
    )> = vec![
        // Due in the middle of the window: at once.
        (
            "inside",
            &utc,
            "2026-03-01T12:00:00Z",
            vec![],
            "2026-03-01T00:00:00Z",
            Some("2026-03-08T12:00:00Z"),
        ),
        // Due after the window: the next day's start.
        (
            "after",
            &utc,
            "2026-03-01T18:00:00Z",
            vec![],
            "2026-03-01T00:00:00Z",
            Some("2026-03-09T09:00:00Z"),
        ),
        // Now later than due: from now.
        (
            "late",
            &utc,
            "2026-03-01T12:00:00Z",
            vec![],
            "2026-04-01T08:00:00Z",
            Some("2026-04-01T09:00:00Z"),
        ),
        // Berlin, 30 local days after 2 Mar 02:30 CET is 1 Apr 02:30 CEST
        // (after the 29 Mar change): 00:30 UTC, not 01:30.
        (
            "dst",
            &berlin,
            "2026-03-02T01:30:00Z",
            vec![],
            "2026-03-02T00:00:00Z",
            Some("2026-04-01T00:30:00Z"),
        ),
        // On the change's night the window 02:00-04:00 starts at 03:00 CEST
        // (02:00 does not exist): 01:00 UTC.
        (
            "gap",
            &berlin,
            "2026-02-27T00:00:00Z",
            vec![],
            "2026-03-28T12:00:00Z",
            Some("2026-03-29T01:00:00Z"),
        ),
        // New York falls back on 1 Nov 2026: 01:00 happens twice; the
        // window 01:00-01:30 is its first (EDT) occurrence, 05:00 UTC.
        (
            "fold",
            &ny_fold,
            "2026-10-31T04:00:00Z",
            vec![],
            "2026-10-31T00:00:00Z",
            Some("2026-11-01T05:00:00Z"),
        ),
        // And the day after, 01:00 EST is 06:00 UTC.
        (
            "after-fold",
            &ny_fold,
            "2026-11-01T05:00:00Z",
            vec![],
            "2026-11-01T00:00:00Z",
            Some("2026-11-02T06:00:00Z"),
        ),
        // A window crossing midnight, due at 01:00 local: inside yesterday's
        // window.
        (
            "midnight",
            &ny_night,
            "2026-06-01T05:00:00Z",
            vec![],
            "2026-06-01T00:00:00Z",
            Some("2026-06-02T05:00:00Z"),
        ),
        // A blackout covering several windows: the first window after it.
        (
            "blackout",
            &utc,
            "2026-12-14T10:00:00Z",
            vec![xmas],
            "2026-12-01T00:00:00Z",
            Some("2027-01-04T09:00:00Z"),
        ),
        // A blackout ending inside a window: its end.
        (
            "blackout-end",
            &utc,
            "2026-12-14T10:00:00Z",
            vec![(ts("2026-12-21T08:00:00Z"), ts("2026-12-21T10:30:00Z"))],
            "2026-12-01T00:00:00Z",
            Some("2026-12-21T10:30:00Z"),
        ),
        // Chained blackouts.
        (
            "chained",
            &utc,
            "2026-12-14T10:00:00Z",
            vec![
                (ts("2026-12-21T08:00:00Z"), ts("2026-12-21T11:00:00Z")),
                (ts("2026-12-21T10:00:00Z"), ts("2026-12-21T18:00:00Z")),
            ],
            "2026-12-01T00:00:00Z",
            Some("2026-12-22T09:00:00Z"),
        ),
        // Blacked out for over a year: none.
        (
            "none",
            &utc,
            "2026-01-01T10:00:00Z",
            vec![(ts("2026-01-01T00:00:00Z"), ts("2027-06-01T00:00:00Z"))],
            "2026-01-01T00:00:00Z",
            None,
        ),
    ];
    for (name, s, last, blackouts, now, want) in rows {
        let got = next_rotation(s, ts(last), &blackouts, ts(now)).unwrap();
        assert_eq!(got, want.map(ts), "{name}");
    }
}

#[test]
fn schedule_validation() {
    let ok = schedule(1, (1, 0), (2, 0), "UTC");
    assert!(ok.validate().is_ok());
    let zero = RotationSchedule {
        every_days: 0,
        ..ok.clone()
    };
    assert_eq!(zero.validate().unwrap_err(), ScheduleError::ZeroInterval);
    let zone = RotationSchedule {
        tz: "Mars/Olympus".into(),
        ..ok.clone()
    };
    assert_eq!(
        zone.validate().unwrap_err().to_string(),
        "tz: unknown time zone \"Mars/Olympus\"; use an IANA name such as \"UTC\" or \"Europe/Berlin\""
    );
    let empty = schedule(1, (3, 0), (3, 0), "UTC");
    assert!(matches!(empty.validate(), Err(ScheduleError::EmptyWindow { .. })));
    let bad = [(ts("2026-01-02T00:00:00Z"), ts("2026-01-01T00:00:00Z"))];
    assert!(matches!(
        next_rotation(&ok, ts("2026-01-01T00:00:00Z"), &bad, ts("2026-01-01T00:00:00Z")),
        Err(ScheduleError::BlackoutEndsBeforeStart { index: 0, .. })
    ));
}
