//! `tilewave incident ...`: the on-call's incident commands. Each has its
//! clap arguments, a pure function from them (and, for the changes that
//! name an etag, the incident read first) to the request, and its run.

use clap::Subcommand;
use tilewave_proto::common::v1::{PageRequest, Severity};
use tilewave_proto::escalation::v1::{
    AcknowledgeRequest, AddNoteRequest, CompleteStepRequest, GetIncidentRequest, Incident, IncidentEventType,
    IncidentState, ListIncidentsRequest, MitigateRequest, MitigationAction, OpenIncidentRequest,
    ReopenRequest, ResolveRequest, Side, StepStatus, WatchIncidentsRequest,
};

use super::render::{self, IncidentView};
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{parse_time, to_proto_time};
use crate::output::{Format, json_line, structured, to_yaml};

const LIST_EXAMPLES: &str = "\
Newest first. Without --state: every state.

Examples:
  tilewave incident list
  tilewave incident list --state triggered,acknowledged
  tilewave incident list --tile riverflow --severity SEV1 -o json";

const SHOW_EXAMPLES: &str = "\
Shows the state and who owns it, the escalation ladder's position and its next page, the SOP
checklist with progress, mitigations, page deliveries, the timeline, and what to run next.

Examples:
  tilewave incident show INC-42
  tilewave incident show INC-42 -o yaml";

const ACK_EXAMPLES: &str = "\
Acknowledging stops the escalation at once: pages not yet delivered are cancelled.

Examples:
  tilewave incident ack INC-42";

const NOTE_EXAMPLES: &str = "\
Examples:
  tilewave incident note INC-42 --message \"partner is on the bridge\"";

const STEP_EXAMPLES: &str = "\
Closes one step of the incident's SOP checklist: done (the default; some steps need --note:
what was found), or skipped with a reason. Resolving a SEV1 or SEV2 needs every step closed.

Examples:
  tilewave incident step INC-42 1 --note \"partner /connect returns 500 since 02:10\"
  tilewave incident step INC-42 2 --done
  tilewave incident step INC-42 4 --skip --reason \"the partner fixed it before we asked\"";

const MITIGATE_EXAMPLES: &str = "\
pause-rollout pauses the incident's roll-out; remove-tile rolls the tile back in --regions
(default: every region of the incident); rotate-credential starts an emergency rotation of the
tile's credential; manual records something done by hand (say what in --note).

--pause-rollout, --hide-tile (or --remove-tile) and --rotate-credential are short for --action.

Examples:
  tilewave incident mitigate INC-42 --action pause-rollout
  tilewave incident mitigate INC-42 --action remove-tile --regions gcp:me-central2
  tilewave incident mitigate INC-42 --hide-tile --regions gcp:me-central2
  tilewave incident mitigate INC-42 --rotate-credential --note \"leaked in a ticket\"
  tilewave incident mitigate INC-42 --action manual --note \"partner disabled the feature flag\"";

const RESOLVE_EXAMPLES: &str = "\
A SEV1 or SEV2 resolves only when every SOP step is done or skipped with a reason.

Examples:
  tilewave incident resolve INC-42 --note \"partner deployed 2.4.1; health gate green\"";

const REOPEN_EXAMPLES: &str = "\
Escalation starts again from the first level.

Examples:
  tilewave incident reopen INC-42 --reason \"failing again in gcp:me-central2\"";

const OPEN_EXAMPLES: &str = "\
Opens an incident by hand (the service opens most from roll-out, deadline, credential and
drift events). The policy for its severity pages at once.

Examples:
  tilewave incident open --tile riverflow --severity SEV2 --title \"partner reports login errors\"
  tilewave incident open --tile riverflow --severity SEV1 --title \"connect fails\" \\
      --regions aws:us-east-1 --side partner --partner riverflow-inc";

const WATCH_EXAMPLES: &str = "\
Prints every incident as it stands, then one line per change (JSON: one object a line; YAML:
documents separated by ---). Stops on Ctrl-C.

Examples:
  tilewave incident watch
  tilewave incident watch --tile riverflow -o json";

/// The incident commands.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// List incidents, newest first.
    #[command(after_long_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show an incident: ladder, SOP steps, deliveries, timeline.
    #[command(after_long_help = SHOW_EXAMPLES)]
    Show(IdArgs),
    /// Acknowledge an incident: escalation stops.
    #[command(after_long_help = ACK_EXAMPLES)]
    Ack(IdArgs),
    /// Add a note to an incident's timeline.
    #[command(after_long_help = NOTE_EXAMPLES)]
    Note(NoteArgs),
    /// Mark an SOP step done (with a note) or skipped (with a reason).
    #[command(after_long_help = STEP_EXAMPLES)]
    Step(StepArgs),
    /// Take a mitigating action: pause the roll-out, remove the tile, rotate the credential.
    #[command(after_long_help = MITIGATE_EXAMPLES)]
    Mitigate(MitigateArgs),
    /// Resolve an incident.
    #[command(after_long_help = RESOLVE_EXAMPLES)]
    Resolve(ResolveArgs),
    /// Reopen a resolved incident; escalation starts again.
    #[command(after_long_help = REOPEN_EXAMPLES)]
    Reopen(ReopenArgs),
    /// Open an incident by hand.
    #[command(after_long_help = OPEN_EXAMPLES)]
    Open(OpenArgs),
    /// Follow incidents as they open and change.
    #[command(after_long_help = WATCH_EXAMPLES)]
    Watch(WatchArgs),
}

impl IncidentCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::List(_) => "incident list",
            Self::Show(_) => "incident show",
            Self::Ack(_) => "incident ack",
            Self::Note(_) => "incident note",
            Self::Step(_) => "incident step",
            Self::Mitigate(_) => "incident mitigate",
            Self::Resolve(_) => "incident resolve",
            Self::Reopen(_) => "incident reopen",
            Self::Open(_) => "incident open",
            Self::Watch(_) => "incident watch",
        }
    }
}

/// An incident state, for `list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// Open, not acknowledged: escalating.
    Triggered,
    /// Someone owns it.
    Acknowledged,
    /// Contained, not yet fixed.
    Mitigated,
    /// Over.
    Resolved,
}

impl StateArg {
    /// The wire value.
    pub fn proto(self) -> IncidentState {
        match self {
            Self::Triggered => IncidentState::Triggered,
            Self::Acknowledged => IncidentState::Acknowledged,
            Self::Mitigated => IncidentState::Mitigated,
            Self::Resolved => IncidentState::Resolved,
        }
    }
}

/// A severity: `SEV1` (worst) to `SEV4` (any case; `1` to `4` too).
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    let t = s.trim().to_ascii_uppercase();
    match t.strip_prefix("SEV").unwrap_or(&t) {
        "1" => Ok(Severity::Sev1),
        "2" => Ok(Severity::Sev2),
        "3" => Ok(Severity::Sev3),
        "4" => Ok(Severity::Sev4),
        _ => Err(format!(
            "{} is not a severity: use SEV1 (worst), SEV2, SEV3 or SEV4",
            tilewave_core::quote::quoted(s)
        )),
    }
}

/// A mitigating action, for `mitigate --action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActionArg {
    /// Pause the incident's roll-out.
    PauseRollout,
    /// Roll the tile back in the regions.
    RemoveTile,
    /// Start an emergency rotation of the tile's credential.
    RotateCredential,
    /// Something done by hand, described in --note.
    Manual,
}

impl ActionArg {
    /// The wire value.
    pub fn proto(self) -> MitigationAction {
        match self {
            Self::PauseRollout => MitigationAction::PauseRollout,
            Self::RemoveTile => MitigationAction::RemoveTile,
            Self::RotateCredential => MitigationAction::RotateCredential,
            Self::Manual => MitigationAction::Manual,
        }
    }
}

/// Who owns an incident, for `open --side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    /// The partner: their contacts are paged.
    Partner,
    /// The platform.
    Platform,
}

/// Arguments of `incident list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only these states (comma separated).
    #[arg(long, value_enum, value_name = "STATE,...", value_delimiter = ',')]
    pub state: Vec<StateArg>,
    /// Only this tile's incidents.
    #[arg(long, value_name = "TILE")]
    pub tile: Option<String>,
    /// Only this severity (SEV1 to SEV4).
    #[arg(long, value_name = "SEVn", value_parser = parse_severity)]
    pub severity: Option<Severity>,
}

/// An incident by id.
#[derive(Debug, Clone, clap::Args)]
pub struct IdArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
}

/// Arguments of `incident note`.
#[derive(Debug, Clone, clap::Args)]
pub struct NoteArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
    /// The note.
    #[arg(long, short, value_name = "TEXT")]
    pub message: String,
}

/// Arguments of `incident step`.
#[derive(Debug, Clone, clap::Args)]
pub struct StepArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
    /// The SOP step's number (as `incident show` lists them).
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub step: u32,
    /// The step is done (the default without --skip).
    #[arg(long, conflicts_with = "skip")]
    pub done: bool,
    /// The step is deliberately not done (give --reason).
    #[arg(long, requires = "reason")]
    pub skip: bool,
    /// What was found (some steps require it).
    #[arg(long, value_name = "TEXT", conflicts_with = "skip")]
    pub note: Option<String>,
    /// Why the step is skipped.
    #[arg(long, value_name = "TEXT", requires = "skip")]
    pub reason: Option<String>,
}

/// Arguments of `incident mitigate`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["action", "pause_rollout", "hide_tile", "rotate_credential"])))]
pub struct MitigateArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
    /// What to do.
    #[arg(long, value_enum)]
    pub action: Option<ActionArg>,
    /// Short for --action pause-rollout.
    #[arg(long)]
    pub pause_rollout: bool,
    /// Short for --action remove-tile.
    #[arg(long, visible_alias = "remove-tile")]
    pub hide_tile: bool,
    /// Short for --action rotate-credential.
    #[arg(long)]
    pub rotate_credential: bool,
    /// Only these regions ("<cloud>:<region>", comma separated) [default: every region of the incident].
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Why, or what was done by hand.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

impl MitigateArgs {
    /// The action, from --action or its shorthand (clap makes sure there
    /// is exactly one).
    pub fn action(&self) -> ActionArg {
        match (
            self.action,
            self.pause_rollout,
            self.hide_tile,
            self.rotate_credential,
        ) {
            (Some(a), ..) => a,
            (None, true, ..) => ActionArg::PauseRollout,
            (None, _, true, _) => ActionArg::RemoveTile,
            (None, _, _, true) => ActionArg::RotateCredential,
            (None, false, false, false) => ActionArg::Manual,
        }
    }
}

/// Arguments of `incident resolve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolveArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
    /// What fixed it.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Arguments of `incident reopen`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReopenArgs {
    /// The incident's id, e.g. INC-42.
    pub id: String,
    /// Why it is not over.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Arguments of `incident open`.
#[derive(Debug, Clone, clap::Args)]
pub struct OpenArgs {
    /// The tile.
    #[arg(long, value_name = "TILE")]
    pub tile: String,
    /// How bad: SEV1 (worst) to SEV4.
    #[arg(long, value_name = "SEVn", value_parser = parse_severity)]
    pub severity: Severity,
    /// One line saying what is wrong.
    #[arg(long, value_name = "TEXT")]
    pub title: String,
    /// The affected regions ("<cloud>:<region>", comma separated).
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Who owns it [default: platform].
    #[arg(long, value_enum)]
    pub side: Option<SideArg>,
    /// The tile's partner (pages the partner's contacts when --side partner).
    #[arg(long, value_name = "PARTNER")]
    pub partner: Option<String>,
    /// The roll-out it concerns.
    #[arg(long, value_name = "ROLLOUT")]
    pub rollout: Option<String>,
    /// The escalation policy [default: the one for the severity].
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// The SOP to follow [default: the one for manual incidents, if any].
    #[arg(long, value_name = "ID")]
    pub sop: Option<String>,
    /// The tile's GA deadline (RFC 3339, or a UTC "YYYY-MM-DD HH:MM").
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub deadline: Option<jiff::Timestamp>,
}

/// Arguments of `incident watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Only this tile's incidents.
    #[arg(long, value_name = "TILE")]
    pub tile: Option<String>,
}

/// Refuses an empty text flag.
fn required(flag: &str, text: &str, what: &str) -> Result<String, CliError> {
    if text.trim().is_empty() {
        return Err(CliError::usage(format!("{flag}: {what}")));
    }
    Ok(text.to_owned())
}

/// Refuses a region that is not `<cloud>:<region>`.
fn check_regions(regions: &[String]) -> Result<(), CliError> {
    match regions
        .iter()
        .find(|r| !r.contains(':') || r.trim() != r.as_str())
    {
        Some(r) => Err(CliError::usage(format!(
            "--regions: {} is not a region (use <cloud>:<region>, e.g. aws:us-east-1)",
            tilewave_core::quote::quoted(r)
        ))),
        None => Ok(()),
    }
}

/// The ListIncidents request for one page.
pub fn list_request(args: &ListArgs, page_token: &str) -> ListIncidentsRequest {
    ListIncidentsRequest {
        states: args.state.iter().map(|s| s.proto() as i32).collect(),
        severity: args.severity.unwrap_or(Severity::Unspecified) as i32,
        tile_id: args.tile.clone().unwrap_or_default(),
        page: Some(PageRequest {
            page_size: 0,
            page_token: page_token.to_owned(),
        }),
    }
}

/// The Acknowledge request: etag 0, "as it is now" (acknowledging must
/// not lose a race against the ladder's next page).
pub fn ack_request(args: &IdArgs) -> AcknowledgeRequest {
    AcknowledgeRequest {
        id: args.id.clone(),
        etag: 0,
    }
}

/// The AddNote request (notes never conflict: etag 0).
pub fn note_request(args: &NoteArgs) -> Result<AddNoteRequest, CliError> {
    Ok(AddNoteRequest {
        id: args.id.clone(),
        note: required("--message", &args.message, "say something")?,
        etag: 0,
    })
}

/// The CompleteStep request for the incident read first: the step must be
/// on its checklist and open, a step that needs a note gets one.
pub fn step_request(args: &StepArgs, i: &Incident) -> Result<CompleteStepRequest, CliError> {
    let Some(step) = i.steps.iter().find(|s| s.number == args.step) else {
        let numbers: Vec<String> = i.steps.iter().map(|s| s.number.to_string()).collect();
        return Err(CliError::usage(if numbers.is_empty() {
            format!("{} has no SOP steps", i.id)
        } else {
            format!(
                "{} has no step {}; its steps are {} (`tilewave incident show {}`)",
                i.id,
                args.step,
                numbers.join(", "),
                i.id
            )
        }));
    };
    if step.status != StepStatus::Open as i32 {
        return Err(CliError::Conflict(format!(
            "step {} of {} is {} already ({}); nothing changed",
            step.number,
            i.id,
            render::step_status_name(step.status),
            step.note
        )));
    }
    let (note, skip_reason) = if args.skip {
        let reason = args.reason.clone().unwrap_or_default();
        (
            String::new(),
            required("--reason", &reason, "say why the step is skipped")?,
        )
    } else {
        let note = args.note.clone().unwrap_or_default();
        if step.requires_note && note.trim().is_empty() {
            return Err(CliError::usage(format!(
                "step {} ({}) needs --note: what was found; or --skip --reason TEXT",
                step.number, step.title
            )));
        }
        (note, String::new())
    };
    Ok(CompleteStepRequest {
        id: i.id.clone(),
        step: args.step,
        note,
        skip_reason,
        etag: i.etag,
    })
}

/// The Mitigate request for the incident read first.
pub fn mitigate_request(args: &MitigateArgs, i: &Incident) -> Result<MitigateRequest, CliError> {
    check_regions(&args.regions)?;
    let note = args.note.clone().unwrap_or_default();
    let action = args.action();
    match action {
        ActionArg::Manual if note.trim().is_empty() => {
            return Err(CliError::usage("--note: say what was done by hand"));
        }
        ActionArg::PauseRollout if i.rollout_id.is_empty() => {
            return Err(CliError::usage(format!(
                "{} concerns no roll-out, so there is none to pause; use --action remove-tile or manual",
                i.id
            )));
        }
        ActionArg::PauseRollout if !args.regions.is_empty() => {
            return Err(CliError::usage(
                "--regions does not apply to pause-rollout: the whole roll-out pauses",
            ));
        }
        _ => {}
    }
    Ok(MitigateRequest {
        id: i.id.clone(),
        action: action.proto() as i32,
        regions: args.regions.clone(),
        note,
        etag: i.etag,
    })
}

/// The Resolve request for the incident read first.
pub fn resolve_request(args: &ResolveArgs, i: &Incident) -> ResolveRequest {
    ResolveRequest {
        id: i.id.clone(),
        note: args.note.clone().unwrap_or_default(),
        etag: i.etag,
    }
}

/// The Reopen request for the incident read first.
pub fn reopen_request(args: &ReopenArgs, i: &Incident) -> Result<ReopenRequest, CliError> {
    Ok(ReopenRequest {
        id: i.id.clone(),
        reason: required("--reason", &args.reason, "say why the incident is not over")?,
        etag: i.etag,
    })
}

/// The OpenIncident request.
pub fn open_request(args: &OpenArgs) -> Result<OpenIncidentRequest, CliError> {
    check_regions(&args.regions)?;
    if args.tile.trim().is_empty() {
        return Err(CliError::usage("--tile: give the tile's id"));
    }
    if args.side == Some(SideArg::Partner) && args.partner.as_deref().is_none_or(|p| p.trim().is_empty()) {
        return Err(CliError::usage(
            "--side partner needs --partner: whose contacts to page",
        ));
    }
    Ok(OpenIncidentRequest {
        title: required("--title", &args.title, "say in one line what is wrong")?,
        severity: args.severity as i32,
        tile_id: args.tile.clone(),
        regions: args.regions.clone(),
        side: match args.side {
            None => Side::Unspecified,
            Some(SideArg::Partner) => Side::Partner,
            Some(SideArg::Platform) => Side::Platform,
        } as i32,
        partner: args.partner.clone().unwrap_or_default(),
        rollout_id: args.rollout.clone().unwrap_or_default(),
        policy: args.policy.clone().unwrap_or_default(),
        deadline: args.deadline.map(to_proto_time),
        sop_id: args.sop.clone().unwrap_or_default(),
    })
}

/// Runs an incident command.
pub async fn run(cmd: IncidentCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        IncidentCommand::List(a) => list(&a, ctx).await,
        IncidentCommand::Show(a) => {
            let i = get(ctx, &a.id).await?;
            print_incident(ctx, &i, None)
        }
        IncidentCommand::Ack(a) => {
            let resp = rpc(
                "Acknowledge",
                ctx.escalation()?.acknowledge(ctx.request(ack_request(&a))?).await,
            )?;
            let i = incident_of("Acknowledge", resp.incident)?;
            let note = format!(
                "acknowledged {}; escalation stopped, {} undelivered page{} cancelled",
                i.id,
                resp.cancelled,
                if resp.cancelled == 1 { "" } else { "s" }
            );
            print_incident(ctx, &i, Some(&note))
        }
        IncidentCommand::Note(a) => {
            let req = note_request(&a)?;
            let resp = rpc("AddNote", ctx.escalation()?.add_note(ctx.request(req)?).await)?;
            print_incident(ctx, &incident_of("AddNote", resp.incident)?, None)
        }
        IncidentCommand::Step(a) => {
            let req = step_request(&a, &get(ctx, &a.id).await?)?;
            let resp = rpc(
                "CompleteStep",
                ctx.escalation()?.complete_step(ctx.request(req)?).await,
            )?;
            print_incident(ctx, &incident_of("CompleteStep", resp.incident)?, None)
        }
        IncidentCommand::Mitigate(a) => {
            let req = mitigate_request(&a, &get(ctx, &a.id).await?)?;
            let resp = rpc("Mitigate", ctx.escalation()?.mitigate(ctx.request(req)?).await)?;
            print_incident(ctx, &incident_of("Mitigate", resp.incident)?, None)
        }
        IncidentCommand::Resolve(a) => {
            let req = resolve_request(&a, &get(ctx, &a.id).await?);
            let resp = rpc("Resolve", ctx.escalation()?.resolve(ctx.request(req)?).await)?;
            print_incident(ctx, &incident_of("Resolve", resp.incident)?, None)
        }
        IncidentCommand::Reopen(a) => {
            let req = reopen_request(&a, &get(ctx, &a.id).await?)?;
            let resp = rpc("Reopen", ctx.escalation()?.reopen(ctx.request(req)?).await)?;
            print_incident(ctx, &incident_of("Reopen", resp.incident)?, None)
        }
        IncidentCommand::Open(a) => {
            let req = open_request(&a)?;
            let resp = rpc(
                "OpenIncident",
                ctx.escalation()?.open_incident(ctx.request(req)?).await,
            )?;
            print_incident(ctx, &incident_of("OpenIncident", resp.incident)?, None)
        }
        IncidentCommand::Watch(a) => watch(&a, ctx).await,
    }
}

/// The incident of a response, or an error naming the RPC.
fn incident_of(rpc: &str, i: Option<Incident>) -> anyhow::Result<Incident> {
    i.ok_or_else(|| anyhow::anyhow!("{rpc}: the response holds no incident"))
}

/// Reads an incident.
pub async fn get(ctx: &Ctx, id: &str) -> anyhow::Result<Incident> {
    let resp = rpc(
        "GetIncident",
        ctx.escalation()?
            .get_incident(ctx.request(GetIncidentRequest { id: id.to_owned() })?)
            .await
            .map_err(super::not_found_says("`tilewave incident list` lists incidents")),
    )?;
    incident_of("GetIncident", resp.incident)
}

/// Prints an incident (after `note`, for the table form).
fn print_incident(ctx: &Ctx, i: &Incident, note: Option<&str>) -> anyhow::Result<()> {
    if let Some(text) = structured(ctx.format, &IncidentView::from(i))? {
        return out(&text);
    }
    let mut text = String::new();
    if let Some(n) = note {
        text.push_str(n);
        text.push_str("\n\n");
    }
    text.push_str(&render::incident_block(i));
    out(&text)
}

/// Every page of ListIncidents.
pub async fn list_all(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<Vec<Incident>> {
    let mut client = ctx.escalation()?;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "ListIncidents",
            client
                .list_incidents(ctx.request(list_request(args, &token))?)
                .await,
        )?;
        all.extend(resp.incidents);
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    Ok(all)
}

/// `incident list`.
async fn list(args: &ListArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let all = list_all(ctx, args).await?;
    let views: Vec<IncidentView> = all.iter().map(IncidentView::from).collect();
    if let Some(text) = structured(ctx.format, &views)? {
        return out(&text);
    }
    if all.is_empty() {
        return out("no incidents\n");
    }
    out(&render::incidents_table(&all))
}

/// One watched event as printed in `format`; `None` for the end of the
/// snapshot in JSON and YAML.
pub fn watch_text(
    format: Format,
    kind: IncidentEventType,
    i: Option<&Incident>,
) -> anyhow::Result<Option<String>> {
    if kind == IncidentEventType::SnapshotEnd {
        return Ok((format == Format::Table).then(|| "-- now following changes --\n".to_owned()));
    }
    let Some(i) = i else { return Ok(None) };
    Ok(Some(match format {
        Format::Table if kind == IncidentEventType::Delete => format!("{} deleted\n", i.id),
        Format::Table => format!("{}\n", render::incident_line(i)),
        Format::Json => json_line(&IncidentView::from(i))?,
        Format::Yaml => format!("---\n{}", to_yaml(&serde_json::to_value(IncidentView::from(i))?)),
    }))
}

/// How many times a dropped `incident watch` stream is opened again.
const MAX_RECONNECTS: u32 = 30;

/// `incident watch`: every change until interrupted. A dropped stream is
/// opened again after a back-off (it starts with a snapshot, so nothing is
/// missed), saying so on stderr; a refusal (bad input, no permission) or
/// too many reconnections ends it with the error.
async fn watch(args: &WatchArgs, ctx: &Ctx) -> anyhow::Result<()> {
    use crate::tile::watch::{Backoff, OnError, on_error};
    let req = WatchIncidentsRequest {
        tile_id: args.tile.clone().unwrap_or_default(),
    };
    let mut backoff = Backoff::default();
    let mut reconnects = 0;
    loop {
        let failure = match ctx
            .escalation_streaming()?
            .watch_incidents(ctx.request(req.clone())?)
            .await
        {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            backoff.reset();
                            let kind = IncidentEventType::try_from(event.r#type).unwrap_or_default();
                            if let Some(text) = watch_text(ctx.format, kind, event.incident.as_ref())? {
                                out(&text)?;
                            }
                        }
                        Ok(None) => break tonic::Status::unavailable("the server closed the stream"),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        if on_error(failure.code()) == OnError::Fail || reconnects >= MAX_RECONNECTS {
            return Err(CliError::Rpc {
                rpc: "WatchIncidents",
                status: failure,
            }
            .into());
        }
        reconnects += 1;
        crate::client::note(&format!(
            "incident watch: the stream dropped ({}); reconnecting ({reconnects}/{MAX_RECONNECTS})",
            failure.message()
        ));
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
