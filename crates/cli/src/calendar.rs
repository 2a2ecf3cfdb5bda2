//! `tilewave calendar show|add-rule|add-blackout|add-slot|remove`: the launch
//! calendar (group launch days, blackout periods, one-off slots) that GA
//! dates are chosen on. Each edit reads the calendar, then changes one item
//! under the etag read (EditLaunchCalendar), so an item is never removed by
//! an index that moved.

use clap::Subcommand;
use serde::Serialize;
use tilewave_proto::common::v1::{LocalTime, Weekday};
use tilewave_proto::rollout::v1::edit_launch_calendar_request::Edit;
use tilewave_proto::rollout::v1::{
    CalendarItemKind, EditLaunchCalendarRequest, ExtraLaunchSlot, GetLaunchCalendarRequest,
    GetLaunchCalendarResponse, LaunchBlackout, LaunchCalendar, LaunchRule, RemoveCalendarItem,
};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{format_time, parse_time, short_time, to_proto_time};
use crate::output::{Table, structured};

/// Examples of `calendar show`.
const SHOW_EXAMPLES: &str = "\
Examples:
  tilewave calendar show
  tilewave calendar show --upcoming 10 -o json";

/// Examples of `calendar add-rule`.
const ADD_RULE_EXAMPLES: &str = "\
Examples:
  tilewave calendar add-rule --days tue --time 17:00 --tz UTC --capacity 5
  tilewave calendar add-rule --days tue,thu --time 17:00 --tz Europe/Berlin --capacity 3 --name \"EU launch\"";

/// Examples of `calendar add-blackout`.
const ADD_BLACKOUT_EXAMPLES: &str = "\
Examples:
  tilewave calendar add-blackout --from \"2026-12-21 00:00\" --to \"2027-01-04 00:00\" --reason \"year-end freeze\"
  tilewave calendar add-blackout --from 2026-11-26T00:00:00-05:00 --to 2026-11-28T00:00:00-05:00 --reason Thanksgiving";

/// Examples of `calendar add-slot`.
const ADD_SLOT_EXAMPLES: &str = "\
Examples:
  tilewave calendar add-slot --at \"2026-12-10 17:00\" --capacity 2
  tilewave calendar add-slot --at \"2026-12-10 17:00\" --capacity 2 --name \"partner summit\"";

/// Examples of `calendar remove`.
const REMOVE_EXAMPLES: &str = "\
Examples:
  tilewave calendar show            # the INDEX column
  tilewave calendar remove blackout 0
  tilewave calendar remove slot 2";

/// How many upcoming slots `show` and the edits list unless told.
const DEFAULT_UPCOMING: u32 = 5;

/// The calendar commands.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Show the launch rules, blackouts and one-off slots (with their
    /// indexes) and the next open launch slots.
    #[command(after_long_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Add a recurring group launch day (weekdays at a local time).
    #[command(after_long_help = ADD_RULE_EXAMPLES)]
    AddRule(AddRuleArgs),
    /// Add a blackout period: no tile goes GA inside it.
    #[command(after_long_help = ADD_BLACKOUT_EXAMPLES)]
    AddBlackout(AddBlackoutArgs),
    /// Add a one-off launch slot.
    #[command(after_long_help = ADD_SLOT_EXAMPLES)]
    AddSlot(AddSlotArgs),
    /// Remove a rule, blackout or one-off slot by its index (see `show`).
    #[command(after_long_help = REMOVE_EXAMPLES)]
    Remove(RemoveArgs),
}

impl CalendarCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Show(_) => "calendar show",
            Self::AddRule(_) => "calendar add-rule",
            Self::AddBlackout(_) => "calendar add-blackout",
            Self::AddSlot(_) => "calendar add-slot",
            Self::Remove(_) => "calendar remove",
        }
    }
}

/// Arguments of `calendar show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// List this many upcoming launch slots (0 to 100; within 8 weeks).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_UPCOMING,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub upcoming: u32,
}

/// Arguments of `calendar add-rule`.
#[derive(Debug, Clone, clap::Args)]
pub struct AddRuleArgs {
    /// The weekdays of the launch, comma-separated (mon, tue, ... sun).
    #[arg(long, value_name = "DAYS", value_delimiter = ',', required = true, value_parser = parse_weekday)]
    pub days: Vec<Weekday>,
    /// The local time of the launch on those days (HH:MM).
    #[arg(long, value_name = "HH:MM", value_parser = parse_local_time)]
    pub time: LocalTime,
    /// The IANA time zone of --time, e.g. UTC or America/New_York.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// At most this many tiles go GA in one launch.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub capacity: i32,
    /// A label shown in explanations (default: the days and time).
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
}

/// Arguments of `calendar add-blackout`.
#[derive(Debug, Clone, clap::Args)]
pub struct AddBlackoutArgs {
    /// The first moment inside the blackout (RFC 3339 or "YYYY-MM-DD HH:MM" UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: jiff::Timestamp,
    /// The first moment after it.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: jiff::Timestamp,
    /// Why: shown when a launch slot is skipped.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Arguments of `calendar add-slot`.
#[derive(Debug, Clone, clap::Args)]
pub struct AddSlotArgs {
    /// The GA moment (RFC 3339 or "YYYY-MM-DD HH:MM" UTC), in the future.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: jiff::Timestamp,
    /// At most this many tiles go GA then.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub capacity: i32,
    /// A label shown in explanations.
    #[arg(long, value_name = "TEXT", default_value = "one-off slot")]
    pub name: String,
}

/// What `calendar remove` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ItemKind {
    /// A launch rule.
    Rule,
    /// A blackout period.
    Blackout,
    /// A one-off slot.
    Slot,
}

/// Arguments of `calendar remove`.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoveArgs {
    /// Which list the item is in.
    #[arg(value_enum)]
    pub kind: ItemKind,
    /// Its index, as `calendar show` prints it.
    #[arg(value_name = "INDEX", value_parser = clap::value_parser!(i32).range(0..))]
    pub index: i32,
}

/// Short weekday names, Monday (wire 1) first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A weekday: `tue`, `Tuesday` (any case; at least three letters).
pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    let word = s.trim().to_ascii_lowercase();
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    FULL.iter()
        .position(|full| word.len() >= 3 && full.starts_with(&word))
        .and_then(|i| Weekday::try_from(i as i32 + 1).ok())
        .ok_or_else(|| format!("{s:?} is not a weekday: use mon, tue, wed, thu, fri, sat or sun"))
}

/// A local time of day: `17:00`.
pub fn parse_local_time(s: &str) -> Result<LocalTime, String> {
    let t: jiff::civil::Time = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a time of day: use HH:MM, e.g. 17:00"))?;
    Ok(LocalTime {
        hour: i32::from(t.hour()),
        minute: i32::from(t.minute()),
    })
}

/// How a wire weekday prints: `tue`.
fn day_name(d: i32) -> String {
    usize::try_from(d - 1)
        .ok()
        .and_then(|i| DAYS.get(i))
        .map_or_else(|| format!("day-{d}"), |s| (*s).to_owned())
}

/// `17:00`.
fn time_text(t: Option<&LocalTime>) -> String {
    t.map_or_else(String::new, |t| format!("{:02}:{:02}", t.hour, t.minute))
}

/// The edit a command asks for; `None` for `show`.
pub fn edit(cmd: &CalendarCommand) -> Result<Option<Edit>, CliError> {
    Ok(Some(match cmd {
        CalendarCommand::Show(_) => return Ok(None),
        CalendarCommand::AddRule(a) => {
            let days: Vec<String> = a.days.iter().map(|d| day_name(*d as i32)).collect();
            let time = Some(a.time);
            let name = a
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {} {}", days.join(","), time_text(time.as_ref()), a.tz));
            Edit::AddRule(LaunchRule {
                name,
                weekdays: a.days.iter().map(|d| *d as i32).collect(),
                time,
                time_zone: a.tz.clone(),
                capacity: a.capacity,
            })
        }
        CalendarCommand::AddBlackout(a) => {
            if a.reason.trim().is_empty() {
                return Err(CliError::usage(
                    "--reason: say why (\"Christmas\", \"year-end freeze\")",
                ));
            }
            if a.to <= a.from {
                return Err(CliError::usage(format!(
                    "--to ({}) must be after --from ({})",
                    a.to, a.from
                )));
            }
            Edit::AddBlackout(LaunchBlackout {
                start: Some(to_proto_time(a.from)),
                end: Some(to_proto_time(a.to)),
                reason: a.reason.clone(),
            })
        }
        CalendarCommand::AddSlot(a) => Edit::AddExtraSlot(ExtraLaunchSlot {
            at: Some(to_proto_time(a.at)),
            capacity: a.capacity,
            name: a.name.clone(),
        }),
        CalendarCommand::Remove(a) => Edit::Remove(RemoveCalendarItem {
            kind: match a.kind {
                ItemKind::Rule => CalendarItemKind::Rule,
                ItemKind::Blackout => CalendarItemKind::Blackout,
                ItemKind::Slot => CalendarItemKind::ExtraSlot,
            }
            .into(),
            index: a.index,
        }),
    }))
}

/// A launch rule, for JSON/YAML.
#[derive(Debug, Serialize)]
struct RuleView {
    index: usize,
    name: String,
    days: Vec<String>,
    time: String,
    time_zone: String,
    capacity: i32,
}

/// A blackout period, for JSON/YAML.
#[derive(Debug, Serialize)]
struct BlackoutView {
    index: usize,
    start: Option<String>,
    end: Option<String>,
    reason: String,
}

/// A one-off slot, for JSON/YAML.
#[derive(Debug, Serialize)]
struct ExtraSlotView {
    index: usize,
    at: Option<String>,
    capacity: i32,
    name: String,
}

/// An upcoming launch slot, for JSON/YAML.
#[derive(Debug, Serialize)]
struct UpcomingView {
    at: Option<String>,
    capacity: i32,
    source: String,
}

/// The calendar, for JSON/YAML.
#[derive(Debug, Serialize)]
struct CalendarView {
    rules: Vec<RuleView>,
    blackouts: Vec<BlackoutView>,
    extra_slots: Vec<ExtraSlotView>,
    upcoming: Vec<UpcomingView>,
    updated_by: String,
    updated_at: Option<String>,
    etag: i64,
}

fn view(resp: &GetLaunchCalendarResponse) -> CalendarView {
    let c = resp.calendar.clone().unwrap_or_default();
    CalendarView {
        rules: c
            .rules
            .iter()
            .enumerate()
            .map(|(index, r)| RuleView {
                index,
                name: r.name.clone(),
                days: r.weekdays.iter().map(|d| day_name(*d)).collect(),
                time: time_text(r.time.as_ref()),
                time_zone: r.time_zone.clone(),
                capacity: r.capacity,
            })
            .collect(),
        blackouts: c
            .blackouts
            .iter()
            .enumerate()
            .map(|(index, b)| BlackoutView {
                index,
                start: format_time(b.start.as_ref()),
                end: format_time(b.end.as_ref()),
                reason: b.reason.clone(),
            })
            .collect(),
        extra_slots: c
            .extra_slots
            .iter()
            .enumerate()
            .map(|(index, s)| ExtraSlotView {
                index,
                at: format_time(s.at.as_ref()),
                capacity: s.capacity,
                name: s.name.clone(),
            })
            .collect(),
        upcoming: resp
            .upcoming
            .iter()
            .map(|s| UpcomingView {
                at: format_time(s.at.as_ref()),
                capacity: s.capacity,
                source: s.source.clone(),
            })
            .collect(),
        updated_by: c.updated_by.clone(),
        updated_at: format_time(c.updated_at.as_ref()),
        etag: c.etag,
    }
}

/// A section: its title, then the table or `none`.
fn section(out: &mut String, title: &str, table: &Table, empty: &str) {
    out.push_str(title);
    out.push('\n');
    if table.rows.is_empty() {
        out.push_str("  ");
        out.push_str(empty);
        out.push('\n');
    } else {
        out.push_str(&table.render());
    }
}

/// The calendar as sections of tables.
pub fn render(resp: &GetLaunchCalendarResponse) -> String {
    let c: LaunchCalendar = resp.calendar.clone().unwrap_or_default();
    let t = |ts: Option<&prost_types::Timestamp>| short_time(ts).unwrap_or_else(|| "-".into());
    let mut rules = Table::new(&["INDEX", "NAME", "DAYS", "TIME", "ZONE", "CAPACITY"]);
    for (i, r) in c.rules.iter().enumerate() {
        let days: Vec<String> = r.weekdays.iter().map(|d| day_name(*d)).collect();
        rules.row(vec![
            i.to_string(),
            r.name.clone(),
            days.join(","),
            time_text(r.time.as_ref()),
            r.time_zone.clone(),
            r.capacity.to_string(),
        ]);
    }
    let mut blackouts = Table::new(&["INDEX", "FROM", "TO", "REASON"]);
    for (i, b) in c.blackouts.iter().enumerate() {
        blackouts.row(vec![
            i.to_string(),
            t(b.start.as_ref()),
            t(b.end.as_ref()),
            b.reason.clone(),
        ]);
    }
    let mut extra = Table::new(&["INDEX", "AT", "CAPACITY", "NAME"]);
    for (i, s) in c.extra_slots.iter().enumerate() {
        extra.row(vec![
            i.to_string(),
            t(s.at.as_ref()),
            s.capacity.to_string(),
            s.name.clone(),
        ]);
    }
    let mut upcoming = Table::new(&["AT", "CAPACITY", "FROM"]);
    for s in &resp.upcoming {
        upcoming.row(vec![t(s.at.as_ref()), s.capacity.to_string(), s.source.clone()]);
    }
    let mut out = String::new();
    section(
        &mut out,
        "LAUNCH RULES",
        &rules,
        "none: add one with `tilewave calendar add-rule --days tue --time 17:00 --capacity 5`",
    );
    section(&mut out, "BLACKOUTS", &blackouts, "none");
    section(&mut out, "ONE-OFF SLOTS", &extra, "none");
    section(&mut out, "UPCOMING SLOTS", &upcoming, "none in the next 8 weeks");
    out
}

/// Runs a calendar command: reads the calendar, applies the edit (if any)
/// under the etag read, and prints the calendar as it now is.
pub async fn run(cmd: CalendarCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let upcoming = match &cmd {
        CalendarCommand::Show(a) => a.upcoming,
        _ => DEFAULT_UPCOMING,
    };
    let edit = edit(&cmd)?;
    let mut client = ctx.rollouts()?;
    let read = || GetLaunchCalendarRequest {
        upcoming: i32::try_from(upcoming).unwrap_or(i32::MAX),
    };
    let mut resp = rpc(
        "GetLaunchCalendar",
        client.get_launch_calendar(ctx.request(read())?).await,
    )?;
    if let Some(edit) = edit {
        let etag = resp.calendar.as_ref().map_or(0, |c| c.etag);
        let req = EditLaunchCalendarRequest {
            etag,
            edit: Some(edit),
        };
        rpc(
            "EditLaunchCalendar",
            client.edit_launch_calendar(ctx.request(req)?).await,
        )?;
        resp = rpc(
            "GetLaunchCalendar",
            client.get_launch_calendar(ctx.request(read())?).await,
        )?;
    }
    if let Some(text) = structured(ctx.format, &view(&resp))? {
        return out(&text);
    }
    out(&render(&resp))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use tilewave_proto::rollout::v1::LaunchSlot;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<CalendarCommand, clap::Error> {
        let argv = ["tilewave", "calendar"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Calendar(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn edits_from_argv() {
        let cmd = parse(&[
            "add-rule",
            "--days",
            "tue,Thursday",
            "--time",
            "17:00",
            "--tz",
            "Europe/Berlin",
            "--capacity",
            "5",
        ])
        .unwrap();
        let Some(Edit::AddRule(r)) = edit(&cmd).unwrap() else {
            panic!("{cmd:?}")
        };
        assert_eq!(r.weekdays, [Weekday::Tuesday as i32, Weekday::Thursday as i32]);
        assert_eq!(r.time, Some(LocalTime { hour: 17, minute: 0 }));
        assert_eq!((r.time_zone.as_str(), r.capacity), ("Europe/Berlin", 5));
        assert_eq!(r.name, "tue,thu 17:00 Europe/Berlin");

        let cmd = parse(&[
            "add-blackout",
            "--from",
            "2026-12-21 00:00",
            "--to",
            "2027-01-04 00:00",
            "--reason",
            "year-end",
        ])
        .unwrap();
        let Some(Edit::AddBlackout(b)) = edit(&cmd).unwrap() else {
            panic!("{cmd:?}")
        };
        assert_eq!(b.reason, "year-end");
        assert!(b.start.is_some() && b.end.is_some());

        let cmd = parse(&["add-slot", "--at", "2026-12-10 17:00", "--capacity", "2"]).unwrap();
        let Some(Edit::AddExtraSlot(s)) = edit(&cmd).unwrap() else {
            panic!("{cmd:?}")
        };
        assert_eq!((s.capacity, s.name.as_str()), (2, "one-off slot"));

        let cmd = parse(&["remove", "slot", "2"]).unwrap();
        assert_eq!(
            edit(&cmd).unwrap(),
            Some(Edit::Remove(RemoveCalendarItem {
                kind: CalendarItemKind::ExtraSlot.into(),
                index: 2
            }))
        );
        assert_eq!(edit(&parse(&["show"]).unwrap()).unwrap(), None);
    }

    #[test]
    fn bad_argv_is_refused_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["add-rule", "--days", "tus", "--time", "17:00", "--capacity", "5"],
                "--days",
            ),
            (
                &["add-rule", "--days", "tue", "--time", "5pm", "--capacity", "5"],
                "--time",
            ),
            (
                &["add-rule", "--days", "tue", "--time", "17:00", "--capacity", "0"],
                "--capacity",
            ),
            (&["add-slot", "--at", "soon", "--capacity", "1"], "--at"),
            (&["remove", "holiday", "0"], "holiday"),
            (&["remove", "rule", "-1"], "INDEX"),
            (&["show", "--upcoming", "101"], "--upcoming"),
        ];
        for (args, flag) in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(flag), "{args:?}: {e}");
        }
        let backwards = parse(&[
            "add-blackout",
            "--from",
            "2027-01-04 00:00",
            "--to",
            "2026-12-21 00:00",
            "--reason",
            "x",
        ])
        .unwrap();
        let e = edit(&backwards).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--to"), "{e}");
    }

    #[test]
    fn rendering() {
        let resp = GetLaunchCalendarResponse {
            calendar: Some(LaunchCalendar {
                rules: vec![LaunchRule {
                    name: "Tuesday group launch".into(),
                    weekdays: vec![Weekday::Tuesday as i32],
                    time: Some(LocalTime { hour: 17, minute: 0 }),
                    time_zone: "UTC".into(),
                    capacity: 5,
                }],
                ..Default::default()
            }),
            upcoming: vec![LaunchSlot {
                at: Some(to_proto_time("2026-12-08T17:00:00Z".parse().unwrap())),
                capacity: 5,
                source: "Tuesday group launch".into(),
                booked: 0,
            }],
        };
        assert_eq!(
            render(&resp),
            "LAUNCH RULES\n\
             INDEX  NAME                  DAYS  TIME   ZONE  CAPACITY\n\
             0      Tuesday group launch  tue   17:00  UTC   5\n\
             BLACKOUTS\n  none\n\
             ONE-OFF SLOTS\n  none\n\
             UPCOMING SLOTS\n\
             AT                    CAPACITY  FROM\n\
             2026-12-08T17:00:00Z  5         Tuesday group launch\n"
        );
        let v = serde_json::to_value(view(&resp)).unwrap();
        assert_eq!(v["rules"][0]["days"][0], "tue");
        assert_eq!(v["upcoming"][0]["at"], "2026-12-08T17:00:00Z");
    }
}
