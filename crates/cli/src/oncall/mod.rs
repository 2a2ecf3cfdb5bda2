//! The on-call's commands, through the escalation service (issue 16):
//! `tilewave incident ...` ([`incident`]), `tilewave oncall now`, and the
//! definitions kept as YAML files: `tilewave policy`, `tilewave sop`,
//! `tilewave oncall schedule|person|partner` `get` and `set -f FILE`
//! ([`defs`]).
//!
//! `set -f` reads the file into the core's definition type, runs the
//! core's validator and prints every problem with its path in one answer,
//! sending nothing when there is any; then reads the stored definition for
//! its etag (0 when it is new) and sends the definition with it. `get -o
//! yaml` prints the file that `set -f` reads back.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use tilewave_core::escalation::{Person, Policy, Schedule, Sop};
use tilewave_proto::common::v1::PageRequest;
use tilewave_proto::escalation::v1 as pb;

use crate::client::{Ctx, note, out};
use crate::error::{CliError, rpc};
use crate::names::{human_duration, parse_time, to_proto_time};
use crate::output::{Format, Table, fields, structured};

pub mod defs;
#[cfg(test)]
mod fake;
pub mod incident;
pub mod render;
#[cfg(test)]
mod tests;

pub use incident::IncidentCommand;

const NOW_EXAMPLES: &str = "\
Examples:
  tilewave oncall now
  tilewave oncall now --schedule primary
  tilewave oncall now --at \"2026-12-24 18:00\"
  tilewave oncall now --at 2026-03-08T08:30:00Z -o json";

const REWRAP_EXAMPLES: &str = "\
After a new key-encryption key was put first in the escalation service's key file (the old one
kept after it): every stored signing secret's data key is wrapped under the new one, so that the
old one can then leave the file. Re-running it moves nothing twice.

Examples:
  tilewave oncall rewrap --dry-run
  tilewave oncall rewrap";

const SCHEDULE_GET_EXAMPLES: &str = "\
`-o yaml` prints the file `tilewave oncall schedule set -f` reads back.

Examples:
  tilewave oncall schedule get primary
  tilewave oncall schedule get primary -o yaml > primary.yaml";

const SCHEDULE_SET_EXAMPLES: &str = "\
The file is YAML: name, layers (each a rotation of people with a shift length, a local handoff
time, an IANA time zone and a start date, optionally active only some hours), overrides.
Every problem is printed with its path, and nothing is sent while there is one. Spans of the
next 4 weeks with nobody on call are warned about (the schedule is stored anyway).
See docs/examples/escalation/schedule.yaml.

Examples:
  tilewave oncall schedule set -f docs/examples/escalation/schedule.yaml
  tilewave oncall schedule set -f primary.yaml --dry-run";

const PERSON_GET_EXAMPLES: &str = "\
Examples:
  tilewave oncall person get ada
  tilewave oncall person get ada -o yaml > ada.yaml";

const PERSON_SET_EXAMPLES: &str = "\
The file is YAML: id, name, time_zone, working_hours (low-urgency pages wait for them;
default Monday to Friday 09:00 to 17:00), contacts (webhooks). Each contact gets a generated
signing secret; the service never returns it. See docs/examples/escalation/person.yaml.

Examples:
  tilewave oncall person set -f docs/examples/escalation/person.yaml";

const PERSON_LIST_EXAMPLES: &str = "\
Examples:
  tilewave oncall person list
  tilewave oncall person list -o json";

const PARTNER_SET_EXAMPLES: &str = "\
The file is YAML: partner, contacts (webhooks). Partner-side incidents page them.
See docs/examples/escalation/partner.yaml.

Examples:
  tilewave oncall partner set -f docs/examples/escalation/partner.yaml";

const POLICY_GET_EXAMPLES: &str = "\
Without NAME: the policy \"default\". `-o yaml` prints the file `tilewave policy set -f` reads back.

Examples:
  tilewave policy get
  tilewave policy get sev1 -o yaml > sev1.yaml";

const POLICY_SET_EXAMPLES: &str = "\
The file is YAML: name, severities, levels (targets: person, schedule, webhook or partner; a
delay such as 5m), repeat, pause_rollout_after, speedups. Every problem is printed with its
path, and nothing is sent while there is one. Webhook targets get a generated signing secret.
See docs/examples/escalation/policy.yaml.

Examples:
  tilewave policy set -f docs/examples/escalation/policy.yaml
  tilewave policy set -f sev1.yaml --dry-run";

const SOP_GET_EXAMPLES: &str = "\
The stored SOP, else the shipped default of that id (integration-health, credential-failure,
deadline-at-risk).

Examples:
  tilewave sop get integration-health
  tilewave sop get credential-failure -o yaml > credential-failure.yaml";

const SOP_SET_EXAMPLES: &str = "\
The file is YAML: id, title, applies_to (incident kinds), steps (number, title, instructions,
side, requires_note). See docs/examples/escalation/sop.yaml.

Examples:
  tilewave sop set -f docs/examples/escalation/sop.yaml";

/// `tilewave oncall ...`.
#[derive(Debug, Subcommand)]
pub enum OncallCommand {
    /// Who is on call, per schedule, now or at a moment.
    #[command(after_long_help = NOW_EXAMPLES)]
    Now(NowArgs),
    /// On-call schedules: rotations, layers, overrides.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// People who can be paged: zone, working hours, contacts.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Partners' contacts, paged for partner-side incidents.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Re-wrap the stored signing secrets under the primary key-encryption key.
    #[command(after_long_help = REWRAP_EXAMPLES)]
    Rewrap(crate::creds::RewrapArgs),
}

impl OncallCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Now(_) => "oncall now",
            Self::Schedule(ScheduleCommand::Get(_)) => "oncall schedule get",
            Self::Schedule(ScheduleCommand::Set(_)) => "oncall schedule set",
            Self::Person(PersonCommand::Get(_)) => "oncall person get",
            Self::Person(PersonCommand::Set(_)) => "oncall person set",
            Self::Person(PersonCommand::List(_)) => "oncall person list",
            Self::Partner(PartnerCommand::Set(_)) => "oncall partner set",
            Self::Rewrap(_) => "oncall rewrap",
        }
    }
}

/// `tilewave oncall schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Show a schedule.
    #[command(after_long_help = SCHEDULE_GET_EXAMPLES)]
    Get(NameArgs),
    /// Create or replace a schedule from a YAML file.
    #[command(after_long_help = SCHEDULE_SET_EXAMPLES)]
    Set(FileArgs),
}

/// `tilewave oncall person ...`.
#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Show a person.
    #[command(after_long_help = PERSON_GET_EXAMPLES)]
    Get(NameArgs),
    /// Create or replace a person from a YAML file.
    #[command(after_long_help = PERSON_SET_EXAMPLES)]
    Set(FileArgs),
    /// List people.
    #[command(after_long_help = PERSON_LIST_EXAMPLES)]
    List(NoArgs),
}

/// `tilewave oncall partner ...`.
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Create or replace a partner's contacts from a YAML file.
    #[command(after_long_help = PARTNER_SET_EXAMPLES)]
    Set(FileArgs),
}

/// `tilewave policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show an escalation policy.
    #[command(after_long_help = POLICY_GET_EXAMPLES)]
    Get(PolicyNameArgs),
    /// Create or replace an escalation policy from a YAML file.
    #[command(after_long_help = POLICY_SET_EXAMPLES)]
    Set(FileArgs),
}

impl PolicyCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Get(_) => "policy get",
            Self::Set(_) => "policy set",
        }
    }
}

/// `tilewave sop ...`.
#[derive(Debug, Subcommand)]
pub enum SopCommand {
    /// Show a standard operating procedure.
    #[command(after_long_help = SOP_GET_EXAMPLES)]
    Get(NameArgs),
    /// Create or replace a standard operating procedure from a YAML file.
    #[command(after_long_help = SOP_SET_EXAMPLES)]
    Set(FileArgs),
}

impl SopCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Get(_) => "sop get",
            Self::Set(_) => "sop set",
        }
    }
}

/// Arguments of `oncall now`.
#[derive(Debug, Clone, clap::Args)]
pub struct NowArgs {
    /// The moment (RFC 3339, or a UTC "YYYY-MM-DD HH:MM") [default: now, in domain time].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<jiff::Timestamp>,
    /// Only this schedule [default: every schedule].
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
}

/// A definition by name or id.
#[derive(Debug, Clone, clap::Args)]
pub struct NameArgs {
    /// Its name (schedules), or id (people, SOPs).
    pub name: String,
}

/// A policy by name.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyNameArgs {
    /// The policy's name [default: "default"].
    pub name: Option<String>,
}

/// No arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct NoArgs {}

/// A definition file.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// The YAML file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Check the file and show what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The WhoIsOnCall request.
pub fn now_request(args: &NowArgs) -> pb::WhoIsOnCallRequest {
    pb::WhoIsOnCallRequest {
        schedule: args.schedule.clone().unwrap_or_default(),
        at: args.at.map(to_proto_time),
    }
}

/// A NOT_FOUND answer with what to do added to its message.
pub fn not_found_says(hint: &str) -> impl FnOnce(tonic::Status) -> tonic::Status + '_ {
    move |s| {
        if s.code() == tonic::Code::NotFound {
            tonic::Status::new(s.code(), format!("{}; {hint}", s.message()))
        } else {
            s
        }
    }
}

/// The etag of a definition read for a `set`: its etag, or 0 when the
/// service has none of that name (NOT_FOUND).
pub fn etag_or_new<T>(
    name: &'static str,
    read: Result<tonic::Response<T>, tonic::Status>,
    etag: impl FnOnce(T) -> Option<i64>,
) -> Result<i64, CliError> {
    match read {
        Err(s) if s.code() == tonic::Code::NotFound => Ok(0),
        other => Ok(etag(rpc(name, other)?).unwrap_or(0)),
    }
}

/// The SetPolicy request of a checked policy and the stored one's etag.
/// No signing secrets are sent: the service keeps or generates them.
pub fn set_policy_request(p: &Policy, etag: i64) -> pb::SetPolicyRequest {
    pb::SetPolicyRequest {
        policy: Some(defs::policy_to_pb(p, etag)),
        etag,
        signing_secrets: Default::default(),
    }
}

/// The SetSchedule request of a checked schedule.
pub fn set_schedule_request(s: &Schedule, etag: i64) -> pb::SetScheduleRequest {
    pb::SetScheduleRequest {
        schedule: Some(defs::schedule_to_pb(s, etag)),
        etag,
    }
}

/// The SetSop request of a checked SOP.
pub fn set_sop_request(s: &Sop, etag: i64) -> pb::SetSopRequest {
    pb::SetSopRequest {
        sop: Some(defs::sop_to_pb(s, etag)),
        etag,
    }
}

/// The SetPerson request of a checked person.
pub fn set_person_request(p: &Person, etag: i64) -> pb::SetPersonRequest {
    pb::SetPersonRequest {
        person: Some(defs::person_to_pb(p, etag)),
        etag,
        signing_secrets: Default::default(),
    }
}

/// The file name errors use: the path as given.
fn file_name(args: &FileArgs) -> String {
    args.file.display().to_string()
}

/// Prints a definition: JSON or YAML of the file form, else `table`.
fn print_def<T: Serialize>(ctx: &Ctx, def: &T, table: impl FnOnce() -> String) -> anyhow::Result<()> {
    if let Some(text) = structured(ctx.format, def)? {
        return out(&text);
    }
    out(&table())
}

/// What a `--dry-run` prints: the checked definition, in the file form
/// (YAML unless JSON was asked for).
fn dry_run<T: Serialize>(ctx: &Ctx, name: &str, def: &T) -> anyhow::Result<()> {
    let format = if ctx.format == Format::Json {
        Format::Json
    } else {
        Format::Yaml
    };
    note(&format!("{name}: no problems; nothing was sent (--dry-run)"));
    out(&structured(format, def)?.unwrap_or_default())
}

/// Runs `tilewave oncall ...`.
pub async fn run_oncall(cmd: OncallCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        OncallCommand::Rewrap(a) => {
            use crate::creds::render::{RewrapView, rewrap_text};
            let resp = rpc(
                "Rewrap",
                ctx.escalation()?
                    .rewrap(
                        ctx.request(tilewave_proto::credentials::v1::RewrapRequest { dry_run: a.dry_run })?,
                    )
                    .await,
            )?;
            let view = RewrapView::new(&resp, a.dry_run);
            if let Some(text) = structured(ctx.format, &view)? {
                return out(&text);
            }
            out(&rewrap_text(&view))
        }
        OncallCommand::Now(a) => {
            let resp = rpc(
                "WhoIsOnCall",
                ctx.escalation()?
                    .who_is_on_call(ctx.request(now_request(&a))?)
                    .await,
            )?;
            let views: Vec<render::ShiftView> = resp.shifts.iter().map(render::ShiftView::from).collect();
            if let Some(text) = structured(ctx.format, &views)? {
                return out(&text);
            }
            if resp.shifts.is_empty() {
                return out("nobody is on call\n");
            }
            out(&render::shifts_table(&resp.shifts))
        }
        OncallCommand::Schedule(ScheduleCommand::Get(a)) => {
            let resp = rpc(
                "GetSchedule",
                ctx.escalation()?
                    .get_schedule(ctx.request(pb::GetScheduleRequest { name: a.name })?)
                    .await
                    .map_err(not_found_says("`tilewave oncall schedule set -f FILE` creates it (docs/examples/escalation/schedule.yaml)")),
            )?;
            let s = resp
                .schedule
                .ok_or_else(|| anyhow::anyhow!("GetSchedule: the response holds no schedule"))?;
            let def = defs::schedule_from_pb(&s)?;
            print_def(ctx, &def, || schedule_text(&def, s.etag))
        }
        OncallCommand::Schedule(ScheduleCommand::Set(a)) => {
            let name = file_name(&a);
            let def = defs::load_schedule(&name, &defs::read_file(&a.file)?)?;
            if a.dry_run {
                return dry_run(ctx, &name, &def);
            }
            let mut client = ctx.escalation()?;
            let read = client
                .get_schedule(ctx.request(pb::GetScheduleRequest {
                    name: def.name.clone(),
                })?)
                .await;
            let etag = etag_or_new("GetSchedule", read, |r| r.schedule.map(|s| s.etag))?;
            let resp = rpc(
                "SetSchedule",
                client
                    .set_schedule(ctx.request(set_schedule_request(&def, etag))?)
                    .await,
            )?;
            for w in &resp.warnings {
                note(&format!("warning: {w}"));
            }
            let etag = resp.schedule.map_or(0, |s| s.etag);
            print_def(ctx, &def, || {
                format!("schedule {:?} saved (etag {etag})\n", def.name)
            })
        }
        OncallCommand::Person(PersonCommand::Get(a)) => {
            let resp = rpc(
                "GetPerson",
                ctx.escalation()?
                    .get_person(ctx.request(pb::GetPersonRequest { id: a.name })?)
                    .await
                    .map_err(not_found_says("`tilewave oncall person list` lists people; `tilewave oncall person set -f FILE` adds one")),
            )?;
            let p = resp
                .person
                .ok_or_else(|| anyhow::anyhow!("GetPerson: the response holds no person"))?;
            let def = defs::person_from_pb(&p)?;
            print_def(ctx, &def, || person_text(&def, p.etag))
        }
        OncallCommand::Person(PersonCommand::Set(a)) => {
            let name = file_name(&a);
            let def = defs::load_person(&name, &defs::read_file(&a.file)?)?;
            if a.dry_run {
                return dry_run(ctx, &name, &def);
            }
            let mut client = ctx.escalation()?;
            let read = client
                .get_person(ctx.request(pb::GetPersonRequest { id: def.id.clone() })?)
                .await;
            let etag = etag_or_new("GetPerson", read, |r| r.person.map(|p| p.etag))?;
            let resp = rpc(
                "SetPerson",
                client
                    .set_person(ctx.request(set_person_request(&def, etag))?)
                    .await,
            )?;
            let etag = resp.person.map_or(0, |p| p.etag);
            print_def(ctx, &def, || format!("person {:?} saved (etag {etag})\n", def.id))
        }
        OncallCommand::Person(PersonCommand::List(_)) => {
            let mut client = ctx.escalation()?;
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let resp = rpc(
                    "ListPeople",
                    client
                        .list_people(ctx.request(pb::ListPeopleRequest {
                            page: Some(PageRequest {
                                page_size: 0,
                                page_token: token.clone(),
                            }),
                        })?)
                        .await,
                )?;
                all.extend(resp.people);
                if resp.next_page_token.is_empty() || resp.next_page_token == token {
                    break;
                }
                token = resp.next_page_token;
            }
            let defs: Vec<Person> = all
                .iter()
                .map(defs::person_from_pb)
                .collect::<anyhow::Result<_>>()?;
            print_def(ctx, &defs, || people_table(&defs))
        }
        OncallCommand::Partner(PartnerCommand::Set(a)) => {
            let name = file_name(&a);
            let def = defs::load_partner(&name, &defs::read_file(&a.file)?)?;
            if a.dry_run {
                return dry_run(ctx, &name, &def);
            }
            // There is no GetPartnerContacts: a first set sends etag 0; a
            // stale one is told to the user (ABORTED).
            let resp = rpc(
                "SetPartnerContacts",
                ctx.escalation()?
                    .set_partner_contacts(ctx.request(pb::SetPartnerContactsRequest {
                        contacts: Some(defs::partner_to_pb(&def, 0)),
                        etag: 0,
                        signing_secrets: Default::default(),
                    })?)
                    .await,
            )?;
            let etag = resp.contacts.map_or(0, |c| c.etag);
            print_def(ctx, &def, || {
                format!("contacts of partner {:?} saved (etag {etag})\n", def.partner)
            })
        }
    }
}

/// Runs `tilewave policy ...`.
pub async fn run_policy(cmd: PolicyCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Get(a) => {
            let resp = rpc(
                "GetPolicy",
                ctx.escalation()?
                    .get_policy(ctx.request(pb::GetPolicyRequest {
                        name: a.name.unwrap_or_default(),
                    })?)
                    .await
                    .map_err(not_found_says(
                        "`tilewave policy set -f FILE` creates it (docs/examples/escalation/policy.yaml)",
                    )),
            )?;
            let p = resp
                .policy
                .ok_or_else(|| anyhow::anyhow!("GetPolicy: the response holds no policy"))?;
            let def = defs::policy_from_pb(&p)?;
            print_def(ctx, &def, || policy_text(&def, p.etag))
        }
        PolicyCommand::Set(a) => {
            let name = file_name(&a);
            let def = defs::load_policy(&name, &defs::read_file(&a.file)?)?;
            if a.dry_run {
                return dry_run(ctx, &name, &def);
            }
            let mut client = ctx.escalation()?;
            let read = client
                .get_policy(ctx.request(pb::GetPolicyRequest {
                    name: def.name.clone(),
                })?)
                .await;
            let etag = etag_or_new("GetPolicy", read, |r| r.policy.map(|p| p.etag))?;
            let resp = rpc(
                "SetPolicy",
                client
                    .set_policy(ctx.request(set_policy_request(&def, etag))?)
                    .await,
            )?;
            let etag = resp.policy.map_or(0, |p| p.etag);
            print_def(ctx, &def, || {
                format!("policy {:?} saved (etag {etag})\n", def.name)
            })
        }
    }
}

/// Runs `tilewave sop ...`.
pub async fn run_sop(cmd: SopCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        SopCommand::Get(a) => {
            let resp = rpc(
                "GetSop",
                ctx.escalation()?
                    .get_sop(ctx.request(pb::GetSopRequest { id: a.name })?)
                    .await
                    .map_err(not_found_says("the shipped SOPs are integration-health, credential-failure and deadline-at-risk; `tilewave sop set -f FILE` adds one")),
            )?;
            let s = resp
                .sop
                .ok_or_else(|| anyhow::anyhow!("GetSop: the response holds no SOP"))?;
            let def = defs::sop_from_pb(&s)?;
            print_def(ctx, &def, || sop_text(&def, s.etag))
        }
        SopCommand::Set(a) => {
            let name = file_name(&a);
            let def = defs::load_sop(&name, &defs::read_file(&a.file)?)?;
            if a.dry_run {
                return dry_run(ctx, &name, &def);
            }
            let mut client = ctx.escalation()?;
            let read = client
                .get_sop(ctx.request(pb::GetSopRequest { id: def.id.clone() })?)
                .await;
            // GetSop answers a shipped default that was never stored with
            // etag 0, so replacing a default is a create.
            let etag = etag_or_new("GetSop", read, |r| r.sop.map(|s| s.etag))?;
            let resp = rpc(
                "SetSop",
                client.set_sop(ctx.request(set_sop_request(&def, etag))?).await,
            )?;
            let etag = resp.sop.map_or(0, |s| s.etag);
            print_def(ctx, &def, || format!("SOP {:?} saved (etag {etag})\n", def.id))
        }
    }
}

/// A policy for people: a summary, then its levels.
pub fn policy_text(p: &Policy, etag: i64) -> String {
    let sevs: Vec<&str> = p.severities.iter().map(|s| s.name()).collect();
    let mut pairs = vec![
        ("POLICY", p.name.clone()),
        (
            "SEVERITIES",
            if sevs.is_empty() {
                "-".to_owned()
            } else {
                sevs.join(", ")
            },
        ),
        (
            "REPEAT",
            format!("the ladder runs {} time(s)", u64::from(p.repeat) + 1),
        ),
    ];
    if let Some(d) = p.pause_rollout_after {
        pairs.push((
            "PAUSE",
            format!(
                "an unacknowledged SEV1 pauses its roll-out after {}",
                human_duration(d)
            ),
        ));
    }
    for s in &p.speedups {
        pairs.push((
            "SPEEDUP",
            format!(
                "within {} of the GA deadline, delays are {}%",
                human_duration(s.within),
                s.percent
            ),
        ));
    }
    pairs.push(("ETAG", etag.to_string()));
    let mut t = Table::new(&["LEVEL", "TARGETS", "THEN WAIT"]);
    for (i, l) in p.levels.iter().enumerate() {
        let targets: Vec<String> = l.targets.iter().map(ToString::to_string).collect();
        t.row(vec![
            (i + 1).to_string(),
            targets.join(", "),
            human_duration(l.delay),
        ]);
    }
    format!("{}\n{}", fields(&pairs), t.render())
}

/// A schedule for people: its layers, then its overrides.
pub fn schedule_text(s: &Schedule, etag: i64) -> String {
    let mut text = fields(&[("SCHEDULE", s.name.clone()), ("ETAG", etag.to_string())]);
    let mut t = Table::new(&[
        "LAYER", "LEVEL", "PEOPLE", "SHIFT", "HANDOFF", "ZONE", "FROM", "ACTIVE",
    ]);
    for l in &s.layers {
        let r = &l.rotation;
        let shift = human_duration(jiff::SignedDuration::from_hours(match r.shift_length {
            tilewave_core::escalation::ShiftLength::Hours(h) => i64::from(h),
            tilewave_core::escalation::ShiftLength::Days(d) => i64::from(d) * 24,
        }));
        t.row(vec![
            l.name.clone(),
            l.level.to_string(),
            r.people.join(","),
            shift,
            r.handoff.strftime("%H:%M").to_string(),
            r.time_zone.clone(),
            r.start.to_string(),
            l.active
                .as_ref()
                .map_or_else(|| "always".to_owned(), ToString::to_string),
        ]);
    }
    text.push('\n');
    text.push_str(&t.render());
    if !s.overrides.is_empty() {
        let mut t = Table::new(&["OVERRIDE", "PERSON", "BY", "FROM", "UNTIL"]);
        for o in &s.overrides {
            t.row(vec![
                format!("{:?}", o.kind).to_ascii_lowercase(),
                o.person.clone(),
                o.by.clone().unwrap_or_default(),
                o.start.to_string(),
                o.end.to_string(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    text
}

/// An SOP for people: a summary, then its steps.
pub fn sop_text(s: &Sop, etag: i64) -> String {
    let kinds: Vec<String> = s.applies_to.iter().map(ToString::to_string).collect();
    let mut text = fields(&[
        ("SOP", format!("{}: {}", s.id, s.title)),
        ("APPLIES TO", kinds.join(", ")),
        ("ETAG", etag.to_string()),
    ]);
    let mut t = Table::new(&["STEP", "SIDE", "NOTE", "TITLE"]);
    for st in &s.steps {
        t.row(vec![
            st.number.to_string(),
            st.side.to_string(),
            if st.requires_note { "required" } else { "-" }.to_owned(),
            st.title.clone(),
        ]);
    }
    text.push('\n');
    text.push_str(&t.render());
    text
}

/// A person for people.
pub fn person_text(p: &Person, etag: i64) -> String {
    let contacts: Vec<String> = p.contacts.iter().map(|c| c.name.clone()).collect();
    fields(&[
        ("PERSON", format!("{} ({})", p.id, p.name)),
        ("TIME ZONE", p.time_zone.clone()),
        ("WORKING HOURS", p.working_hours.to_string()),
        ("CONTACTS", contacts.join(", ")),
        ("ETAG", etag.to_string()),
    ])
}

/// People, one a row.
pub fn people_table(people: &[Person]) -> String {
    let mut t = Table::new(&["ID", "NAME", "TIME ZONE", "WORKING HOURS", "CONTACTS"]);
    for p in people {
        t.row(vec![
            p.id.clone(),
            p.name.clone(),
            p.time_zone.clone(),
            p.working_hours.to_string(),
            p.contacts.len().to_string(),
        ]);
    }
    t.render()
}
