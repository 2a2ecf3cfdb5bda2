//! `tilewave creds ...`: partner credentials and their rotation through the
//! credentials service. Each subcommand has its clap definition, a pure
//! function from its arguments (and, where needed, the rotation read first
//! for its etag) to the gRPC request, and its execution.
//!
//! The secret of `creds submit` never comes from the command line: there is
//! no flag that takes it. It is read from piped standard input or `--file`
//! (`input`), validated as a [`tilewave_secrets::Secret`] and shown only as
//! the fingerprint the service answers with.

use clap::Subcommand;
use tilewave_proto::common::v1::{LocalTime, PageRequest};
use tilewave_proto::credentials::v1::{
    CancelRotationRequest, ConfirmOldRetiredRequest, CredentialKind, CredentialStage, GetRotationRequest,
    ListCredentialsRequest, ListRotationsRequest, Retirement, RewrapRequest, Rotation, RotationSchedule,
    RotationState, SetRotationScheduleRequest, StartRotationRequest, SubmitCredentialRequest,
};
use tilewave_secrets::Secret;

use crate::calendar::parse_local_time;
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::to_proto_duration;
use crate::output::structured;
use crate::rollout::duration_arg;

#[cfg(test)]
mod fake;
pub mod input;
pub mod render;
pub mod status;

use render::{RewrapView, RotationView, ScheduleView};

const SUBMIT_EXAMPLES: &str = "\
The secret is read from standard input (piped, never typed on a terminal) or --file, never
from the command line. One trailing newline is removed; the rest must be 1 to 4096 bytes of
UTF-8 without control characters. It becomes the tile's PENDING version; only its fingerprint
is shown.

Examples:
  tilewave creds submit riverflow < new-credential.txt
  tilewave creds submit riverflow --user tilewave --file /run/secrets/riverflow
  pass show partners/riverflow | tilewave creds submit riverflow
  tilewave creds submit riverflow --generate        # the platform makes a 32-character password";

const ROTATE_EXAMPLES: &str = "\
Rotates the tile to its PENDING version: installed beside CURRENT region by region, verified
against the partner in each, promoted everywhere only when every region verified, the old one
retired after the grace period or the partner's confirmation.
DURATION is like 30m, 4h or 7d.

Examples:
  tilewave creds rotate riverflow
  tilewave creds rotate riverflow --concurrency 10 --bake 1h --grace 3d
  tilewave creds rotate riverflow --retire on-confirmation
  tilewave creds rotate riverflow --regions aws:us-east-1,gcp:us-central1
  tilewave creds rotate riverflow --emergency       # leaked: every region at once, no bakes";

const STATUS_EXAMPLES: &str = "\
With --watch the exit code tells how it ended: 0 promoted or completed, 3 failed or cancelled.

Examples:
  tilewave creds status riverflow                   # its running (or latest) rotation
  tilewave creds status riverflow --watch
  tilewave creds status riverflow-cred-3 -o json";

const LIST_EXAMPLES: &str = "\
Shows fingerprints and stages, never a secret.

Examples:
  tilewave creds list
  tilewave creds list riverflow
  tilewave creds list --stage pending,current -o yaml";

const ROTATIONS_EXAMPLES: &str = "\
Examples:
  tilewave creds rotations
  tilewave creds rotations riverflow -o json";

const CONFIRM_EXAMPLES: &str = "\
Examples:
  tilewave creds confirm-retired riverflow
  tilewave creds confirm-retired riverflow --note \"partner ticket 4711: old password removed\"";

const CANCEL_EXAMPLES: &str = "\
Only before promotion; the regions drop the pending version and CURRENT stays as it is.

Examples:
  tilewave creds cancel riverflow --reason \"partner sent the wrong password\"";

const SCHEDULE_EXAMPLES: &str = "\
There is no call that reads a schedule yet: the first `schedule` of a tile creates it; to
change it, give the ETAG the previous `schedule` printed.

Examples:
  tilewave creds schedule riverflow --every-days 90 --window 02:00-04:00 --tz Europe/Berlin
  tilewave creds schedule riverflow --every-days 30 --window 23:00-01:00 --tz UTC --etag 1234
  tilewave creds schedule riverflow --every-days 0 --window 02:00-04:00 --etag 1234   # off";

const REWRAP_EXAMPLES: &str = "\
After a new key-encryption key was put first in the service's key ring.

Examples:
  tilewave creds rewrap --dry-run
  tilewave creds rewrap";

/// The credential commands.
#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Hand in a tile's new credential (from stdin or --file), or have one generated.
    #[command(after_long_help = SUBMIT_EXAMPLES)]
    Submit(SubmitArgs),
    /// Rotate a tile to its pending credential, region by region.
    #[command(after_long_help = ROTATE_EXAMPLES)]
    Rotate(RotateArgs),
    /// Show a rotation's progress per region (live with --watch).
    #[command(after_long_help = STATUS_EXAMPLES)]
    Status(status::Args),
    /// List credential versions: fingerprints and stages.
    #[command(after_long_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// List rotations, newest first.
    #[command(after_long_help = ROTATIONS_EXAMPLES)]
    Rotations(RotationsArgs),
    /// Record that the partner no longer accepts the old credential: retire it.
    #[command(after_long_help = CONFIRM_EXAMPLES)]
    ConfirmRetired(ConfirmArgs),
    /// Stop a rotation before promotion; CURRENT stays everywhere.
    #[command(after_long_help = CANCEL_EXAMPLES)]
    Cancel(CancelArgs),
    /// Rotate a tile's credential by itself every N days inside a window.
    #[command(after_long_help = SCHEDULE_EXAMPLES)]
    Schedule(ScheduleArgs),
    /// Re-wrap every stored secret's data key under the primary key-encryption key.
    #[command(after_long_help = REWRAP_EXAMPLES)]
    Rewrap(RewrapArgs),
}

impl CredsCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Submit(_) => "creds submit",
            Self::Rotate(_) => "creds rotate",
            Self::Status(_) => "creds status",
            Self::List(_) => "creds list",
            Self::Rotations(_) => "creds rotations",
            Self::ConfirmRetired(_) => "creds confirm-retired",
            Self::Cancel(_) => "creds cancel",
            Self::Schedule(_) => "creds schedule",
            Self::Rewrap(_) => "creds rewrap",
        }
    }
}

/// Which credential of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KindArg {
    /// The partner's HTTP Basic-auth user:password.
    #[default]
    PartnerBasicAuth,
    /// A personal access token of the partner's service principal (legacy).
    ServicePrincipalPat,
    /// A service principal OAuth secret.
    OauthM2mSecret,
}

impl KindArg {
    /// The wire value.
    pub fn proto(self) -> CredentialKind {
        match self {
            Self::PartnerBasicAuth => CredentialKind::PartnerBasicAuth,
            Self::ServicePrincipalPat => CredentialKind::ServicePrincipalPat,
            Self::OauthM2mSecret => CredentialKind::OauthM2mSecret,
        }
    }
}

/// A credential stage, for `list --stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageArg {
    /// Handed in, not yet in use.
    Pending,
    /// The one presented on calls.
    Current,
    /// Replaced, still accepted until retired.
    Previous,
    /// Removed everywhere.
    Retired,
}

impl StageArg {
    /// The wire value.
    pub fn proto(self) -> CredentialStage {
        match self {
            Self::Pending => CredentialStage::Pending,
            Self::Current => CredentialStage::Current,
            Self::Previous => CredentialStage::Previous,
            Self::Retired => CredentialStage::Retired,
        }
    }
}

/// When the old credential is retired, for `rotate --retire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetireArg {
    /// When the grace period has passed.
    AfterGrace,
    /// Only on the partner's confirmation (`creds confirm-retired`).
    OnConfirmation,
    /// Whichever comes first (the service's default).
    FirstOf,
}

impl RetireArg {
    /// The wire value.
    pub fn proto(self) -> Retirement {
        match self {
            Self::AfterGrace => Retirement::AfterGrace,
            Self::OnConfirmation => Retirement::OnConfirmation,
            Self::FirstOf => Retirement::FirstOf,
        }
    }
}

/// The tile and which of its credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct TileArgs {
    /// The tile's id.
    pub tile: String,
    /// Which of the tile's credentials.
    #[arg(long, value_enum, default_value_t = KindArg::PartnerBasicAuth)]
    pub kind: KindArg,
}

/// Arguments of `creds submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub target: TileArgs,
    /// The Basic-auth user name (not secret); else give "user:password" as the secret.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the secret from this file instead of standard input.
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub file: Option<std::path::PathBuf>,
    /// Have the platform generate a random secret (nothing is read).
    #[arg(long)]
    pub generate: bool,
    /// A key that makes a retried submit return the first one's version.
    #[arg(long, value_name = "KEY")]
    pub request_id: Option<String>,
}

/// Arguments of `creds rotate`.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: TileArgs,
    /// Start now with the shortest safe bakes (a leaked credential).
    #[arg(long)]
    pub emergency: bool,
    /// Regions in flight at once [default: 8; 70 for --emergency].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub concurrency: Option<i32>,
    /// The wait after each wave verified [default: 30m; none for --emergency].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, conflicts_with = "emergency")]
    pub bake: Option<jiff::SignedDuration>,
    /// The wait before a failed region's second attempt, doubled for each
    /// later one up to 5m; 0s retries at once [default: the service's, 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub retry_delay: Option<jiff::SignedDuration>,
    /// How long the old credential stays accepted after promotion [default: 7d].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub grace: Option<jiff::SignedDuration>,
    /// When the old credential is retired [default: first-of].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub retire: Option<RetireArg>,
    /// Only these regions ("<cloud>:<region>", comma separated) [default: every region of the tile].
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// A key that makes a retried start return the first one's rotation.
    #[arg(long, value_name = "KEY")]
    pub request_id: Option<String>,
}

/// Arguments of `creds list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only this tile's credentials.
    pub tile: Option<String>,
    /// Only these stages (comma separated).
    #[arg(long, value_enum, value_name = "STAGE,...", value_delimiter = ',')]
    pub stage: Vec<StageArg>,
    /// Only this kind of credential.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
}

/// Arguments of `creds rotations`.
#[derive(Debug, Clone, clap::Args)]
pub struct RotationsArgs {
    /// Only this tile's rotations.
    pub tile: Option<String>,
}

/// Arguments of `creds confirm-retired`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub target: TileArgs,
    /// What the partner said (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Arguments of `creds cancel`.
#[derive(Debug, Clone, clap::Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub target: TileArgs,
    /// Why (recorded on the rotation and in the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Arguments of `creds schedule`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub target: TileArgs,
    /// Rotate this many days after the last rotation; 0 turns it off.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=3650))]
    pub every_days: i32,
    /// The local window to rotate in, HH:MM-HH:MM (it may cross midnight).
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = parse_window)]
    pub window: (LocalTime, LocalTime),
    /// The IANA time zone of --window, e.g. UTC or Europe/Berlin.
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = parse_zone)]
    pub tz: String,
    /// The schedule's etag, as the previous `creds schedule` printed it; 0 when there is none yet.
    #[arg(long, value_name = "ETAG", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub etag: i64,
}

/// Arguments of `creds rewrap`.
#[derive(Debug, Clone, clap::Args)]
pub struct RewrapArgs {
    /// Only count what would be re-wrapped.
    #[arg(long)]
    pub dry_run: bool,
}

/// A window of local times: `02:00-04:00`.
pub fn parse_window(s: &str) -> Result<(LocalTime, LocalTime), String> {
    let bad = || format!("{s:?} is not a window: use HH:MM-HH:MM, e.g. 02:00-04:00");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = parse_local_time(a).map_err(|_| bad())?;
    let end = parse_local_time(b).map_err(|_| bad())?;
    if start == end {
        return Err(format!(
            "{s:?} is an empty window: the start and the end must differ"
        ));
    }
    Ok((start, end))
}

/// An IANA time zone name the bundled database knows.
pub fn parse_zone(s: &str) -> Result<String, String> {
    let name = s.trim();
    jiff::tz::TimeZone::get(name)
        .map(|_| name.to_owned())
        .map_err(|_| format!("{s:?} is not a time zone: use an IANA name, e.g. UTC or Europe/Berlin"))
}

/// The SubmitCredential request. With `--generate` no secret is given;
/// otherwise `secret` is required (read by the caller from stdin or the
/// file). The request's `Debug` output is redacted by the proto crate.
pub fn submit_request(
    args: &SubmitArgs,
    secret: Option<&Secret>,
) -> Result<SubmitCredentialRequest, CliError> {
    if let Some(user) = &args.user
        && (user.trim().is_empty() || user.contains(':') || user.chars().any(char::is_control))
    {
        return Err(CliError::usage(
            "--user: give a non-empty user name without ':' or control characters (or leave --user out and hand in \"user:password\")",
        ));
    }
    let plaintext = match (args.generate, secret) {
        (true, _) => String::new(),
        (false, Some(s)) => s.expose().to_owned(),
        (false, None) => return Err(CliError::usage(format!("no secret was given; {}", input::HOW))),
    };
    Ok(SubmitCredentialRequest {
        tile_id: args.target.tile.clone(),
        kind: args.target.kind.proto() as i32,
        username: args.user.clone().unwrap_or_default(),
        plaintext,
        request_id: args.request_id.clone().unwrap_or_default(),
        generate: args.generate,
    })
}

/// The StartRotation request.
pub fn rotate_request(args: &RotateArgs) -> Result<StartRotationRequest, CliError> {
    if let Some(r) = args
        .regions
        .iter()
        .find(|r| !r.contains(':') || r.trim() != r.as_str())
    {
        return Err(CliError::usage(format!(
            "--regions: {r:?} is not a region (use <cloud>:<region>, e.g. aws:us-east-1)"
        )));
    }
    if args.grace.is_some() && args.retire == Some(RetireArg::OnConfirmation) {
        return Err(CliError::usage(
            "--grace does not apply with --retire on-confirmation (only the partner's confirmation retires the old credential); \
             leave one of them out",
        ));
    }
    Ok(StartRotationRequest {
        tile_id: args.target.tile.clone(),
        kind: args.target.kind.proto() as i32,
        regions: args.regions.clone(),
        emergency: args.emergency,
        concurrency: args.concurrency.unwrap_or(0),
        bake: args.bake.map(to_proto_duration),
        retirement: args.retire.map_or(Retirement::Unspecified, RetireArg::proto) as i32,
        grace: args.grace.map(to_proto_duration),
        request_id: args.request_id.clone().unwrap_or_default(),
        retry_delay: args.retry_delay.map(to_proto_duration),
    })
}

/// The ListCredentials request for one page.
pub fn list_request(args: &ListArgs, page_token: &str) -> ListCredentialsRequest {
    ListCredentialsRequest {
        tile_id: args.tile.clone().unwrap_or_default(),
        kind: args.kind.map_or(CredentialKind::Unspecified, KindArg::proto) as i32,
        stages: args.stage.iter().map(|s| s.proto() as i32).collect(),
        page: Some(PageRequest {
            page_size: 0,
            page_token: page_token.to_owned(),
        }),
    }
}

/// The ListRotations request for one page.
pub fn rotations_request(args: &RotationsArgs, page_token: &str) -> ListRotationsRequest {
    ListRotationsRequest {
        tile_id: args.tile.clone().unwrap_or_default(),
        states: Vec::new(),
        page: Some(PageRequest {
            page_size: 0,
            page_token: page_token.to_owned(),
        }),
    }
}

/// The ConfirmOldRetired request for the rotation read first (its id and
/// etag).
pub fn confirm_request(args: &ConfirmArgs, r: &Rotation) -> ConfirmOldRetiredRequest {
    ConfirmOldRetiredRequest {
        rotation_id: r.id.clone(),
        etag: r.etag,
        note: args.note.clone().unwrap_or_default(),
        tile_id: String::new(),
        kind: CredentialKind::Unspecified as i32,
    }
}

/// The CancelRotation request for the rotation read first.
pub fn cancel_request(args: &CancelArgs, r: &Rotation) -> Result<CancelRotationRequest, CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::usage("--reason: say why the rotation is cancelled"));
    }
    Ok(CancelRotationRequest {
        rotation_id: r.id.clone(),
        etag: r.etag,
        reason: args.reason.clone(),
        tile_id: String::new(),
        kind: CredentialKind::Unspecified as i32,
    })
}

/// The SetRotationSchedule request.
pub fn schedule_request(args: &ScheduleArgs) -> SetRotationScheduleRequest {
    SetRotationScheduleRequest {
        schedule: Some(RotationSchedule {
            tile_id: args.target.tile.clone(),
            kind: args.target.kind.proto() as i32,
            every_days: args.every_days,
            window_start: Some(args.window.0),
            window_end: Some(args.window.1),
            time_zone: args.tz.clone(),
            next_due: None,
            etag: args.etag,
        }),
        etag: args.etag,
    }
}

/// The GetRotation request of a tile's running (or latest) rotation.
pub fn get_by_tile(tile: &str, kind: KindArg) -> GetRotationRequest {
    GetRotationRequest {
        id: String::new(),
        tile_id: tile.to_owned(),
        kind: kind.proto() as i32,
    }
}

/// Reads the rotation `TILE|ID` names: the tile's running (or latest) one,
/// else (NOT_FOUND or INVALID_ARGUMENT for a tile) the rotation with that
/// id.
pub async fn resolve(ctx: &Ctx, target: &str, kind: KindArg) -> anyhow::Result<Rotation> {
    let mut client = ctx.credentials()?;
    let first = client.get_rotation(ctx.request(get_by_tile(target, kind))?).await;
    let resp = match first {
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            let by_id = client
                .get_rotation(ctx.request(GetRotationRequest {
                    id: target.to_owned(),
                    tile_id: String::new(),
                    kind: CredentialKind::Unspecified as i32,
                })?)
                .await;
            match by_id {
                Ok(r) => r.into_inner(),
                Err(again) if again.code() == tonic::Code::NotFound => {
                    return Err(CliError::Rpc {
                        rpc: "GetRotation",
                        status: tonic::Status::new(
                            status.code(),
                            format!(
                                "{} (and no rotation has the id {}); `tilewave creds rotations` lists them, \
                                 `tilewave creds rotate {target}` starts one",
                                status.message(),
                                tilewave_core::quote::quoted(target)
                            ),
                        ),
                    }
                    .into());
                }
                Err(again) => {
                    return Err(CliError::Rpc {
                        rpc: "GetRotation",
                        status: again,
                    }
                    .into());
                }
            }
        }
        other => rpc("GetRotation", other)?,
    };
    resp.rotation
        .ok_or_else(|| anyhow::anyhow!("GetRotation {target}: the response holds no rotation"))
}

/// Runs a credentials command.
pub async fn run(cmd: CredsCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        CredsCommand::Submit(a) => submit(a, ctx).await,
        CredsCommand::Rotate(a) => rotate(a, ctx).await,
        CredsCommand::Status(a) => status::run(a, ctx).await,
        CredsCommand::List(a) => list(a, ctx).await,
        CredsCommand::Rotations(a) => rotations(a, ctx).await,
        CredsCommand::ConfirmRetired(a) => confirm(a, ctx).await,
        CredsCommand::Cancel(a) => cancel(a, ctx).await,
        CredsCommand::Schedule(a) => schedule(a, ctx).await,
        CredsCommand::Rewrap(a) => rewrap(a, ctx).await,
    }
}

/// The secret `submit` hands in: none with `--generate`, else from
/// `--file` or standard input.
fn read_secret(args: &SubmitArgs) -> Result<Option<Secret>, CliError> {
    use std::io::IsTerminal as _;
    if args.generate {
        return Ok(None);
    }
    match &args.file {
        Some(path) => input::from_file(path).map(Some),
        None => {
            let stdin = std::io::stdin();
            let tty = stdin.is_terminal();
            input::from_stdin(stdin.lock(), tty).map(Some)
        }
    }
}

/// `creds submit`.
async fn submit(args: SubmitArgs, ctx: &Ctx) -> anyhow::Result<()> {
    // Read and validate before connecting: a bad secret never leaves.
    let secret = read_secret(&args)?;
    let mut client = ctx.credentials()?;
    let req = ctx.request(submit_request(&args, secret.as_ref())?)?;
    drop(secret);
    let resp = rpc("SubmitCredential", client.submit_credential(req).await)?;
    let c = resp
        .credential
        .ok_or_else(|| anyhow::anyhow!("SubmitCredential: the response holds no credential"))?;
    if let Some(text) = structured(ctx.format, &render::CredentialView::from(&c))? {
        return out(&text);
    }
    out(&render::submitted(&c))
}

/// Prints a rotation: its block and what to do next, or its view.
fn print_rotation(ctx: &Ctx, r: &Rotation) -> anyhow::Result<()> {
    if let Some(text) = structured(ctx.format, &RotationView::from(r))? {
        return out(&text);
    }
    let mut text = render::rotation_block(r);
    if let Some(next) = render::next_step(r) {
        text.push('\n');
        text.push_str(&next);
        text.push('\n');
    }
    out(&text)
}

/// `creds rotate`.
async fn rotate(args: RotateArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let req = rotate_request(&args)?;
    let resp = rpc(
        "StartRotation",
        ctx.credentials()?.start_rotation(ctx.request(req)?).await,
    )?;
    let r = resp
        .rotation
        .ok_or_else(|| anyhow::anyhow!("StartRotation: the response holds no rotation"))?;
    print_rotation(ctx, &r)
}

/// `creds list`: every page.
async fn list(args: ListArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let mut client = ctx.credentials()?;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "ListCredentials",
            client
                .list_credentials(ctx.request(list_request(&args, &token))?)
                .await,
        )?;
        all.extend(resp.credentials);
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    let views: Vec<render::CredentialView> = all.iter().map(render::CredentialView::from).collect();
    if let Some(text) = structured(ctx.format, &views)? {
        return out(&text);
    }
    if all.is_empty() {
        return out("no credentials; hand one in with `tilewave creds submit TILE < new-credential.txt`\n");
    }
    out(&render::credentials_table(&all))
}

/// `creds rotations`: every page.
async fn rotations(args: RotationsArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let mut client = ctx.credentials()?;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "ListRotations",
            client
                .list_rotations(ctx.request(rotations_request(&args, &token))?)
                .await,
        )?;
        all.extend(resp.rotations);
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    let views: Vec<RotationView> = all.iter().map(RotationView::from).collect();
    if let Some(text) = structured(ctx.format, &views)? {
        return out(&text);
    }
    if all.is_empty() {
        return out("no rotations; start one with `tilewave creds rotate TILE`\n");
    }
    out(&render::rotations_table(&all))
}

/// `creds confirm-retired`: reads the tile's rotation for its id and etag
/// first.
async fn confirm(args: ConfirmArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let r = resolve(ctx, &args.target.tile, args.target.kind).await?;
    if r.state != RotationState::Promoted as i32 {
        return Err(CliError::Conflict(format!(
            "the rotation {} of {} is {}, not PROMOTED: the old credential is retired only after the new one \
             is promoted everywhere (`tilewave creds status {} --watch`)",
            r.id,
            r.tile_id,
            render::state_name(r.state),
            r.tile_id
        ))
        .into());
    }
    let resp = rpc(
        "ConfirmOldRetired",
        ctx.credentials()?
            .confirm_old_retired(ctx.request(confirm_request(&args, &r))?)
            .await,
    )?;
    let r = resp
        .rotation
        .ok_or_else(|| anyhow::anyhow!("ConfirmOldRetired: the response holds no rotation"))?;
    print_rotation(ctx, &r)
}

/// `creds cancel`: reads the tile's rotation for its id and etag first.
async fn cancel(args: CancelArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let r = resolve(ctx, &args.target.tile, args.target.kind).await?;
    let req = cancel_request(&args, &r)?;
    let resp = rpc(
        "CancelRotation",
        ctx.credentials()?.cancel_rotation(ctx.request(req)?).await,
    )?;
    let r = resp
        .rotation
        .ok_or_else(|| anyhow::anyhow!("CancelRotation: the response holds no rotation"))?;
    print_rotation(ctx, &r)
}

/// `creds schedule`.
async fn schedule(args: ScheduleArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let result = ctx
        .credentials()?
        .set_rotation_schedule(ctx.request(schedule_request(&args))?)
        .await;
    let resp = match result {
        Err(status) if status.code() == tonic::Code::Aborted => {
            let what = if args.etag == 0 {
                "the tile already has a schedule: give --etag with the ETAG the previous `tilewave creds schedule` printed"
            } else {
                "the schedule changed since that etag: give --etag with the ETAG the latest `tilewave creds schedule` printed"
            };
            return Err(
                CliError::Conflict(format!("SetRotationSchedule: {} ({what})", status.message())).into(),
            );
        }
        other => rpc("SetRotationSchedule", other)?,
    };
    let s = resp
        .schedule
        .ok_or_else(|| anyhow::anyhow!("SetRotationSchedule: the response holds no schedule"))?;
    if let Some(text) = structured(ctx.format, &ScheduleView::from(&s))? {
        return out(&text);
    }
    out(&render::schedule_text(&s))
}

/// `creds rewrap`.
async fn rewrap(args: RewrapArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let resp = rpc(
        "Rewrap",
        ctx.credentials()?
            .rewrap(ctx.request(RewrapRequest {
                dry_run: args.dry_run,
            })?)
            .await,
    )?;
    let view = RewrapView::new(&resp, args.dry_run);
    if let Some(text) = structured(ctx.format, &view)? {
        return out(&text);
    }
    out(&render::rewrap_text(&view))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Parsing argv the way the binary does, for the table-driven tests.

    use clap::Parser as _;

    use super::CredsCommand;
    use crate::cli::{Cli, Command};

    /// Parses `tilewave creds <args>`.
    pub fn parse(args: &[&str]) -> Result<CredsCommand, clap::Error> {
        let argv = ["tilewave", "creds"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Creds(c) => Ok(c),
            other => panic!("not a creds command: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::parse;
    use super::*;

    const KNOWN: &str = "hunter2-correct-horse";

    fn submit_args(argv: &[&str]) -> SubmitArgs {
        match parse(argv).unwrap() {
            CredsCommand::Submit(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn rotate_of(argv: &[&str]) -> Result<StartRotationRequest, CliError> {
        match parse(argv).unwrap() {
            CredsCommand::Rotate(a) => rotate_request(&a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn submit_requests_from_argv_and_a_secret() {
        let secret = Secret::from_text(KNOWN).unwrap();
        // (argv, secret given, username, plaintext, generate)
        let cases: &[(&[&str], bool, &str, &str, bool)] = &[
            (&["submit", "riverflow"], true, "", KNOWN, false),
            (
                &["submit", "riverflow", "--user", "tilewave"],
                true,
                "tilewave",
                KNOWN,
                false,
            ),
            (
                &["submit", "riverflow", "--file", "/tmp/c"],
                true,
                "",
                KNOWN,
                false,
            ),
            (
                &["submit", "riverflow", "--generate", "--user", "tw"],
                false,
                "tw",
                "",
                true,
            ),
        ];
        for (argv, given, user, plaintext, generate) in cases {
            let a = submit_args(argv);
            let r = submit_request(&a, given.then_some(&secret)).unwrap();
            assert_eq!(
                (
                    r.tile_id.as_str(),
                    r.username.as_str(),
                    r.plaintext.as_str(),
                    r.generate
                ),
                ("riverflow", *user, *plaintext, *generate),
                "{argv:?}"
            );
            assert_eq!(r.kind, CredentialKind::PartnerBasicAuth as i32);
        }
        let err = submit_request(&submit_args(&["submit", "riverflow"]), None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--file"), "{err}");
        let err =
            submit_request(&submit_args(&["submit", "rf", "--user", "a:b"]), Some(&secret)).unwrap_err();
        assert!(err.to_string().starts_with("--user"), "{err}");
    }

    #[test]
    fn no_flag_takes_the_secret_and_it_is_never_printed() {
        // There is no flag to put a secret on the command line.
        for argv in [
            &["submit", "riverflow", "--secret", KNOWN][..],
            &["submit", "riverflow", "--password", KNOWN][..],
            &["submit", "riverflow", KNOWN][..],
            &["submit", "riverflow", "--file", "x", "--generate"][..],
        ] {
            let err = parse(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
        // The request's Debug output, every error and every rendering leave it out.
        let secret = Secret::from_text(KNOWN).unwrap();
        let a = submit_args(&["submit", "riverflow", "--user", "tilewave"]);
        let req = submit_request(&a, Some(&secret)).unwrap();
        assert_eq!(req.plaintext, KNOWN, "the request carries it");
        let mut texts = vec![
            format!("{req:?}"),
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{a:?}"),
        ];
        for bad in [
            format!("{KNOWN}\n{KNOWN}"),
            format!("{KNOWN}\0"),
            "x".repeat(5000) + KNOWN,
            String::new(),
        ] {
            let e = input::read(bad.as_bytes(), input::Source::Stdin).unwrap_err();
            texts.push(e.to_string());
            texts.extend(crate::error::report(&anyhow::Error::from(e), None));
        }
        let e = input::from_stdin(KNOWN.as_bytes(), true).unwrap_err();
        texts.extend(crate::error::report(&anyhow::Error::from(e), None));
        let bad_user = submit_args(&["submit", "rf", "--user", ""]);
        texts.push(submit_request(&bad_user, Some(&secret)).unwrap_err().to_string());
        let c = tilewave_proto::credentials::v1::Credential {
            id: "riverflow/partner-basic-auth/3".into(),
            tile_id: "riverflow".into(),
            fingerprint: tilewave_secrets::fingerprint("riverflow", &secret),
            ..Default::default()
        };
        texts.push(render::submitted(&c));
        texts.push(render::credentials_table(std::slice::from_ref(&c)));
        texts.push(serde_json::to_string(&render::CredentialView::from(&c)).unwrap());
        for t in &texts {
            assert!(
                !t.contains(KNOWN) && !t.contains("hunter2"),
                "the secret leaked: {t}"
            );
        }
    }

    #[test]
    fn rotate_requests_from_argv() {
        let r = rotate_of(&["rotate", "riverflow"]).unwrap();
        assert_eq!(
            r,
            StartRotationRequest {
                tile_id: "riverflow".into(),
                kind: CredentialKind::PartnerBasicAuth as i32,
                ..StartRotationRequest::default()
            }
        );
        let r = rotate_of(&[
            "rotate",
            "riverflow",
            "--concurrency",
            "10",
            "--bake",
            "1h",
            "--grace",
            "3d",
            "--retire",
            "after-grace",
            "--regions",
            "aws:us-east-1,gcp:us-central1",
            "--request-id",
            "k1",
            "--retry-delay",
            "30s",
        ])
        .unwrap();
        assert_eq!(r.concurrency, 10);
        assert_eq!(r.retry_delay.map(|d| d.seconds), Some(30));
        assert_eq!(r.bake.map(|d| d.seconds), Some(3600));
        assert_eq!(r.grace.map(|d| d.seconds), Some(3 * 86_400));
        assert_eq!(r.retirement, Retirement::AfterGrace as i32);
        assert_eq!(r.regions, vec!["aws:us-east-1", "gcp:us-central1"]);
        assert_eq!(r.request_id, "k1");
        let r = rotate_of(&[
            "rotate",
            "riverflow",
            "--emergency",
            "--retire",
            "on-confirmation",
        ])
        .unwrap();
        assert!(r.emergency);
        assert_eq!((r.bake, r.retirement), (None, Retirement::OnConfirmation as i32));
        for (argv, want) in [
            (&["rotate", "rf", "--regions", "us-east-1"][..], "--regions"),
            (
                &["rotate", "rf", "--retire", "on-confirmation", "--grace", "1d"][..],
                "--grace",
            ),
        ] {
            let err = rotate_of(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(want), "{err}");
        }
    }

    #[test]
    fn bad_flags_exit_2_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["rotate", "rf", "--bake", "4 hours"], "--bake"),
            (&["rotate", "rf", "--emergency", "--bake", "1h"], "--bake"),
            (&["rotate", "rf", "--concurrency", "0"], "--concurrency"),
            (&["rotate", "rf", "--retire", "never"], "--retire"),
            (&["list", "--stage", "live"], "--stage"),
            (&["cancel", "rf"], "--reason"),
            (
                &["schedule", "rf", "--every-days", "30", "--window", "2-4"],
                "--window",
            ),
            (
                &["schedule", "rf", "--every-days", "30", "--window", "02:00-02:00"],
                "--window",
            ),
            (
                &[
                    "schedule",
                    "rf",
                    "--every-days",
                    "30",
                    "--window",
                    "02:00-04:00",
                    "--tz",
                    "Mars/Olympus",
                ],
                "--tz",
            ),
            (
                &["schedule", "rf", "--every-days", "-1", "--window", "02:00-04:00"],
                "--every-days",
            ),
            (&["submit", "rf", "--kind", "password"], "--kind"),
            (&["submit"], "TILE"),
        ];
        for (argv, flag) in cases {
            let err = parse(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
            assert!(err.to_string().contains(flag), "{argv:?}: {err}");
        }
    }

    #[test]
    fn list_schedule_and_steering_requests_from_argv() {
        let CredsCommand::List(a) = parse(&["list", "riverflow", "--stage", "pending,current"]).unwrap()
        else {
            panic!()
        };
        let r = list_request(&a, "t2");
        assert_eq!(r.tile_id, "riverflow");
        assert_eq!(
            r.stages,
            vec![CredentialStage::Pending as i32, CredentialStage::Current as i32]
        );
        assert_eq!((r.kind, r.page.map(|p| p.page_token)), (0, Some("t2".into())));
        let CredsCommand::Rotations(a) = parse(&["rotations"]).unwrap() else {
            panic!()
        };
        assert_eq!(rotations_request(&a, "").tile_id, "");

        let CredsCommand::Schedule(a) = parse(&[
            "schedule",
            "riverflow",
            "--every-days",
            "90",
            "--window",
            "23:30-01:00",
            "--tz",
            "Europe/Berlin",
            "--etag",
            "12",
        ])
        .unwrap() else {
            panic!()
        };
        let r = schedule_request(&a);
        let s = r.schedule.unwrap();
        assert_eq!(
            (s.every_days, s.time_zone.as_str(), r.etag),
            (90, "Europe/Berlin", 12)
        );
        assert_eq!(s.window_start, Some(LocalTime { hour: 23, minute: 30 }));
        assert_eq!(s.window_end, Some(LocalTime { hour: 1, minute: 0 }));

        let rotation = render::tests::rotation(RotationState::Promoted);
        let CredsCommand::ConfirmRetired(a) =
            parse(&["confirm-retired", "riverflow", "--note", "ticket 4711"]).unwrap()
        else {
            panic!()
        };
        let r = confirm_request(&a, &rotation);
        assert_eq!(
            (r.rotation_id.as_str(), r.etag, r.note.as_str()),
            ("riverflow-cred-3", 42, "ticket 4711")
        );
        let CredsCommand::Cancel(a) = parse(&["cancel", "riverflow", "--reason", "wrong password"]).unwrap()
        else {
            panic!()
        };
        let r = cancel_request(&a, &rotation).unwrap();
        assert_eq!(
            (r.rotation_id.as_str(), r.etag, r.reason.as_str()),
            ("riverflow-cred-3", 42, "wrong password")
        );
        let CredsCommand::Cancel(a) = parse(&["cancel", "riverflow", "--reason", " "]).unwrap() else {
            panic!()
        };
        assert_eq!(cancel_request(&a, &rotation).unwrap_err().exit_code(), 2);
        let CredsCommand::Rewrap(a) = parse(&["rewrap", "--dry-run"]).unwrap() else {
            panic!()
        };
        assert!(a.dry_run);
        let g = get_by_tile("riverflow", KindArg::PartnerBasicAuth);
        assert_eq!((g.id.as_str(), g.tile_id.as_str()), ("", "riverflow"));
    }

    #[tokio::test]
    async fn calls_against_a_fake_service() {
        let (fake, ctx) = fake::serve().await;
        // By tile, then by id when the tile has none.
        let r = resolve(&ctx, "riverflow", KindArg::PartnerBasicAuth)
            .await
            .unwrap();
        assert_eq!(r.id, "riverflow-cred-3");
        let r = resolve(&ctx, "riverflow-cred-3", KindArg::PartnerBasicAuth)
            .await
            .unwrap();
        assert_eq!(r.tile_id, "riverflow");
        let err = resolve(&ctx, "lumen", KindArg::PartnerBasicAuth)
            .await
            .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 3);
        let text = format!("{err:#}");
        assert!(
            text.contains("no rotation has the id") && text.contains("creds rotations"),
            "{text}"
        );

        // Watching stops at PROMOTED, before the stream's COMPLETED.
        let r = status::follow(
            &ctx,
            "riverflow-cred-3",
            KindArg::PartnerBasicAuth,
            crate::rollout::status::Mode::Lines,
        )
        .await
        .unwrap();
        assert_eq!(r.state, RotationState::Promoted as i32);
        assert!(status::outcome(&r).is_ok());

        // The secret arrives as given, and comes back as its fingerprint only.
        let secret = Secret::from_text(KNOWN).unwrap();
        let a = submit_args(&["submit", "riverflow", "--user", "tilewave"]);
        let req = ctx.request(submit_request(&a, Some(&secret)).unwrap()).unwrap();
        let c = ctx
            .credentials()
            .unwrap()
            .submit_credential(req)
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        assert_eq!(fake.seen.lock().unwrap().plaintexts, vec![KNOWN.to_owned()]);
        assert_eq!(c.fingerprint, tilewave_secrets::fingerprint("riverflow", &secret));
        let shown = render::submitted(&c);
        assert!(
            shown.contains(&c.fingerprint) && !shown.contains(KNOWN),
            "{shown}"
        );

        // Cancel names the rotation and the etag it read.
        let CredsCommand::Cancel(a) = parse(&["cancel", "riverflow", "--reason", "wrong password"]).unwrap()
        else {
            panic!()
        };
        cancel(a, &ctx).await.unwrap();
        assert_eq!(
            fake.seen.lock().unwrap().cancels,
            vec![("riverflow-cred-3".to_owned(), 42)]
        );

        // A schedule that exists already: say to pass its etag.
        let CredsCommand::Schedule(a) = parse(&[
            "schedule",
            "riverflow",
            "--every-days",
            "30",
            "--window",
            "02:00-04:00",
        ])
        .unwrap() else {
            panic!()
        };
        let err = schedule(a, &ctx).await.unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 3);
        assert!(err.to_string().contains("--etag"), "{err}");
    }
}
