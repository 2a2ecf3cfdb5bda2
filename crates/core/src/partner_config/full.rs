//! The full PartnerConfig format: walks the JSON object field by field,
//! recording every error at its path, and builds a [`PartnerConfig`] when
//! there are none.

use serde_json::{Map, Value};

use super::model::{
    AuthOption, DataPermissionGrant, Endpoints, ObjectPermission, PartnerConfig, ResourceToProvision,
    TestWorkspaceDetail,
};
use super::report::{ConfigErrorKind, JsonPath, Report};
use super::rules;
use super::walk::{array, boolean, each, object, optional, required, string, warn_unknown_keys, wire_enum};

const FIELDS: &[&str] = &[
    "api_version",
    "name",
    "description_blurb",
    "category",
    "base_url",
    "endpoints",
    "sign_up_page",
    "privacy_policy",
    "terms_of_service",
    "logo_file",
    "icon_file",
    "resources_to_provision",
    "data_permissions",
    "object_permissions",
    "supported_clouds",
    "hostnames",
    "new_user_action",
    "require_manual_signup",
    "supports_demo",
    "is_published_app",
    "trial_type",
    "auth_options",
    "test_workspace_detail",
];

const ENDPOINTS: &[&str] = &[
    "connect_path",
    "get_connectors_path",
    "test_connection_path",
    "delete_account_path",
    "expire_account_path",
    "delete_connection_path",
];

const TEST_WORKSPACE_FIELDS: &[&str] = &[
    "hostname",
    "port",
    "jdbc_url",
    "databricks_jdbc_url",
    "http_path",
    "cluster_id",
];

/// Applies `rule` to a string, recording its message at `path`.
pub(crate) fn ruled<'a, T>(
    s: Option<&'a str>,
    path: &JsonPath,
    r: &mut Report,
    rule: impl FnOnce(&'a str) -> Result<T, String>,
) -> Option<T> {
    match rule(s?) {
        Ok(t) => Some(t),
        Err(msg) => {
            r.invalid(path, msg);
            None
        }
    }
}

/// A required string field checked by `rule`.
pub(crate) fn req_ruled<'a, T>(
    obj: &'a Map<String, Value>,
    path: &JsonPath,
    key: &str,
    r: &mut Report,
    rule: impl FnOnce(&'a str) -> Result<T, String>,
) -> Option<T> {
    let p = path.key(key);
    let s = required(obj, path, key, r).and_then(|v| string(v, &p, r));
    ruled(s, &p, r, rule)
}

/// A required URL field.
pub(crate) fn req_url(
    obj: &Map<String, Value>,
    path: &JsonPath,
    key: &str,
    r: &mut Report,
) -> Option<String> {
    req_ruled(obj, path, key, r, |s| rules::check_url(s).map(|()| s.to_string()))
}

/// A required plain string.
fn req_string(obj: &Map<String, Value>, path: &JsonPath, key: &str, r: &mut Report) -> Option<String> {
    required(obj, path, key, r)
        .and_then(|v| string(v, &path.key(key), r))
        .map(str::to_string)
}

/// An optional field read by `read`: `Some(None)` when absent, `None` on error.
pub(crate) fn opt_field<'a, T>(
    obj: &'a Map<String, Value>,
    path: &JsonPath,
    key: &str,
    r: &mut Report,
    read: impl FnOnce(&'a Value, &JsonPath, &mut Report) -> Option<T>,
) -> Option<Option<T>> {
    match optional(obj, key) {
        None => Some(None),
        Some(v) => read(v, &path.key(key), r).map(Some),
    }
}

/// `auth_options`: known values, and at most one of AUTH_PAT and
/// AUTH_OAUTH_M2M (reported once, at the array). `non_admin` applies the
/// self-test fallback of M2M to AUTH_PAT first.
pub(crate) fn auth_options(
    v: &Value,
    path: &JsonPath,
    non_admin: bool,
    r: &mut Report,
) -> Option<Vec<AuthOption>> {
    let items = array(v, path, r)?;
    let given = each(items, path, r, wire_enum::<AuthOption>)?;
    let mut out: Vec<AuthOption> = Vec::with_capacity(given.len());
    for opt in given {
        let opt = if non_admin && opt == AuthOption::AuthOauthM2m {
            r.warn(
                path,
                "AUTH_OAUTH_M2M is not available to non-admin users (NON_ADMIN); it falls back to AUTH_PAT",
            );
            AuthOption::AuthPat
        } else {
            opt
        };
        if out.contains(&opt) {
            if !non_admin {
                r.warn(path, format!("{opt} is listed more than once"));
            }
        } else {
            out.push(opt);
        }
    }
    if out.contains(&AuthOption::AuthPat) && out.contains(&AuthOption::AuthOauthM2m) {
        r.invalid(
            path,
            "AUTH_PAT and AUTH_OAUTH_M2M are mutually exclusive: list at most one of them",
        );
        return None;
    }
    if out.is_empty() {
        r.warn(path, "auth_options is empty; AUTH_PAT is assumed");
    }
    Some(out)
}

fn endpoints(v: &Value, path: &JsonPath, r: &mut Report) -> Option<Endpoints> {
    let obj = object(v, path, r)?;
    warn_unknown_keys(obj, path, ENDPOINTS, r);
    let path_rule = |s: &str| rules::check_endpoint_path(s).map(|()| s.to_string());
    let connect_path = req_ruled(obj, path, "connect_path", r, path_rule);
    let opt = |key: &str, r: &mut Report| {
        opt_field(obj, path, key, r, |v, p, r| {
            ruled(string(v, p, r), p, r, path_rule)
        })
    };
    let get_connectors_path = opt("get_connectors_path", r);
    let test_connection_path = opt("test_connection_path", r);
    let delete_account_path = opt("delete_account_path", r);
    let expire_account_path = opt("expire_account_path", r);
    let delete_connection_path = opt("delete_connection_path", r);
    if matches!(delete_connection_path, Some(None)) {
        r.warn(
            &path.key("delete_connection_path"),
            "delete_connection_path is missing: the Partner Connect API spec requires the delete-connection endpoint",
        );
    }
    Some(Endpoints {
        connect_path: connect_path?,
        get_connectors_path: get_connectors_path?,
        test_connection_path: test_connection_path?,
        delete_account_path: delete_account_path?,
        expire_account_path: expire_account_path?,
        delete_connection_path: delete_connection_path?,
    })
}

fn test_workspace_detail(v: &Value, path: &JsonPath, r: &mut Report) -> Option<TestWorkspaceDetail> {
    let obj = object(v, path, r)?;
    warn_unknown_keys(obj, path, TEST_WORKSPACE_FIELDS, r);
    let s = |key: &str, r: &mut Report| {
        opt_field(obj, path, key, r, |v, p, r| string(v, p, r).map(str::to_string))
    };
    let hostname = s("hostname", r);
    let jdbc_url = s("jdbc_url", r);
    let databricks_jdbc_url = s("databricks_jdbc_url", r);
    let http_path = s("http_path", r);
    let cluster_id = s("cluster_id", r);
    let port = opt_field(obj, path, "port", r, |v, p, r| {
        match v.as_u64().map(u16::try_from) {
            Some(Ok(port)) if port > 0 => Some(port),
            Some(_) | None => {
                r.error(
                    p,
                    ConfigErrorKind::WrongType,
                    "expected a port number from 1 to 65535",
                );
                None
            }
        }
    });
    Some(TestWorkspaceDetail {
        hostname: hostname?,
        port: port?,
        jdbc_url: jdbc_url?,
        databricks_jdbc_url: databricks_jdbc_url?,
        http_path: http_path?,
        cluster_id: cluster_id?,
    })
}

/// A non-empty array, each element read by `read`.
pub(crate) fn non_empty<T>(
    v: &Value,
    path: &JsonPath,
    what: &str,
    r: &mut Report,
    read: impl FnMut(&Value, &JsonPath, &mut Report) -> Option<T>,
) -> Option<Vec<T>> {
    let items = array(v, path, r)?;
    if items.is_empty() {
        r.invalid(path, format!("{what} must not be empty"));
        return None;
    }
    each(items, path, r, read)
}

/// An array of single-field objects, e.g. `[{"resource_type": "PAT"}]`.
fn objects_of<T>(
    v: &Value,
    path: &JsonPath,
    r: &mut Report,
    mut read: impl FnMut(&Map<String, Value>, &JsonPath, &mut Report) -> Option<T>,
    known: &[&str],
) -> Option<Vec<T>> {
    let items = array(v, path, r)?;
    each(items, path, r, |v, p, r| {
        let obj = object(v, p, r)?;
        warn_unknown_keys(obj, p, known, r);
        read(obj, p, r)
    })
}

/// Validates a full PartnerConfig object (the document root).
pub(crate) fn validate(root: &Map<String, Value>, r: &mut Report) -> Option<PartnerConfig> {
    let p = JsonPath::root();
    let r = &mut *r;
    warn_unknown_keys(root, &p, FIELDS, r);

    let api_version = req_ruled(root, &p, "api_version", r, rules::check_api_version);
    let name = req_ruled(root, &p, "name", r, |s| rules::check_name(s).map(str::to_string));
    let description_blurb = req_string(root, &p, "description_blurb", r);
    let category = required(root, &p, "category", r).and_then(|v| wire_enum(v, &p.key("category"), r));
    let base_url = req_url(root, &p, "base_url", r);
    let endpoints = required(root, &p, "endpoints", r).and_then(|v| endpoints(v, &p.key("endpoints"), r));
    let sign_up_page = req_url(root, &p, "sign_up_page", r);
    let privacy_policy = req_url(root, &p, "privacy_policy", r);
    let terms_of_service = req_url(root, &p, "terms_of_service", r);
    let image = |s: &str| rules::check_image_file(s).map(|()| s.to_string());
    let logo_file = req_ruled(root, &p, "logo_file", r, image);
    let icon_file = req_ruled(root, &p, "icon_file", r, image);

    let resources_to_provision = required(root, &p, "resources_to_provision", r).and_then(|v| {
        objects_of(
            v,
            &p.key("resources_to_provision"),
            r,
            |o, p, r| {
                let t = required(o, p, "resource_type", r)?;
                Some(ResourceToProvision {
                    resource_type: wire_enum(t, &p.key("resource_type"), r)?,
                })
            },
            &["resource_type"],
        )
    });
    let data_permissions = opt_field(root, &p, "data_permissions", r, |v, p, r| {
        objects_of(
            v,
            p,
            r,
            |o, p, r| {
                let v = required(o, p, "permission", r)?;
                Some(DataPermissionGrant {
                    permission: wire_enum(v, &p.key("permission"), r)?,
                })
            },
            &["permission"],
        )
    });
    let object_permissions = opt_field(root, &p, "object_permissions", r, |v, p, r| {
        objects_of(
            v,
            p,
            r,
            |o, p, r| {
                let name = required(o, p, "name", r).and_then(|v| wire_enum(v, &p.key("name"), r));
                let level = required(o, p, "level", r).and_then(|v| wire_enum(v, &p.key("level"), r));
                Some(ObjectPermission {
                    name: name?,
                    level: level?,
                })
            },
            &["name", "level"],
        )
    });
    let supported_clouds = required(root, &p, "supported_clouds", r)
        .and_then(|v| non_empty(v, &p.key("supported_clouds"), "supported_clouds", r, wire_enum));
    if let Some(clouds) = &supported_clouds {
        for (i, c) in clouds.iter().enumerate() {
            if clouds[..i].contains(c) {
                r.warn(
                    &p.key("supported_clouds").index(i),
                    format!("{c} is listed more than once"),
                );
            }
        }
    }
    let hostnames = required(root, &p, "hostnames", r).and_then(|v| {
        non_empty(v, &p.key("hostnames"), "hostnames", r, |v, p, r| {
            ruled(string(v, p, r), p, r, |s| {
                rules::check_hostname(s).map(|()| s.to_string())
            })
        })
    });
    let new_user_action =
        required(root, &p, "new_user_action", r).and_then(|v| wire_enum(v, &p.key("new_user_action"), r));
    let require_manual_signup = opt_field(root, &p, "require_manual_signup", r, boolean);
    let supports_demo = opt_field(root, &p, "supports_demo", r, boolean);
    let is_published_app = opt_field(root, &p, "is_published_app", r, boolean);
    let trial_type = opt_field(root, &p, "trial_type", r, wire_enum);
    let auth_options = opt_field(root, &p, "auth_options", r, |v, p, r| {
        auth_options(v, p, false, r)
    });
    let test_workspace_detail = opt_field(root, &p, "test_workspace_detail", r, test_workspace_detail);

    Some(PartnerConfig {
        api_version: api_version?,
        name: name?,
        description_blurb: description_blurb?,
        category: category?,
        base_url: base_url?,
        endpoints: endpoints?,
        sign_up_page: sign_up_page?,
        privacy_policy: privacy_policy?,
        terms_of_service: terms_of_service?,
        logo_file: logo_file?,
        icon_file: icon_file?,
        resources_to_provision: resources_to_provision?,
        data_permissions: data_permissions?.unwrap_or_default(),
        object_permissions: object_permissions?.unwrap_or_default(),
        supported_clouds: supported_clouds?,
        hostnames: hostnames?,
        new_user_action: new_user_action?,
        require_manual_signup: require_manual_signup?,
        supports_demo: supports_demo?,
        is_published_app: is_published_app?,
        trial_type: trial_type?,
        auth_options: auth_options?,
        test_workspace_detail: test_workspace_detail?,
    })
}
