//! The RPC table: which roles may call each RPC, as data. One row per RPC
//! of every service in `proto/` (a test walks the descriptor set, so a new
//! RPC without a row fails the tests), plus gRPC health and reflection;
//! these and `AuthService/WhoAmI` are open to every authenticated caller.
//!
//! A partner may call a row naming `partner` only for its own tiles: that
//! scoping is the handler's (a partner asking for another partner's tile
//! gets the NOT_FOUND of a tile that does not exist), not this table's.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

use crate::role::RoleKind::{self, Oncall, Partner, ReleaseEngineer, Service, Viewer};

/// One row: who may call `/<service>/<method>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The fully qualified service (`tilewave.registry.v1.RegistryService`).
    pub service: &'static str,
    /// The method (`GetTile`).
    pub method: &'static str,
    /// The roles allowed to call it.
    pub roles: &'static [RoleKind],
    /// Whether a partner (when allowed) may call it only for its own
    /// tiles: every row but health, reflection and the clock's time.
    pub partner_own_tiles: bool,
}

impl Rule {
    /// Whether a role of this kind may call the RPC.
    pub fn allows(&self, kind: RoleKind) -> bool {
        self.roles.contains(&kind)
    }

    /// The RPC as people name it: `RegistryService/GetTile` for
    /// tilewave's own, `grpc.health.v1.Health/Check` for the others.
    pub fn rpc(&self) -> String {
        let short = match self.service.strip_prefix("tilewave.") {
            Some(rest) => rest.rsplit('.').next().unwrap_or(rest),
            None => self.service,
        };
        format!("{short}/{}", self.method)
    }

    /// The request path: `/tilewave.registry.v1.RegistryService/GetTile`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }
}

/// Every authenticated caller.
const ANYONE: &[RoleKind] = &[ReleaseEngineer, Oncall, Partner, Viewer, Service];
/// Reads of everything: not partners.
const READ: &[RoleKind] = &[ReleaseEngineer, Oncall, Viewer, Service];
/// Reads a partner may make for its own tiles.
const READ_OWN: &[RoleKind] = &[ReleaseEngineer, Oncall, Partner, Viewer, Service];
/// Release engineers only.
const RE: &[RoleKind] = &[ReleaseEngineer];
/// Release engineers, and partners for their own tiles.
const RE_PARTNER: &[RoleKind] = &[ReleaseEngineer, Partner];
/// Release engineers, and services on a user's behalf.
const RE_SERVICE: &[RoleKind] = &[ReleaseEngineer, Service];
/// Release engineers and on-call.
const RE_ONCALL: &[RoleKind] = &[ReleaseEngineer, Oncall];
/// Release engineers, on-call, and services on an on-call's behalf.
const RE_ONCALL_SERVICE: &[RoleKind] = &[ReleaseEngineer, Oncall, Service];
/// Services only.
const SERVICE: &[RoleKind] = &[Service];

/// The registry's service.
pub const REGISTRY: &str = "tilewave.registry.v1.RegistryService";
/// The rollout service's own service.
pub const ROLLOUT: &str = "tilewave.rollout.v1.RolloutService";
/// The virtual clock (served by the rollout service).
pub const CLOCK: &str = "tilewave.clock.v1.ClockService";
/// The agent's service.
pub const AGENT: &str = "tilewave.agent.v1.AgentService";
/// The agent's test-only fault injection.
pub const FAULTS: &str = "tilewave.agent.v1.FaultInjectionService";
/// The credentials service.
pub const CREDENTIALS: &str = "tilewave.credentials.v1.CredentialsService";
/// The escalation service.
pub const ESCALATION: &str = "tilewave.escalation.v1.EscalationService";
/// `WhoAmI`, on every server.
pub const AUTH: &str = "tilewave.auth.v1.AuthService";
/// gRPC health checking, on every server.
pub const HEALTH: &str = "grpc.health.v1.Health";
/// gRPC server reflection, on every server.
pub const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A row; partners (if allowed) for their own tiles only.
const fn rule(service: &'static str, method: &'static str, roles: &'static [RoleKind]) -> Rule {
    Rule {
        service,
        method,
        roles,
        partner_own_tiles: true,
    }
}

/// A row open to every authenticated caller, about no tile.
const fn open(service: &'static str, method: &'static str) -> Rule {
    Rule {
        service,
        method,
        roles: ANYONE,
        partner_own_tiles: false,
    }
}

/// The table.
pub static TABLE: &[Rule] = &[
    // The registry: release engineers edit tiles; partners read and sign
    // off their own; the rollout service moves lifecycles and sets GA
    // dates (ScheduleGa).
    rule(REGISTRY, "CreateTile", RE),
    rule(REGISTRY, "ImportPartnerConfig", RE),
    rule(REGISTRY, "UpdateTile", RE),
    rule(REGISTRY, "GetTile", READ_OWN),
    rule(REGISTRY, "ListTiles", READ_OWN),
    rule(REGISTRY, "WatchTiles", READ_OWN),
    rule(REGISTRY, "GetHistory", READ_OWN),
    rule(REGISTRY, "RecordSignOff", RE_PARTNER),
    rule(REGISTRY, "WithdrawSignOff", RE_PARTNER),
    rule(REGISTRY, "SetTestWorkspace", RE),
    rule(REGISTRY, "RecordValidation", RE),
    rule(REGISTRY, "SetGtmItem", RE),
    rule(REGISTRY, "SetGaDate", RE_SERVICE),
    rule(REGISTRY, "AdvanceLifecycle", SERVICE),
    rule(REGISTRY, "Withdraw", RE),
    // Roll-outs: release engineers launch and steer; on-call pauses and
    // resumes (the escalation service too, on an on-call's behalf, and it
    // rolls back the affected regions of a mitigation).
    rule(ROLLOUT, "PlanRollout", READ),
    rule(ROLLOUT, "StartRollout", RE),
    rule(ROLLOUT, "GetRollout", READ_OWN),
    rule(ROLLOUT, "ListRollouts", READ_OWN),
    rule(ROLLOUT, "WatchRollout", READ_OWN),
    rule(ROLLOUT, "PauseRollout", RE_ONCALL_SERVICE),
    rule(ROLLOUT, "ResumeRollout", RE_ONCALL_SERVICE),
    rule(ROLLOUT, "AbortRollout", RE),
    rule(ROLLOUT, "RollbackRollout", RE_SERVICE),
    rule(ROLLOUT, "RetryRegion", RE),
    rule(ROLLOUT, "SkipRegion", RE),
    rule(ROLLOUT, "Approve", RE),
    rule(ROLLOUT, "WhereIsTile", READ_OWN),
    rule(ROLLOUT, "SetFreeze", RE),
    rule(ROLLOUT, "GetFreeze", READ),
    rule(ROLLOUT, "ScheduleGa", RE),
    rule(ROLLOUT, "ListLaunches", READ),
    rule(ROLLOUT, "SetLaunchCalendar", RE),
    rule(ROLLOUT, "GetLaunchCalendar", READ),
    rule(ROLLOUT, "EditLaunchCalendar", RE),
    rule(ROLLOUT, "HoldLaunch", RE_ONCALL),
    // The virtual clock: everyone reads domain time; release engineers move
    // it (demos and tests).
    open(CLOCK, "GetTime"),
    rule(CLOCK, "Advance", RE),
    rule(CLOCK, "Set", RE),
    rule(CLOCK, "SetRate", RE),
    // Agents answer tilewave's services only.
    rule(AGENT, "ApplyTile", SERVICE),
    rule(AGENT, "RemoveTile", SERVICE),
    rule(AGENT, "ListTiles", SERVICE),
    rule(AGENT, "Health", SERVICE),
    rule(AGENT, "InstallCredential", SERVICE),
    rule(AGENT, "VerifyCredential", SERVICE),
    rule(FAULTS, "InjectLatency", SERVICE),
    rule(FAULTS, "FailNextCalls", SERVICE),
    rule(FAULTS, "ReportUnhealthy", SERVICE),
    rule(FAULTS, "LoseCatalog", SERVICE),
    rule(FAULTS, "RefuseToStart", SERVICE),
    rule(FAULTS, "ClearFaults", SERVICE),
    rule(FAULTS, "GetFaults", SERVICE),
    // Credentials: partners hand theirs in and confirm the old one retired;
    // release engineers run rotations.
    rule(CREDENTIALS, "SubmitCredential", RE_PARTNER),
    // The escalation service starts emergency rotations (Mitigate).
    rule(CREDENTIALS, "StartRotation", RE_SERVICE),
    rule(CREDENTIALS, "GetRotation", READ_OWN),
    rule(CREDENTIALS, "WatchRotation", READ_OWN),
    rule(CREDENTIALS, "ListCredentials", READ_OWN),
    rule(CREDENTIALS, "ConfirmOldRetired", RE_PARTNER),
    rule(CREDENTIALS, "CancelRotation", RE),
    rule(CREDENTIALS, "SetRotationSchedule", RE),
    rule(CREDENTIALS, "ListRotations", READ_OWN),
    rule(CREDENTIALS, "Rewrap", RE),
    // Escalation: on-call handles incidents; release engineers also set
    // policies, schedules and SOPs.
    rule(ESCALATION, "OpenIncident", RE_ONCALL),
    // Partners see their own tiles' incidents (the handlers scope them).
    rule(ESCALATION, "GetIncident", READ_OWN),
    rule(ESCALATION, "ListIncidents", READ_OWN),
    rule(ESCALATION, "WatchIncidents", READ_OWN),
    rule(ESCALATION, "Acknowledge", RE_ONCALL),
    rule(ESCALATION, "AddNote", RE_ONCALL),
    rule(ESCALATION, "CompleteStep", RE_ONCALL),
    rule(ESCALATION, "Mitigate", RE_ONCALL),
    rule(ESCALATION, "Resolve", RE_ONCALL),
    rule(ESCALATION, "Reopen", RE_ONCALL),
    rule(ESCALATION, "SetPolicy", RE),
    rule(ESCALATION, "GetPolicy", READ),
    rule(ESCALATION, "SetSchedule", RE),
    rule(ESCALATION, "GetSchedule", READ),
    rule(ESCALATION, "WhoIsOnCall", READ),
    rule(ESCALATION, "SetSop", RE),
    rule(ESCALATION, "GetSop", READ),
    rule(ESCALATION, "SetPerson", RE),
    rule(ESCALATION, "GetPerson", READ),
    rule(ESCALATION, "ListPeople", READ),
    rule(ESCALATION, "SetPartnerContacts", RE),
    rule(ESCALATION, "Rewrap", RE),
    // Every server's WhoAmI: who the caller is and what it may call.
    open(AUTH, "WhoAmI"),
    // Every server's health and reflection.
    open(HEALTH, "Check"),
    open(HEALTH, "Watch"),
    open(REFLECTION, "ServerReflectionInfo"),
    open(REFLECTION_ALPHA, "ServerReflectionInfo"),
];

/// The services of the table that are not tilewave's own (health and
/// reflection), which the descriptor set does not describe.
pub const GRPC_SERVICES: &[&str] = &[HEALTH, REFLECTION, REFLECTION_ALPHA];

/// The table indexed by (service, method).
static INDEX: LazyLock<HashMap<(&'static str, &'static str), &'static Rule>> =
    LazyLock::new(|| TABLE.iter().map(|r| ((r.service, r.method), r)).collect());

/// The row of a request path (`/package.Service/Method`), if it has one.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let index: &HashMap<(&str, &str), &'static Rule> = &INDEX;
    index.get(&(service, method)).copied()
}

/// The RPCs a role of this kind may call, in table order.
pub fn allowed_for(kind: RoleKind) -> impl Iterator<Item = &'static Rule> {
    TABLE.iter().filter(move |r| r.allows(kind))
}

/// The methods of `service` (`tilewave.registry.v1.RegistryService`) a
/// partner may call for its own tiles only, in table order: the handlers
/// that must scope what they answer ([`crate::Scope`]).
pub fn partner_scoped(service: &str) -> Vec<&'static str> {
    TABLE
        .iter()
        .filter(|r| r.service == service && r.allows(Partner) && r.partner_own_tiles)
        .map(|r| r.method)
        .collect()
}

/// One row as `tilewave auth table -o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// `RegistryService/GetTile`.
    pub rpc: String,
    /// `/tilewave.registry.v1.RegistryService/GetTile`.
    pub path: String,
    /// The roles allowed, as written (`partner` for every partner).
    pub roles: Vec<&'static str>,
    /// Whether partners are limited to their own tiles (every row that
    /// allows `partner` and names a tile's data).
    pub partner_own_tiles_only: bool,
}

/// The table as views, in table order.
pub fn views() -> Vec<RuleView> {
    TABLE
        .iter()
        .map(|r| RuleView {
            rpc: r.rpc(),
            path: r.path(),
            roles: RoleKind::ALL
                .iter()
                .filter(|k| r.allows(**k))
                .map(|k| k.as_str())
                .collect(),
            partner_own_tiles_only: r.allows(Partner) && r.partner_own_tiles,
        })
        .collect()
}

/// The table for people: one line per RPC, a column per role (`x` allowed,
/// `own` for a partner's own tiles only).
pub fn render() -> String {
    let mut headers = vec!["RPC".to_owned()];
    headers.extend(RoleKind::ALL.iter().map(|k| k.as_str().to_owned()));
    let mut rows = vec![headers];
    for v in views() {
        let mut row = vec![v.rpc.clone()];
        for k in RoleKind::ALL {
            let cell = if !v.roles.contains(&k.as_str()) {
                "-"
            } else if k == Partner && v.partner_own_tiles_only {
                "own"
            } else {
                "x"
            };
            row.push(cell.to_owned());
        }
        rows.push(row);
    }
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message as _;

    use super::*;

    /// Every RPC of every tilewave service, from the generated descriptor
    /// set: `/package.Service/Method`.
    fn described_paths() -> BTreeSet<String> {
        let fds = prost_types::FileDescriptorSet::decode(tilewave_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut out = BTreeSet::new();
        for file in &fds.file {
            for service in &file.service {
                for method in &service.method {
                    out.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_rpc_in_the_descriptor_set_has_a_row() {
        let described = described_paths();
        assert!(
            described.len() > 60,
            "the descriptor set describes the services: {described:?}"
        );
        let missing: Vec<&String> = described.iter().filter(|p| rule_for(p).is_none()).collect();
        assert!(
            missing.is_empty(),
            "RPCs without a row in crates/auth/src/table.rs: {missing:#?}"
        );
    }

    #[test]
    fn every_row_names_an_rpc_that_exists_once() {
        let described = described_paths();
        let mut seen = BTreeSet::new();
        for r in TABLE {
            let path = r.path();
            assert!(seen.insert(path.clone()), "{path} has two rows");
            assert!(
                described.contains(&path) || GRPC_SERVICES.contains(&r.service),
                "{path} is in the table but no service has it"
            );
            assert!(!r.roles.is_empty(), "{path} allows nobody");
        }
    }

    #[test]
    fn the_issue_s_rules_hold() {
        use RoleKind::*;
        // (path, role, allowed)
        let cases: &[(&str, RoleKind, bool)] = &[
            // viewers read, and only read
            ("/tilewave.registry.v1.RegistryService/GetTile", Viewer, true),
            ("/tilewave.registry.v1.RegistryService/ListTiles", Viewer, true),
            ("/tilewave.registry.v1.RegistryService/WatchTiles", Viewer, true),
            ("/tilewave.rollout.v1.RolloutService/PlanRollout", Viewer, true),
            ("/tilewave.rollout.v1.RolloutService/WhereIsTile", Viewer, true),
            ("/tilewave.registry.v1.RegistryService/CreateTile", Viewer, false),
            ("/tilewave.rollout.v1.RolloutService/PauseRollout", Viewer, false),
            // release engineers launch and steer
            (
                "/tilewave.rollout.v1.RolloutService/StartRollout",
                ReleaseEngineer,
                true,
            ),
            (
                "/tilewave.rollout.v1.RolloutService/RollbackRollout",
                ReleaseEngineer,
                true,
            ),
            (
                "/tilewave.rollout.v1.RolloutService/Approve",
                ReleaseEngineer,
                true,
            ),
            // on-call pauses, resumes, acknowledges and mitigates, and
            // neither starts a launch nor rolls one back whole
            ("/tilewave.rollout.v1.RolloutService/PauseRollout", Oncall, true),
            ("/tilewave.rollout.v1.RolloutService/ResumeRollout", Oncall, true),
            (
                "/tilewave.escalation.v1.EscalationService/Acknowledge",
                Oncall,
                true,
            ),
            ("/tilewave.escalation.v1.EscalationService/Mitigate", Oncall, true),
            ("/tilewave.rollout.v1.RolloutService/StartRollout", Oncall, false),
            (
                "/tilewave.rollout.v1.RolloutService/RollbackRollout",
                Oncall,
                false,
            ),
            ("/tilewave.rollout.v1.RolloutService/AbortRollout", Oncall, false),
            // partners: sign off, read, hand credentials in
            (
                "/tilewave.registry.v1.RegistryService/RecordSignOff",
                Partner,
                true,
            ),
            ("/tilewave.registry.v1.RegistryService/GetTile", Partner, true),
            (
                "/tilewave.credentials.v1.CredentialsService/SubmitCredential",
                Partner,
                true,
            ),
            ("/tilewave.registry.v1.RegistryService/UpdateTile", Partner, false),
            ("/tilewave.rollout.v1.RolloutService/StartRollout", Partner, false),
            ("/tilewave.rollout.v1.RolloutService/ListLaunches", Partner, false),
            (
                "/tilewave.escalation.v1.EscalationService/ListIncidents",
                Partner,
                true,
            ),
            (
                "/tilewave.escalation.v1.EscalationService/Acknowledge",
                Partner,
                false,
            ),
            // services: agents and lifecycles
            (
                "/tilewave.registry.v1.RegistryService/AdvanceLifecycle",
                Service,
                true,
            ),
            (
                "/tilewave.registry.v1.RegistryService/AdvanceLifecycle",
                ReleaseEngineer,
                false,
            ),
            ("/tilewave.agent.v1.AgentService/ApplyTile", Service, true),
            (
                "/tilewave.agent.v1.AgentService/ApplyTile",
                ReleaseEngineer,
                false,
            ),
            ("/tilewave.agent.v1.AgentService/ListTiles", Viewer, false),
            (
                "/tilewave.agent.v1.FaultInjectionService/FailNextCalls",
                ReleaseEngineer,
                false,
            ),
            // health, reflection and WhoAmI: everyone authenticated
            ("/tilewave.auth.v1.AuthService/WhoAmI", Partner, true),
            ("/tilewave.auth.v1.AuthService/WhoAmI", Viewer, true),
            ("/grpc.health.v1.Health/Check", Partner, true),
            ("/grpc.health.v1.Health/Watch", Viewer, true),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Service,
                true,
            ),
        ];
        for (path, kind, allowed) in cases {
            let rule = rule_for(path).unwrap_or_else(|| panic!("{path} has no row"));
            assert_eq!(rule.allows(*kind), *allowed, "{path} for {kind}");
        }
        for kind in RoleKind::ALL {
            assert!(
                allowed_for(kind).any(|r| r.service == HEALTH),
                "{kind} may check health"
            );
        }
    }

    #[test]
    fn partner_scoped_rows() {
        assert_eq!(
            partner_scoped(REGISTRY),
            [
                "GetTile",
                "ListTiles",
                "WatchTiles",
                "GetHistory",
                "RecordSignOff",
                "WithdrawSignOff"
            ]
        );
        assert_eq!(
            partner_scoped(CLOCK),
            Vec::<&str>::new(),
            "GetTime is about no tile"
        );
        assert_eq!(partner_scoped(AGENT), Vec::<&str>::new());
    }

    #[test]
    fn paths_that_are_not_rpcs_have_no_row() {
        for path in [
            "",
            "/",
            "GetTile",
            "/tilewave.registry.v1.RegistryService",
            "/tilewave.registry.v1.RegistryService/",
            "/tilewave.registry.v1.RegistryService/NoSuch",
            "tilewave.registry.v1.RegistryService/GetTile",
            "/tilewave.registry.v1.RegistryService/GetTile/x",
        ] {
            assert!(rule_for(path).is_none(), "{path:?}");
        }
    }

    #[test]
    fn rendering() {
        let text = render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), TABLE.len() + 1);
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "RPC",
                "release-engineer",
                "oncall",
                "partner",
                "viewer",
                "service"
            ]
        );
        let row = |rpc: &str| -> Vec<&str> {
            lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(rpc))
                .unwrap_or_else(|| panic!("{rpc}"))
                .split_whitespace()
                .skip(1)
                .collect()
        };
        assert_eq!(row("RegistryService/GetTile"), ["x", "x", "own", "x", "x"]);
        assert_eq!(row("RegistryService/AdvanceLifecycle"), ["-", "-", "-", "-", "x"]);
        assert_eq!(row("grpc.health.v1.Health/Check"), ["x", "x", "x", "x", "x"]);
        assert!(text.lines().all(|l| l == l.trim_end()));

        let v = views();
        assert_eq!(v.len(), TABLE.len());
        let get = v.iter().find(|r| r.rpc == "RegistryService/GetTile").unwrap();
        assert_eq!(get.path, "/tilewave.registry.v1.RegistryService/GetTile");
        assert_eq!(
            get.roles,
            ["release-engineer", "oncall", "partner", "viewer", "service"]
        );
        assert!(get.partner_own_tiles_only);
        let health = v.iter().find(|r| r.rpc == "grpc.health.v1.Health/Check").unwrap();
        assert!(!health.partner_own_tiles_only);
    }
}
