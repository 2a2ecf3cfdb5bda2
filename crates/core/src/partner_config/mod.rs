//! Partner Connect configs (docs/domain.md "Partner Connect configurations"): parsing and
//! validating both formats, the full PartnerConfig JSON and the self-test
//! `{"partner": {...}}` format, into typed models.
//!
//! Parsing walks a `serde_json::Value` instead of deriving `Deserialize`, so
//! that one pass reports *every* problem (missing fields, wrong JSON types,
//! unknown enum values, rule violations), each at its JSON path
//! (`$.endpoints.connect_path`, `$.supported_clouds[1]`). Malformed JSON is
//! one error with its line and column. Nothing here panics on any input.
//!
//! ```
//! use tilewave_core::partner_config::{parse_any, ParsedConfig};
//! let text = r#"{"partner": {"name": "Quarry", "category": "ML",
//!   "connect_url": "https://q.example/c", "sign_up_url": "https://q.example/s",
//!   "terms_of_service_url": "https://q.example/t", "privacy_policy_url": "https://q.example/p",
//!   "hostname": "q.example", "integration_type": "NO_INTEGRATION"}}"#;
//! let parsed = parse_any(text).unwrap();
//! assert!(matches!(parsed, ParsedConfig::SelfTest(_)));
//! ```

mod full;
mod model;
mod report;
mod rules;
mod self_test;
mod walk;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use model::{
    ApiVersion, AuthOption, Category, DataPermission, DataPermissionGrant, Endpoints, IntegrationType,
    NewUserAction, ObjectPermission, ObjectPermissionName, PartnerConfig, PermissionLevel,
    ResourceToProvision, ResourceType, SelfTestConfig, SupportedFeature, TestWorkspaceDetail, TrialType,
};
pub use report::{
    ConfigError, ConfigErrorKind, ConfigErrors, ConfigWarning, JsonPath, TextPosition, Validated,
};
pub use rules::{
    ICON_MIN_SIDE, ImageSizeError, LOGO_MAX_RATIO, LOGO_MIN_RATIO, MAX_NAME_CHARS, check_icon_size,
    check_logo_size, check_url,
};
pub use walk::WireEnum;

use report::Report;

/// Which of the two formats a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigFormat {
    /// The full PartnerConfig.
    Full,
    /// The self-test `{"partner": {...}}` format.
    SelfTest,
}

/// A validated config in either format.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedConfig {
    /// A full PartnerConfig (boxed, as both variants are large).
    Full(Box<Validated<PartnerConfig>>),
    /// A self-test tile config.
    SelfTest(Box<Validated<SelfTestConfig>>),
}

impl ParsedConfig {
    /// Which format it came in.
    pub fn format(&self) -> ConfigFormat {
        match self {
            ParsedConfig::Full(_) => ConfigFormat::Full,
            ParsedConfig::SelfTest(_) => ConfigFormat::SelfTest,
        }
    }

    /// The tile's display name.
    pub fn name(&self) -> &str {
        match self {
            ParsedConfig::Full(v) => &v.config.name,
            ParsedConfig::SelfTest(v) => &v.config.name,
        }
    }

    /// The catalog section.
    pub fn category(&self) -> Category {
        match self {
            ParsedConfig::Full(v) => v.config.category,
            ParsedConfig::SelfTest(v) => v.config.category,
        }
    }

    /// The redirect allow-list.
    pub fn hostnames(&self) -> &[String] {
        match self {
            ParsedConfig::Full(v) => &v.config.hostnames,
            ParsedConfig::SelfTest(v) => &v.config.hostnames,
        }
    }

    /// What validation warned about.
    pub fn warnings(&self) -> &[ConfigWarning] {
        match self {
            ParsedConfig::Full(v) => &v.warnings,
            ParsedConfig::SelfTest(v) => &v.warnings,
        }
    }
}

/// Parses text as JSON; malformed JSON is one error with line and column.
fn parse_json(text: &str) -> Result<Value, ConfigErrors> {
    serde_json::from_str(text).map_err(|e| {
        let position = TextPosition {
            line: e.line(),
            column: e.column(),
        };
        ConfigErrors {
            errors: vec![ConfigError {
                path: JsonPath::root(),
                kind: ConfigErrorKind::Syntax,
                message: format!("not valid JSON: {e}"),
                position: Some(position),
            }],
            warnings: Vec::new(),
        }
    })
}

/// The format of a parsed document: an object with a top-level `partner`
/// key is a self-test config; anything else is taken for a full config.
pub fn detect_format(doc: &Value) -> ConfigFormat {
    match doc {
        Value::Object(o) if o.contains_key(self_test::PARTNER_KEY) => ConfigFormat::SelfTest,
        Value::Object(_)
        | Value::Null
        | Value::Bool(_)
        | Value::Number(_)
        | Value::String(_)
        | Value::Array(_) => ConfigFormat::Full,
    }
}

fn root_object<'a>(doc: &'a Value, r: &mut Report) -> Option<&'a serde_json::Map<String, Value>> {
    walk::object(doc, &JsonPath::root(), r)
}

/// Validates a parsed document as a full PartnerConfig.
pub fn validate_partner_config(doc: &Value) -> Result<Validated<PartnerConfig>, ConfigErrors> {
    let mut r = Report::default();
    let config = root_object(doc, &mut r).and_then(|root| full::validate(root, &mut r));
    r.finish(config)
}

/// Validates a parsed document as a self-test config.
pub fn validate_self_test(doc: &Value) -> Result<Validated<SelfTestConfig>, ConfigErrors> {
    let mut r = Report::default();
    let config = root_object(doc, &mut r).and_then(|root| self_test::validate(root, &mut r));
    r.finish(config)
}

/// Parses and validates a full PartnerConfig.
pub fn parse_partner_config(text: &str) -> Result<Validated<PartnerConfig>, ConfigErrors> {
    validate_partner_config(&parse_json(text)?)
}

/// Parses and validates a self-test config.
pub fn parse_self_test(text: &str) -> Result<Validated<SelfTestConfig>, ConfigErrors> {
    validate_self_test(&parse_json(text)?)
}

/// Parses and validates a config in whichever format it is in (see
/// [`detect_format`]).
pub fn parse_any(text: &str) -> Result<ParsedConfig, ConfigErrors> {
    let doc = parse_json(text)?;
    match detect_format(&doc) {
        ConfigFormat::Full => validate_partner_config(&doc).map(|v| ParsedConfig::Full(Box::new(v))),
        ConfigFormat::SelfTest => validate_self_test(&doc).map(|v| ParsedConfig::SelfTest(Box::new(v))),
    }
}

/// Checks the pixel sizes of the logo and icon when the images are supplied
/// (`(width, height)`), reporting at `$.logo_file` and `$.icon_file`.
pub fn check_image_sizes(logo: Option<(u32, u32)>, icon: Option<(u32, u32)>) -> Result<(), ConfigErrors> {
    let mut r = Report::default();
    if let Some((w, h)) = logo
        && let Err(e) = check_logo_size(w, h)
    {
        r.invalid(&JsonPath::root().key("logo_file"), e.to_string());
    }
    if let Some((w, h)) = icon
        && let Err(e) = check_icon_size(w, h)
    {
        r.invalid(&JsonPath::root().key("icon_file"), e.to_string());
    }
    r.finish(Some(())).map(|_| ())
}
