//! The self-test tile format, `{"partner": {...}}`: a tile visible only in
//! the partner's own workspace. Same rules as the full format where the
//! fields overlap; `hostname` is one comma-separated string; with NON_ADMIN,
//! AUTH_OAUTH_M2M falls back to AUTH_PAT (valid, normalised, with a warning).

use serde_json::{Map, Value};

use super::full::{auth_options, opt_field, req_ruled, req_url, ruled};
use super::model::{SelfTestConfig, SupportedFeature};
use super::report::{JsonPath, Report};
use super::rules;
use super::walk::{array, each, object, required, string, warn_unknown_keys, wire_enum};

/// The key that marks the self-test format.
pub(crate) const PARTNER_KEY: &str = "partner";

const FIELDS: &[&str] = &[
    "name",
    "category",
    "connect_url",
    "sign_up_url",
    "delete_url",
    "terms_of_service_url",
    "privacy_policy_url",
    "hostname",
    "supported_features",
    "integration_type",
    "auth_options",
];

/// Splits and checks the comma-separated `hostname`.
fn hostnames(s: &str, path: &JsonPath, r: &mut Report) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, h) in s.split(',').map(str::trim).enumerate() {
        if h.is_empty() && s.trim().is_empty() {
            r.invalid(path, "hostname must name at least one host");
            return None;
        }
        match rules::check_hostname(h) {
            Ok(()) => out.push(h.to_string()),
            Err(msg) => {
                r.invalid(path, format!("host {} of the comma-separated list: {msg}", i + 1));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Validates a whole self-test document (the root holding `partner`).
pub(crate) fn validate(root: &Map<String, Value>, r: &mut Report) -> Option<SelfTestConfig> {
    let root_path = JsonPath::root();
    warn_unknown_keys(root, &root_path, &[PARTNER_KEY], r);
    let p = root_path.key(PARTNER_KEY);
    let obj = object(required(root, &root_path, PARTNER_KEY, r)?, &p, r)?;
    warn_unknown_keys(obj, &p, FIELDS, r);

    let name = req_ruled(obj, &p, "name", r, |s| rules::check_name(s).map(str::to_string));
    let category = required(obj, &p, "category", r).and_then(|v| wire_enum(v, &p.key("category"), r));
    let connect_url = req_url(obj, &p, "connect_url", r);
    let sign_up_url = req_url(obj, &p, "sign_up_url", r);
    let delete_url = opt_field(obj, &p, "delete_url", r, |v, p, r| {
        ruled(string(v, p, r), p, r, |s| {
            rules::check_url(s).map(|()| s.to_string())
        })
    });
    if matches!(delete_url, Some(None)) {
        r.warn(
            &p.key("delete_url"),
            "delete_url is missing: the Partner Connect API spec requires the delete-connection endpoint",
        );
    }
    let terms_of_service_url = req_url(obj, &p, "terms_of_service_url", r);
    let privacy_policy_url = req_url(obj, &p, "privacy_policy_url", r);
    let hostp = p.key("hostname");
    let hostnames = required(obj, &p, "hostname", r)
        .and_then(|v| string(v, &hostp, r))
        .and_then(|s| hostnames(s, &hostp, r));
    let supported_features = opt_field(obj, &p, "supported_features", r, |v, p, r| {
        let items = array(v, p, r)?;
        each(items, p, r, wire_enum::<SupportedFeature>)
    });
    let integration_type =
        required(obj, &p, "integration_type", r).and_then(|v| wire_enum(v, &p.key("integration_type"), r));
    let non_admin = supported_features
        .as_ref()
        .and_then(|f| f.as_ref())
        .is_some_and(|f| f.contains(&SupportedFeature::NonAdmin));
    let auth_options = opt_field(obj, &p, "auth_options", r, |v, p, r| {
        auth_options(v, p, non_admin, r)
    });

    Some(SelfTestConfig {
        name: name?,
        category: category?,
        connect_url: connect_url?,
        sign_up_url: sign_up_url?,
        delete_url: delete_url?,
        terms_of_service_url: terms_of_service_url?,
        privacy_policy_url: privacy_policy_url?,
        hostnames: hostnames?,
        supported_features: supported_features?.unwrap_or_default(),
        integration_type: integration_type?,
        auth_options: auth_options?,
    })
}
