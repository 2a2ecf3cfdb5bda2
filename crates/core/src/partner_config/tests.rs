//! Tests of both config formats: the shared fixtures, one table-driven case
//! pair (valid, invalid) per validation rule, and property tests that no
//! input panics the parser.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::regions::Cloud;

const INVALID: &str = include_str!("../../tests/fixtures/partner-connect/invalid-several-errors.json");
const INVALID_EXPECTED: &str =
    include_str!("../../tests/fixtures/partner-connect/invalid-several-errors.expected");
const LUMEN: &str = include_str!("../../tests/fixtures/partner-connect/lumen-bi.json");
const RIVERFLOW: &str = include_str!("../../tests/fixtures/partner-connect/riverflow-ingest.json");
const QUARRY: &str = include_str!("../../tests/fixtures/partner-connect/self-test-quarry.json");

fn doc(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `base` with the value at JSON pointer `at` replaced (`Some`) or removed
/// (`None`).
fn edit(base: &Value, at: &str, to: Option<Value>) -> Value {
    let mut d = base.clone();
    let (parent, key) = at.rsplit_once('/').unwrap();
    let parent = d
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no parent at {at}"));
    match (parent, to) {
        (Value::Object(o), Some(v)) => {
            o.insert(key.to_string(), v);
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Array(a), Some(v)) => a[key.parse::<usize>().unwrap()] = v,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().unwrap());
        }
        (other, _) => panic!("cannot edit inside {other}"),
    }
    d
}

fn error_paths(r: &Result<impl std::fmt::Debug, ConfigErrors>) -> Vec<String> {
    match r {
        Ok(_) => vec![],
        Err(e) => e.errors.iter().map(|e| e.path.to_string()).collect(),
    }
}

#[test]
fn the_broken_fixture_yields_exactly_the_eleven_expected_paths() {
    let want: Vec<&str> = INVALID_EXPECTED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(want.len(), 11);
    let err = parse_any(INVALID).unwrap_err();
    let got = err.paths();
    assert_eq!(got.len(), 11, "{err}");
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        want.iter().copied().collect::<BTreeSet<_>>(),
        "{err}"
    );
    // The same through the explicit entry point, and the missing
    // delete_connection_path is a warning, not one of the errors.
    assert_eq!(parse_partner_config(INVALID).unwrap_err(), err);
    assert!(
        err.warnings
            .iter()
            .any(|w| w.path.as_str() == "$.endpoints.delete_connection_path")
    );
}

#[test]
fn the_broken_fixture_errors_are_typed_and_explained() {
    let err = parse_any(INVALID).unwrap_err();
    let kind_of = |p: &str| err.errors.iter().find(|e| e.path.as_str() == p).map(|e| e.kind);
    assert_eq!(kind_of("$.category"), Some(ConfigErrorKind::UnknownValue));
    assert_eq!(
        kind_of("$.supported_clouds[1]"),
        Some(ConfigErrorKind::UnknownValue)
    );
    assert_eq!(
        kind_of("$.endpoints.connect_path"),
        Some(ConfigErrorKind::Missing)
    );
    assert_eq!(kind_of("$.hostnames"), Some(ConfigErrorKind::Invalid));
    let text = err.to_string();
    assert!(text.starts_with("11 errors in the partner config"), "{text}");
    assert!(
        text.contains("unknown cloud \"oracle\"; expected one of aws, azure, gcp"),
        "{text}"
    );
    assert!(text.contains("STREAMING"), "{text}");
}

#[test]
fn the_good_fixtures_parse() {
    let lumen = parse_any(LUMEN).unwrap();
    assert_eq!(lumen.format(), ConfigFormat::Full);
    assert_eq!(lumen.name(), "Lumen Dashboards");
    assert_eq!(lumen.warnings(), &[]);
    let ParsedConfig::Full(lumen) = lumen else {
        unreachable!()
    };
    assert_eq!(lumen.config.supported_clouds, vec![Cloud::Azure]);
    assert_eq!(lumen.config.effective_auth_options(), vec![AuthOption::AuthPat]);
    assert_eq!(lumen.config.data_permissions.len(), 4);

    let ParsedConfig::Full(river) = parse_any(RIVERFLOW).unwrap() else {
        panic!("full format")
    };
    let c = &river.config;
    assert_eq!(c.api_version.to_string(), "2.1.0");
    assert_eq!(c.category, Category::Ingest);
    assert_eq!(c.supported_clouds, Cloud::ALL.to_vec());
    assert_eq!(
        c.object_permissions,
        vec![ObjectPermission {
            name: ObjectPermissionName::SqlEndpoint,
            level: PermissionLevel::CanUse
        }]
    );
    assert_eq!(c.trial_type, Some(TrialType::Account));
    assert_eq!(c.effective_auth_options(), vec![AuthOption::AuthOauthM2m]);
    assert_eq!(river.warnings, vec![]);

    let ParsedConfig::SelfTest(q) = parse_any(QUARRY).unwrap() else {
        panic!("self-test format")
    };
    assert_eq!(q.config.hostnames, vec!["quarry.example", "eu.quarry.example"]);
    assert_eq!(q.config.integration_type, IntegrationType::WarehouseReadWrite);
    assert!(!q.config.non_admin());
    assert_eq!(q.warnings, vec![]);
}

#[test]
fn a_full_config_serialises_back_to_an_equal_config() {
    for text in [LUMEN, RIVERFLOW] {
        let a = parse_partner_config(text).unwrap().config;
        let again = serde_json::to_string(&a).unwrap();
        assert_eq!(parse_partner_config(&again).unwrap().config, a, "{again}");
    }
}

/// (what, pointer, new value or None to remove, the error path or None when
/// the edit is valid). Each rule has a valid and an invalid case.
type Case = (&'static str, &'static str, Option<Value>, Option<&'static str>);

fn full_cases() -> Vec<Case> {
    vec![
        // name: non-empty after trimming, at most 100 characters
        ("name ok", "/name", Some(json!("  X  ")), None),
        ("name blank", "/name", Some(json!("   ")), Some("$.name")),
        ("name 100", "/name", Some(json!("n".repeat(100))), None),
        ("name 101", "/name", Some(json!("n".repeat(101))), Some("$.name")),
        ("name missing", "/name", None, Some("$.name")),
        ("name number", "/name", Some(json!(7)), Some("$.name")),
        // api_version: major.minor.patch, digits only
        ("api ok", "/api_version", Some(json!("10.0.12")), None),
        (
            "api two parts",
            "/api_version",
            Some(json!("2.1")),
            Some("$.api_version"),
        ),
        (
            "api letters",
            "/api_version",
            Some(json!("2.1.x")),
            Some("$.api_version"),
        ),
        (
            "api sign",
            "/api_version",
            Some(json!("2.+1.0")),
            Some("$.api_version"),
        ),
        (
            "api v prefix",
            "/api_version",
            Some(json!("v2.1.0")),
            Some("$.api_version"),
        ),
        // URLs: https, http only for localhost
        (
            "base https",
            "/base_url",
            Some(json!("https://a.example:8443/x")),
            None,
        ),
        (
            "base localhost",
            "/base_url",
            Some(json!("http://localhost:8080")),
            None,
        ),
        (
            "base http",
            "/base_url",
            Some(json!("http://a.example")),
            Some("$.base_url"),
        ),
        (
            "base ftp",
            "/base_url",
            Some(json!("ftp://a.example")),
            Some("$.base_url"),
        ),
        (
            "base relative",
            "/base_url",
            Some(json!("/pc")),
            Some("$.base_url"),
        ),
        (
            "base no host",
            "/base_url",
            Some(json!("https://")),
            Some("$.base_url"),
        ),
        (
            "base bad port",
            "/base_url",
            Some(json!("https://a.example:99999")),
            Some("$.base_url"),
        ),
        (
            "sign up http",
            "/sign_up_page",
            Some(json!("http://x.example")),
            Some("$.sign_up_page"),
        ),
        (
            "privacy ok",
            "/privacy_policy",
            Some(json!("https://x.example/p?q=1")),
            None,
        ),
        (
            "privacy space",
            "/privacy_policy",
            Some(json!("https://x.example/a b")),
            Some("$.privacy_policy"),
        ),
        (
            "terms missing",
            "/terms_of_service",
            None,
            Some("$.terms_of_service"),
        ),
        // endpoint paths start with '/'; connect_path required
        ("connect ok", "/endpoints/connect_path", Some(json!("/c")), None),
        (
            "connect relative",
            "/endpoints/connect_path",
            Some(json!("c")),
            Some("$.endpoints.connect_path"),
        ),
        (
            "connect missing",
            "/endpoints/connect_path",
            None,
            Some("$.endpoints.connect_path"),
        ),
        (
            "connectors ok",
            "/endpoints/get_connectors_path",
            Some(json!("/k")),
            None,
        ),
        (
            "connectors relative",
            "/endpoints/get_connectors_path",
            Some(json!("k")),
            Some("$.endpoints.get_connectors_path"),
        ),
        (
            "delete account relative",
            "/endpoints/delete_account_path",
            Some(json!("x/")),
            Some("$.endpoints.delete_account_path"),
        ),
        (
            "expire account relative",
            "/endpoints/expire_account_path",
            Some(json!("")),
            Some("$.endpoints.expire_account_path"),
        ),
        (
            "delete connection missing warns only",
            "/endpoints/delete_connection_path",
            None,
            None,
        ),
        (
            "endpoints not object",
            "/endpoints",
            Some(json!(["/c"])),
            Some("$.endpoints"),
        ),
        // supported_clouds: not empty, known clouds
        ("clouds one", "/supported_clouds", Some(json!(["gcp"])), None),
        (
            "clouds empty",
            "/supported_clouds",
            Some(json!([])),
            Some("$.supported_clouds"),
        ),
        (
            "cloud unknown",
            "/supported_clouds/1",
            Some(json!("AWS")),
            Some("$.supported_clouds[1]"),
        ),
        (
            "cloud not string",
            "/supported_clouds/2",
            Some(json!(3)),
            Some("$.supported_clouds[2]"),
        ),
        // hostnames: not empty, bare
        (
            "hosts ok",
            "/hostnames",
            Some(json!(["a.example", "b-2.example"])),
            None,
        ),
        ("hosts empty", "/hostnames", Some(json!([])), Some("$.hostnames")),
        (
            "host scheme",
            "/hostnames/1",
            Some(json!("https://a.example")),
            Some("$.hostnames[1]"),
        ),
        (
            "host path",
            "/hostnames/0",
            Some(json!("a.example/cb")),
            Some("$.hostnames[0]"),
        ),
        (
            "host port",
            "/hostnames/0",
            Some(json!("a.example:443")),
            Some("$.hostnames[0]"),
        ),
        (
            "host bad label",
            "/hostnames/0",
            Some(json!("-a.example")),
            Some("$.hostnames[0]"),
        ),
        (
            "hosts not array",
            "/hostnames",
            Some(json!("a.example")),
            Some("$.hostnames"),
        ),
        // logo/icon: .png or .svg
        ("logo svg", "/logo_file", Some(json!("l.SVG")), None),
        (
            "logo gif",
            "/logo_file",
            Some(json!("l.gif")),
            Some("$.logo_file"),
        ),
        (
            "logo bare ext",
            "/logo_file",
            Some(json!(".png")),
            Some("$.logo_file"),
        ),
        ("icon png", "/icon_file", Some(json!("dir/i.png")), None),
        (
            "icon jpg",
            "/icon_file",
            Some(json!("i.jpg")),
            Some("$.icon_file"),
        ),
        // enums
        ("category ok", "/category", Some(json!("SEMANTIC_LAYER")), None),
        (
            "category lower",
            "/category",
            Some(json!("ingest")),
            Some("$.category"),
        ),
        (
            "resource ok",
            "/resources_to_provision/0/resource_type",
            Some(json!("DestLocation")),
            None,
        ),
        (
            "resource unknown",
            "/resources_to_provision/1/resource_type",
            Some(json!("GPUCluster")),
            Some("$.resources_to_provision[1].resource_type"),
        ),
        (
            "resource missing",
            "/resources_to_provision/0/resource_type",
            None,
            Some("$.resources_to_provision[0].resource_type"),
        ),
        (
            "data permission all",
            "/data_permissions/0/permission",
            Some(json!("ALL PRIVILEGES")),
            None,
        ),
        (
            "data permission unknown",
            "/data_permissions/3/permission",
            Some(json!("DROP")),
            Some("$.data_permissions[3].permission"),
        ),
        (
            "object level ok",
            "/object_permissions/0/level",
            Some(json!("CAN_MANAGE")),
            None,
        ),
        (
            "object level unknown",
            "/object_permissions/0/level",
            Some(json!("CAN_FLY")),
            Some("$.object_permissions[0].level"),
        ),
        (
            "object name unknown",
            "/object_permissions/0/name",
            Some(json!("Dashboard")),
            Some("$.object_permissions[0].name"),
        ),
        ("new user ok", "/new_user_action", Some(json!("not_found")), None),
        (
            "new user unknown",
            "/new_user_action",
            Some(json!("ignore")),
            Some("$.new_user_action"),
        ),
        (
            "new user missing",
            "/new_user_action",
            None,
            Some("$.new_user_action"),
        ),
        ("trial ok", "/trial_type", Some(json!("user")), None),
        (
            "trial unknown",
            "/trial_type",
            Some(json!("team")),
            Some("$.trial_type"),
        ),
        ("trial null is absent", "/trial_type", Some(Value::Null), None),
        // booleans
        ("demo bool", "/supports_demo", Some(json!(false)), None),
        (
            "demo string",
            "/supports_demo",
            Some(json!("yes")),
            Some("$.supports_demo"),
        ),
        (
            "published string",
            "/is_published_app",
            Some(json!(1)),
            Some("$.is_published_app"),
        ),
        // auth_options: at most one of AUTH_PAT and AUTH_OAUTH_M2M
        (
            "auth pat + u2m",
            "/auth_options",
            Some(json!(["AUTH_PAT", "AUTH_OAUTH_U2M"])),
            None,
        ),
        (
            "auth m2m + u2m",
            "/auth_options",
            Some(json!(["AUTH_OAUTH_M2M", "AUTH_OAUTH_U2M"])),
            None,
        ),
        (
            "auth pat + m2m",
            "/auth_options",
            Some(json!(["AUTH_OAUTH_M2M", "AUTH_PAT"])),
            Some("$.auth_options"),
        ),
        (
            "auth unknown",
            "/auth_options",
            Some(json!(["AUTH_PAT", "AUTH_SAML"])),
            Some("$.auth_options[1]"),
        ),
        ("auth absent", "/auth_options", None, None),
        // test_workspace_detail
        (
            "workspace detail ok",
            "/test_workspace_detail",
            Some(json!({"hostname": "w.example", "port": 443, "http_path": "/sql/1"})),
            None,
        ),
        (
            "workspace detail bad port",
            "/test_workspace_detail",
            Some(json!({"port": 70000})),
            Some("$.test_workspace_detail.port"),
        ),
        // unknown fields are warnings
        ("unknown field", "/colour", Some(json!("blue")), None),
    ]
}

fn run_cases(base: &Value, cases: Vec<Case>, validate: impl Fn(&Value) -> Vec<String>) -> usize {
    let n = cases.len();
    for (what, at, to, want) in cases {
        let got = validate(&edit(base, at, to));
        let want: Vec<String> = want.into_iter().map(str::to_string).collect();
        assert_eq!(got, want, "{what}");
    }
    n
}

#[test]
fn every_full_format_rule_accepts_and_refuses() {
    let base = doc(RIVERFLOW);
    let n = run_cases(&base, full_cases(), |d| error_paths(&validate_partner_config(d)));
    assert!(n >= 70);
}

fn self_test_cases() -> Vec<Case> {
    vec![
        ("name ok", "/partner/name", Some(json!("Q")), None),
        (
            "name blank",
            "/partner/name",
            Some(json!("")),
            Some("$.partner.name"),
        ),
        (
            "name long",
            "/partner/name",
            Some(json!("q".repeat(101))),
            Some("$.partner.name"),
        ),
        (
            "category unknown",
            "/partner/category",
            Some(json!("GAMES")),
            Some("$.partner.category"),
        ),
        (
            "connect localhost",
            "/partner/connect_url",
            Some(json!("http://localhost/c")),
            None,
        ),
        (
            "connect http",
            "/partner/connect_url",
            Some(json!("http://q.example/c")),
            Some("$.partner.connect_url"),
        ),
        (
            "sign up missing",
            "/partner/sign_up_url",
            None,
            Some("$.partner.sign_up_url"),
        ),
        ("delete missing warns only", "/partner/delete_url", None, None),
        (
            "delete ftp",
            "/partner/delete_url",
            Some(json!("ftp://q.example")),
            Some("$.partner.delete_url"),
        ),
        (
            "tos bad",
            "/partner/terms_of_service_url",
            Some(json!("tos")),
            Some("$.partner.terms_of_service_url"),
        ),
        (
            "privacy bad",
            "/partner/privacy_policy_url",
            Some(json!(["https://q.example"])),
            Some("$.partner.privacy_policy_url"),
        ),
        (
            "hostname one",
            "/partner/hostname",
            Some(json!("q.example")),
            None,
        ),
        (
            "hostname spaces",
            "/partner/hostname",
            Some(json!("q.example , r.example")),
            None,
        ),
        (
            "hostname empty",
            "/partner/hostname",
            Some(json!("")),
            Some("$.partner.hostname"),
        ),
        (
            "hostname empty item",
            "/partner/hostname",
            Some(json!("a.example,,b.example")),
            Some("$.partner.hostname"),
        ),
        (
            "hostname scheme",
            "/partner/hostname",
            Some(json!("https://q.example")),
            Some("$.partner.hostname"),
        ),
        (
            "hostname array",
            "/partner/hostname",
            Some(json!(["q.example"])),
            Some("$.partner.hostname"),
        ),
        (
            "features empty",
            "/partner/supported_features",
            Some(json!([])),
            None,
        ),
        (
            "feature unknown",
            "/partner/supported_features/1",
            Some(json!("GPU")),
            Some("$.partner.supported_features[1]"),
        ),
        (
            "integration ok",
            "/partner/integration_type",
            Some(json!("NO_INTEGRATION")),
            None,
        ),
        (
            "integration unknown",
            "/partner/integration_type",
            Some(json!("ETL")),
            Some("$.partner.integration_type"),
        ),
        (
            "integration missing",
            "/partner/integration_type",
            None,
            Some("$.partner.integration_type"),
        ),
        (
            "auth m2m",
            "/partner/auth_options",
            Some(json!(["AUTH_OAUTH_M2M"])),
            None,
        ),
        (
            "auth pat + m2m",
            "/partner/auth_options",
            Some(json!(["AUTH_PAT", "AUTH_OAUTH_M2M"])),
            Some("$.partner.auth_options"),
        ),
        (
            "partner not object",
            "/partner",
            Some(json!("Quarry")),
            Some("$.partner"),
        ),
    ]
}

#[test]
fn every_self_test_rule_accepts_and_refuses() {
    let base = doc(QUARRY);
    let n = run_cases(&base, self_test_cases(), |d| error_paths(&validate_self_test(d)));
    assert!(n >= 25);
}

#[test]
fn non_admin_m2m_falls_back_to_pat_and_is_normalised() {
    let base = edit(
        &doc(QUARRY),
        "/partner/supported_features",
        Some(json!(["NON_ADMIN"])),
    );
    for given in [json!(["AUTH_OAUTH_M2M"]), json!(["AUTH_PAT", "AUTH_OAUTH_M2M"])] {
        let d = edit(&base, "/partner/auth_options", Some(given.clone()));
        let v = validate_self_test(&d).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(v.config.auth_options, Some(vec![AuthOption::AuthPat]), "{given}");
        assert!(v.config.non_admin());
        assert!(
            v.warnings
                .iter()
                .any(|w| w.path.as_str() == "$.partner.auth_options"),
            "{:?}",
            v.warnings
        );
    }
    let d = edit(
        &base,
        "/partner/auth_options",
        Some(json!(["AUTH_OAUTH_M2M", "AUTH_OAUTH_U2M"])),
    );
    assert_eq!(
        validate_self_test(&d).unwrap().config.auth_options,
        Some(vec![AuthOption::AuthPat, AuthOption::AuthOauthU2m])
    );
}

#[test]
fn missing_delete_paths_warn() {
    let d = edit(&doc(LUMEN), "/endpoints/delete_connection_path", None);
    let v = validate_partner_config(&d).unwrap();
    assert_eq!(v.warnings.len(), 1);
    assert_eq!(v.warnings[0].path.as_str(), "$.endpoints.delete_connection_path");
    let d = edit(&doc(QUARRY), "/partner/delete_url", None);
    let v = validate_self_test(&d).unwrap();
    assert_eq!(v.warnings[0].path.as_str(), "$.partner.delete_url");
}

#[test]
fn every_missing_required_field_is_reported_at_once() {
    let err = parse_any("{}").unwrap_err();
    let want = [
        "$.api_version",
        "$.name",
        "$.description_blurb",
        "$.category",
        "$.base_url",
        "$.endpoints",
        "$.sign_up_page",
        "$.privacy_policy",
        "$.terms_of_service",
        "$.logo_file",
        "$.icon_file",
        "$.resources_to_provision",
        "$.supported_clouds",
        "$.hostnames",
        "$.new_user_action",
    ];
    assert_eq!(err.paths(), want);
    assert!(err.errors.iter().all(|e| e.kind == ConfigErrorKind::Missing));
    let err = parse_any(r#"{"partner": {}}"#).unwrap_err();
    assert_eq!(err.paths().len(), 8, "{err}");
}

#[test]
fn malformed_json_is_one_error_with_line_and_column() {
    let err = parse_any("{\n  \"name\": \"x\",\n  oops\n}").unwrap_err();
    assert_eq!(err.errors.len(), 1);
    let e = &err.errors[0];
    assert_eq!((e.path.as_str(), e.kind), ("$", ConfigErrorKind::Syntax));
    assert_eq!(e.position, Some(TextPosition { line: 3, column: 3 }));
    for text in ["", "[", "{\"partner\": ", "nul"] {
        let err = parse_any(text).unwrap_err();
        assert_eq!(err.errors.len(), 1, "{text:?}");
        assert!(err.errors[0].position.is_some());
    }
}

#[test]
fn a_root_that_is_not_an_object_is_a_type_error() {
    for text in ["[]", "3", "\"x\"", "null", "true"] {
        let err = parse_any(text).unwrap_err();
        assert_eq!(err.paths(), ["$"], "{text}");
        assert_eq!(err.errors[0].kind, ConfigErrorKind::WrongType);
    }
}

#[test]
fn format_detection() {
    assert_eq!(detect_format(&doc(QUARRY)), ConfigFormat::SelfTest);
    assert_eq!(detect_format(&doc(LUMEN)), ConfigFormat::Full);
    assert_eq!(detect_format(&json!({"partner": null})), ConfigFormat::SelfTest);
    assert_eq!(detect_format(&json!([{"partner": {}}])), ConfigFormat::Full);
    assert!(parse_self_test(LUMEN).is_err());
    assert!(parse_partner_config(QUARRY).is_err());
}

#[test]
fn json_paths_quote_odd_keys() {
    let p = JsonPath::root()
        .key("a")
        .index(2)
        .key("odd key")
        .key("2x")
        .key("ok_1");
    assert_eq!(p.as_str(), r#"$.a[2]["odd key"]["2x"].ok_1"#);
}

#[test]
fn image_sizes_are_checked_only_when_given() {
    // (width, height, ok)
    let logos = [
        (440, 100, true),
        (400, 100, true),
        (450, 100, true),
        (399, 100, false),
        (460, 100, false),
    ];
    for (w, h, ok) in logos {
        assert_eq!(check_logo_size(w, h).is_ok(), ok, "logo {w}x{h}");
    }
    assert!(matches!(check_logo_size(0, 0), Err(ImageSizeError::Empty { .. })));
    let icons = [
        (128, 128, true),
        (512, 512, true),
        (127, 127, false),
        (256, 128, false),
        (0, 0, false),
    ];
    for (w, h, ok) in icons {
        assert_eq!(check_icon_size(w, h).is_ok(), ok, "icon {w}x{h}");
    }
    assert_eq!(check_image_sizes(None, None), Ok(()));
    assert_eq!(check_image_sizes(Some((880, 200)), Some((128, 128))), Ok(()));
    let err = check_image_sizes(Some((100, 100)), Some((64, 64))).unwrap_err();
    assert_eq!(err.paths(), ["$.logo_file", "$.icon_file"]);
    assert!(err.errors[1].message.contains("at least 128x128"), "{err}");
}

#[test]
fn wire_enums_list_every_value() {
    assert_eq!(Category::all().len(), 9);
    assert_eq!(ResourceType::all().len(), 4);
    assert_eq!(DataPermission::all().len(), 12);
    assert_eq!(ObjectPermissionName::all().len(), 12);
    assert_eq!(PermissionLevel::all().len(), 14);
    assert_eq!(NewUserAction::all().len(), 4);
    assert_eq!(IntegrationType::all().len(), 6);
    assert_eq!(
        DataPermission::from_wire("ALL PRIVILEGES"),
        Some(DataPermission::AllPrivileges)
    );
    assert_eq!(Cloud::from_wire("gcp"), Some(Cloud::Gcp));
}

/// Strings built from JSON tokens and fixture fragments, so that many are
/// nearly valid configs.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("\"partner\"".to_string()),
        Just("\"name\"".to_string()),
        Just("\"hostname\"".to_string()),
        Just("\"auth_options\"".to_string()),
        Just("\"supported_features\"".to_string()),
        Just("\"NON_ADMIN\"".to_string()),
        Just("\"AUTH_OAUTH_M2M\"".to_string()),
        Just("\"endpoints\"".to_string()),
        Just("\"port\"".to_string()),
        Just("\"test_workspace_detail\"".to_string()),
        Just("-1e999".to_string()),
        Just("18446744073709551616".to_string()),
        "\"[^\"\\\\]{0,12}\"",
        "-?[0-9]{1,20}(\\.[0-9]{1,3})?",
        "\\PC{0,4}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// Arbitrary JSON values (depth-bounded).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,16}".prop_map(Value::String),
        prop::sample::select(vec![
            "AUTH_PAT",
            "AUTH_OAUTH_M2M",
            "NON_ADMIN",
            "https://x.example",
            "http://localhost",
            "/p",
            "a.example,b.example",
            "aws",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "partner",
            "name",
            "endpoints",
            "connect_path",
            "hostname",
            "hostnames",
            "auth_options",
            "supported_features",
            "supported_clouds",
            "resources_to_provision",
            "resource_type",
            "test_workspace_detail",
            "port",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.prop_map(str::to_string), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in jsonish()) {
        let _ = parse_any(&text);
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,200}") {
        let _ = parse_any(&text);
    }

    #[test]
    fn arbitrary_json_never_panics_and_errors_are_never_empty(v in json_value()) {
        let text = v.to_string();
        match parse_any(&text) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.errors.is_empty()),
        }
        let _ = validate_self_test(&v);
        let _ = validate_partner_config(&v);
    }

    #[test]
    fn a_fixture_with_one_field_replaced_never_panics(
        pick in 0usize..3,
        v in json_value(),
        k in 0usize..32,
    ) {
        let base = doc([RIVERFLOW, LUMEN, QUARRY][pick]);
        let mut d = base.clone();
        let obj = match d.get_mut("partner") {
            Some(Value::Object(_)) => d.get_mut("partner"),
            _ => Some(&mut d),
        };
        if let Some(Value::Object(o)) = obj {
            let keys: Vec<String> = o.keys().cloned().collect();
            let key = keys[k % keys.len()].clone();
            o.insert(key, v);
        }
        match parse_any(&d.to_string()) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.errors.is_empty()),
        }
    }
}
