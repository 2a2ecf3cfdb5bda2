//! The words the CLI uses for the API's enums and times, both ways: what a
//! user types (`--role partner-sa`, `--state signed-off`, `"2026-12-08
//! 17:00"`) and what the CLI prints (`SIGNED_OFF`, RFC 3339 in UTC).

use clap::ValueEnum;
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{Cloud, PartnerCategory, SignOffRole, TileState};

/// A sign-off role as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Databricks engineering: functional validation.
    Engineering,
    /// Partner solution architects: core integration (also spelled out,
    /// `partner-solution-architect`).
    #[value(name = "partner-sa", alias = "partner-solution-architect")]
    PartnerSa,
    /// Product: usability.
    Product,
    /// The partner itself.
    Partner,
    /// The legal partnership agreement is signed.
    Legal,
}

impl Role {
    /// The API's value.
    pub fn proto(self) -> SignOffRole {
        match self {
            Self::Engineering => SignOffRole::Engineering,
            Self::PartnerSa => SignOffRole::PartnerSolutionArchitect,
            Self::Product => SignOffRole::Product,
            Self::Partner => SignOffRole::Partner,
            Self::Legal => SignOffRole::Legal,
        }
    }
}

/// How a role is printed: the same word the command line takes.
pub fn role_name(role: i32) -> String {
    match SignOffRole::try_from(role) {
        Ok(SignOffRole::Engineering) => "engineering".into(),
        Ok(SignOffRole::PartnerSolutionArchitect) => "partner-sa".into(),
        Ok(SignOffRole::Product) => "product".into(),
        Ok(SignOffRole::Partner) => "partner".into(),
        Ok(SignOffRole::Legal) => "legal".into(),
        Ok(SignOffRole::Unspecified) => "unspecified".into(),
        Err(_) => format!("role-{role}"),
    }
}

/// A tile state as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum State {
    /// Imported or created; being prepared.
    Draft,
    /// Shown only in its test workspace while test cases run.
    Validating,
    /// All sign-offs recorded.
    SignedOff,
    /// A GA date is set.
    Scheduled,
    /// Being rolled out.
    RollingOut,
    /// Live everywhere, waiting for GA.
    RolledOut,
    /// Generally available.
    Ga,
    /// Removed everywhere.
    Withdrawn,
}

impl State {
    /// The API's value.
    pub fn proto(self) -> TileState {
        match self {
            Self::Draft => TileState::Draft,
            Self::Validating => TileState::Validating,
            Self::SignedOff => TileState::SignedOff,
            Self::Scheduled => TileState::Scheduled,
            Self::RollingOut => TileState::RollingOut,
            Self::RolledOut => TileState::RolledOut,
            Self::Ga => TileState::Ga,
            Self::Withdrawn => TileState::Withdrawn,
        }
    }
}

/// A cloud as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudArg {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Google Cloud.
    Gcp,
}

impl CloudArg {
    /// The API's value.
    pub fn proto(self) -> Cloud {
        match self {
            Self::Aws => Cloud::Aws,
            Self::Azure => Cloud::Azure,
            Self::Gcp => Cloud::Gcp,
        }
    }
}

/// A partner category as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Category {
    /// Ingest.
    Ingest,
    /// Data preparation and transformation.
    DataPrepAndTransform,
    /// Security and governance.
    SecurityAndGovernance,
    /// BI and visualisation.
    BiAndViz,
    /// Machine learning.
    Ml,
    /// Data quality.
    DataQuality,
    /// Reverse ETL.
    ReverseEtl,
    /// Semantic layer.
    SemanticLayer,
    /// Data governance.
    DataGovernance,
}

impl Category {
    /// The API's value.
    pub fn proto(self) -> PartnerCategory {
        match self {
            Self::Ingest => PartnerCategory::Ingest,
            Self::DataPrepAndTransform => PartnerCategory::DataPrepAndTransform,
            Self::SecurityAndGovernance => PartnerCategory::SecurityAndGovernance,
            Self::BiAndViz => PartnerCategory::BiAndViz,
            Self::Ml => PartnerCategory::Ml,
            Self::DataQuality => PartnerCategory::DataQuality,
            Self::ReverseEtl => PartnerCategory::ReverseEtl,
            Self::SemanticLayer => PartnerCategory::SemanticLayer,
            Self::DataGovernance => PartnerCategory::DataGovernance,
        }
    }
}

/// How a tile state is printed: `SIGNED_OFF`.
pub fn state_name(state: i32) -> String {
    TileState::try_from(state).map_or_else(|_| format!("STATE_{state}"), |s| s.short_name().to_owned())
}

/// How a cloud is printed: `gcp`.
pub fn cloud_name(cloud: i32) -> String {
    Cloud::try_from(cloud).map_or_else(|_| format!("cloud-{cloud}"), |c| kebab_name(&c))
}

/// `SOME_NAME` of an enum with a [`ShortName`] -> `some-name`.
pub fn kebab_name(value: &impl ShortName) -> String {
    value.short_name().to_ascii_lowercase().replace('_', "-")
}

/// `PREFIX_SOME_NAME` -> `some-name`: how the CLI prints most enum values.
pub fn kebab(proto_name: &str, prefix: &str) -> String {
    strip(proto_name, prefix).to_ascii_lowercase().replace('_', "-")
}

/// `some-name` -> `PREFIX_SOME_NAME`: the inverse of [`kebab`].
pub fn unkebab(word: &str, prefix: &str) -> String {
    format!(
        "{prefix}{}",
        word.trim().to_ascii_uppercase().replace(['-', ' '], "_")
    )
}

/// `name` without `prefix` (as is when it has none).
fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// Parses a moment: RFC 3339 with an offset ("2026-12-08T17:00:00Z",
/// "2026-12-08T18:00:00+01:00"), or a date and time without one
/// ("2026-12-08 17:00", "2026-12-08T17:00:30"), which is taken as UTC. A bare
/// date is refused: a GA moment needs a time of day.
pub fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let has_time = s.len() > 10 && s.contains(':');
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .ok()
        .filter(|_| has_time)
        .ok_or_else(|| {
            format!("{s:?} is not a time: use RFC 3339 (2026-12-08T17:00:00Z) or a UTC date and time (\"2026-12-08 17:00\")")
        })?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("{s:?} is out of range: {e}"))
}

/// A moment as the API carries it.
pub fn to_proto_time(ts: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    }
}

/// A moment from the API, printed as RFC 3339 in UTC; `None` when absent
/// or out of range.
pub fn format_time(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    jiff::Timestamp::new(ts.seconds, ts.nanos)
        .ok()
        .map(|t| t.to_string())
}

/// A moment for a table column: RFC 3339 in UTC to the second (JSON and
/// YAML keep the full precision of [`format_time`]).
pub fn short_time(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let t = jiff::Timestamp::new(ts.seconds, ts.nanos).ok()?;
    Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Parses a duration: one or more `<number><unit>` parts with units `d`,
/// `h`, `m`, `s` ("4h", "90m", "2h30m", "1d 12h"), or `0`. Negative and
/// empty durations are refused.
pub fn parse_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    let bad = || format!("{s:?} is not a duration: use e.g. 4h, 90m, 2h30m or 1d 12h");
    let text: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if text == "0" {
        return Ok(jiff::SignedDuration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut secs: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        secs = n
            .checked_mul(unit)
            .and_then(|v| secs.checked_add(v))
            .ok_or_else(|| format!("{s:?} is too long"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "{s:?} is not a duration: {number} needs a unit (d, h, m or s)"
        ));
    }
    Ok(jiff::SignedDuration::from_secs(secs))
}

/// A duration as the API carries it.
pub fn to_proto_duration(d: jiff::SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

/// A duration from the API.
pub fn from_proto_duration(d: &prost_types::Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::new(d.seconds, d.nanos)
}

/// A moment from the API; `None` when absent or out of range.
pub fn from_proto_time(ts: Option<&prost_types::Timestamp>) -> Option<jiff::Timestamp> {
    let ts = ts?;
    jiff::Timestamp::new(ts.seconds, ts.nanos).ok()
}

/// A moment as a status line shows it: `Sun 6 Dec 21:00 UTC`.
pub fn human_time(t: jiff::Timestamp) -> String {
    t.strftime("%a %-d %b %H:%M UTC").to_string()
}

/// A duration as a status line shows it: `5d 02h`, `4h 30m`, `45m`.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    tilewave_core::planner::format_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ok = [
            ("4h", 4 * 3600),
            ("90m", 90 * 60),
            ("2h30m", 2 * 3600 + 30 * 60),
            ("1d 12h", 36 * 3600),
            ("45s", 45),
            ("0", 0),
            (" 7d ", 7 * 86_400),
        ];
        for (input, secs) in ok {
            assert_eq!(parse_duration(input).map(|d| d.as_secs()), Ok(secs), "{input}");
        }
        for bad in ["", "4", "h", "-4h", "4x", "1.5h", "4 hours", "99999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        let d = parse_duration("2h30m").unwrap();
        assert_eq!(from_proto_duration(&to_proto_duration(d)), d);
        assert_eq!(human_duration(d), "2h 30m");
        let t = parse_time("2026-12-06 21:00").unwrap();
        assert_eq!(human_time(t), "Sun 6 Dec 21:00 UTC");
        assert_eq!(from_proto_time(Some(&to_proto_time(t))), Some(t));
    }

    #[test]
    fn times_parse_as_rfc3339_or_utc_civil() {
        let ok = [
            ("2026-12-08T17:00:00Z", "2026-12-08T17:00:00Z"),
            ("2026-12-08T18:00:00+01:00", "2026-12-08T17:00:00Z"),
            ("2026-12-08 17:00", "2026-12-08T17:00:00Z"),
            ("2026-12-08T17:00", "2026-12-08T17:00:00Z"),
            ("2026-12-08 17:00:30", "2026-12-08T17:00:30Z"),
        ];
        for (input, want) in ok {
            assert_eq!(
                parse_time(input).map(|t| t.to_string()),
                Ok(want.to_owned()),
                "{input}"
            );
        }
        for bad in ["2026-12-08", "tomorrow", "2026-13-01 10:00", "17:00", ""] {
            assert!(parse_time(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn times_round_trip_through_the_api() {
        let ts = parse_time("2026-12-08 17:00").unwrap();
        let p = to_proto_time(ts);
        assert_eq!(p.seconds, ts.as_second());
        assert_eq!(format_time(Some(&p)).as_deref(), Some("2026-12-08T17:00:00Z"));
        assert_eq!(format_time(None), None);
        let p = prost_types::Timestamp {
            seconds: p.seconds,
            nanos: 926_696_970,
        };
        assert_eq!(
            format_time(Some(&p)).as_deref(),
            Some("2026-12-08T17:00:00.92669697Z")
        );
        assert_eq!(short_time(Some(&p)).as_deref(), Some("2026-12-08T17:00:00Z"));
    }

    #[test]
    fn a_role_is_typed_short_or_spelled_out() {
        // (typed, role)
        let cases = [
            ("partner-sa", Role::PartnerSa),
            ("partner-solution-architect", Role::PartnerSa),
            ("engineering", Role::Engineering),
            ("legal", Role::Legal),
        ];
        for (typed, want) in cases {
            assert_eq!(<Role as ValueEnum>::from_str(typed, false), Ok(want), "{typed}");
        }
        assert!(<Role as ValueEnum>::from_str("partner-architect", false).is_err());
    }

    #[test]
    fn enum_names() {
        assert_eq!(state_name(TileState::SignedOff as i32), "SIGNED_OFF");
        assert_eq!(
            role_name(SignOffRole::PartnerSolutionArchitect as i32),
            "partner-sa"
        );
        assert_eq!(cloud_name(Cloud::Gcp as i32), "gcp");
        assert_eq!(
            kebab("PARTNER_CATEGORY_BI_AND_VIZ", "PARTNER_CATEGORY_"),
            "bi-and-viz"
        );
        assert_eq!(
            unkebab("bi-and-viz", "PARTNER_CATEGORY_"),
            "PARTNER_CATEGORY_BI_AND_VIZ"
        );
        assert_eq!(state_name(99), "STATE_99");
    }
}
