//! Partner Connect configurations at the edge: a submitted document (or a
//! typed `PartnerConfig` message) goes through `tilewave-core`'s parser and
//! validator, which reports every problem with its JSON path, and the
//! validated model becomes the wire `PartnerConfig`.
//!
//! A typed configuration is first written out as the document it stands for,
//! so that both ways in are validated by the one parser.

use serde_json::{Map, Value, json};
use tilewave_core::partner_config::{self as pc, ConfigErrors, ParsedConfig};
use tilewave_core::regions::Cloud as CoreCloud;
use tilewave_core::slug::TileId;
use tilewave_proto::common::v1 as wire;
use tilewave_proto::registry::v1::ConfigIssue;

use crate::domain::{NewRevision, check_workspace};
use crate::error::{Error, Result, Violation};

/// Pairs each core enum with its wire enum, both ways.
macro_rules! enum_pairs {
    ($to_wire:ident, $from_wire:ident, $core:ty => $wire:ty { $($c:ident => $w:ident),+ $(,)? }) => {
        fn $to_wire(v: $core) -> $wire {
            match v { $(<$core>::$c => <$wire>::$w),+ }
        }
        fn $from_wire(v: i32) -> Option<$core> {
            match <$wire>::try_from(v).ok()? {
                $(<$wire>::$w => Some(<$core>::$c),)+
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
}

enum_pairs!(category_to_wire, category_from_wire, pc::Category => wire::PartnerCategory {
    Ingest => Ingest, DataPrepAndTransform => DataPrepAndTransform,
    SecurityAndGovernance => SecurityAndGovernance, BiAndViz => BiAndViz, Ml => Ml,
    DataQuality => DataQuality, ReverseEtl => ReverseEtl, SemanticLayer => SemanticLayer,
    DataGovernance => DataGovernance,
});
enum_pairs!(resource_to_wire, resource_from_wire, pc::ResourceType => wire::ResourceType {
    Pat => Pat, SqlEndpoint => SqlEndpoint, DestLocation => DestLocation,
    InteractiveCluster => InteractiveCluster,
});
enum_pairs!(privilege_to_wire, privilege_from_wire, pc::DataPermission => wire::DataPrivilege {
    Select => Select, Create => Create, Modify => Modify, Usage => Usage, ReadMetadata => ReadMetadata,
    CreateNamedFunction => CreateNamedFunction, ModifyClasspath => ModifyClasspath,
    AllPrivileges => AllPrivileges, UseCatalog => UseCatalog, UseSchema => UseSchema,
    CreateSchema => CreateSchema, CreateTable => CreateTable,
});
enum_pairs!(object_to_wire, object_from_wire, pc::ObjectPermissionName => wire::ObjectType {
    Token => Token, Password => Password, Cluster => Cluster, Pool => Pool, Job => Job,
    DltPipeline => DltPipeline, Notebook => Notebook, Directory => Directory,
    MlflowExperiment => MlflowExperiment, MlflowRegisteredModel => MlflowRegisteredModel,
    SqlEndpoint => SqlEndpoint, Repo => Repo,
});
enum_pairs!(level_to_wire, level_from_wire, pc::PermissionLevel => wire::PermissionLevel {
    CanManage => CanManage, CanRestart => CanRestart, CanAttachTo => CanAttachTo, IsOwner => IsOwner,
    CanManageRun => CanManageRun, CanView => CanView, CanRead => CanRead, CanRun => CanRun,
    CanEdit => CanEdit, CanUse => CanUse, CanManageStagingVersions => CanManageStagingVersions,
    CanManageProductionVersions => CanManageProductionVersions, CanEditMetadata => CanEditMetadata,
    CanViewMetadata => CanViewMetadata,
});
enum_pairs!(action_to_wire, action_from_wire, pc::NewUserAction => wire::NewUserAction {
    AutoAdd => AutoAdd, Invite => Invite, NotFound => NotFound, Error => Error,
});
enum_pairs!(trial_to_wire, trial_from_wire, pc::TrialType => wire::TrialType {
    User => User, Account => Account,
});
enum_pairs!(auth_to_wire, auth_from_wire, pc::AuthOption => wire::AuthOption {
    AuthPat => Pat, AuthOauthM2m => OauthM2m, AuthOauthU2m => OauthU2m,
});
enum_pairs!(integration_to_wire, _integration_from_wire, pc::IntegrationType => wire::IntegrationType {
    NoIntegration => NoIntegration, ClusterCompute => ClusterCompute, WarehouseRead => WarehouseRead,
    WarehouseReadWrite => WarehouseReadWrite, WarehouseWrite => WarehouseWrite,
    WorkspaceManagement => WorkspaceManagement,
});
enum_pairs!(cloud_to_wire, cloud_from_wire, CoreCloud => wire::Cloud {
    Aws => Aws, Azure => Azure, Gcp => Gcp,
});

/// Every error of a rejected document, as one `INVALID_ARGUMENT`.
fn rejected(errors: ConfigErrors) -> Error {
    let violations: Vec<Violation> = errors
        .errors
        .iter()
        .map(|e| Violation::new(e.path.as_str(), e.message.clone()))
        .collect();
    let n = violations.len();
    Error::Invalid {
        message: format!(
            "the configuration has {n} error{}: {}",
            if n == 1 { "" } else { "s" },
            violations
                .iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        violations,
    }
}

fn warnings(ws: &[pc::ConfigWarning]) -> Vec<ConfigIssue> {
    ws.iter()
        .map(|w| ConfigIssue {
            path: w.path.as_str().to_string(),
            code: String::new(),
            message: w.message.clone(),
        })
        .collect()
}

fn full_to_wire(c: &pc::PartnerConfig) -> wire::PartnerConfig {
    wire::PartnerConfig {
        api_version: c.api_version.to_string(),
        name: c.name.clone(),
        description_blurb: c.description_blurb.clone(),
        category: category_to_wire(c.category) as i32,
        base_url: c.base_url.clone(),
        endpoints: Some(wire::PartnerEndpoints {
            connect_path: c.endpoints.connect_path.clone(),
            get_connectors_path: c.endpoints.get_connectors_path.clone().unwrap_or_default(),
            test_connection_path: c.endpoints.test_connection_path.clone().unwrap_or_default(),
            delete_account_path: c.endpoints.delete_account_path.clone().unwrap_or_default(),
            expire_account_path: c.endpoints.expire_account_path.clone().unwrap_or_default(),
            delete_connection_path: c.endpoints.delete_connection_path.clone().unwrap_or_default(),
        }),
        sign_up_page: c.sign_up_page.clone(),
        privacy_policy: c.privacy_policy.clone(),
        terms_of_service: c.terms_of_service.clone(),
        logo_file: c.logo_file.clone(),
        icon_file: c.icon_file.clone(),
        resources_to_provision: c
            .resources_to_provision
            .iter()
            .map(|r| wire::ResourceToProvision {
                resource_type: resource_to_wire(r.resource_type) as i32,
            })
            .collect(),
        data_permissions: c
            .data_permissions
            .iter()
            .map(|p| wire::DataPermission {
                permission: privilege_to_wire(p.permission) as i32,
            })
            .collect(),
        object_permissions: c
            .object_permissions
            .iter()
            .map(|p| wire::ObjectPermission {
                name: object_to_wire(p.name) as i32,
                level: level_to_wire(p.level) as i32,
            })
            .collect(),
        supported_clouds: c
            .supported_clouds
            .iter()
            .map(|c| cloud_to_wire(*c) as i32)
            .collect(),
        hostnames: c.hostnames.clone(),
        new_user_action: action_to_wire(c.new_user_action) as i32,
        require_manual_signup: c.require_manual_signup,
        supports_demo: c.supports_demo,
        is_published_app: c.is_published_app,
        trial_type: c.trial_type.map(|t| trial_to_wire(t) as i32).unwrap_or_default(),
        auth_options: c
            .auth_options
            .iter()
            .flatten()
            .map(|a| auth_to_wire(*a) as i32)
            .collect(),
        test_workspace_detail: c
            .test_workspace_detail
            .as_ref()
            .map(|d| wire::TestWorkspaceDetail {
                hostname: d.hostname.clone().unwrap_or_default(),
                port: d.port.map(i32::from).unwrap_or_default(),
                jdbc_url: d.jdbc_url.clone().unwrap_or_default(),
                databricks_jdbc_url: d.databricks_jdbc_url.clone().unwrap_or_default(),
                http_path: d.http_path.clone().unwrap_or_default(),
                cluster_id: d.cluster_id.clone().unwrap_or_default(),
            }),
        platform: None,
        self_test: None,
    }
}

/// Splits an absolute URL into scheme+authority and path.
fn split_url(url: &str) -> (String, String) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => (
            url[..after_scheme + i].to_string(),
            url[after_scheme + i..].to_string(),
        ),
        None => (url.to_string(), "/".to_string()),
    }
}

fn self_test_to_wire(c: &pc::SelfTestConfig) -> wire::PartnerConfig {
    let (base_url, connect_path) = split_url(&c.connect_url);
    let delete_connection_path = c
        .delete_url
        .as_deref()
        .map(|u| split_url(u).1)
        .unwrap_or_default();
    let has = |f: pc::SupportedFeature| c.supported_features.contains(&f);
    wire::PartnerConfig {
        name: c.name.clone(),
        category: category_to_wire(c.category) as i32,
        base_url,
        endpoints: Some(wire::PartnerEndpoints {
            connect_path,
            delete_connection_path,
            ..Default::default()
        }),
        sign_up_page: c.sign_up_url.clone(),
        privacy_policy: c.privacy_policy_url.clone(),
        terms_of_service: c.terms_of_service_url.clone(),
        hostnames: c.hostnames.clone(),
        auth_options: c
            .effective_auth_options()
            .into_iter()
            .map(|a| auth_to_wire(a) as i32)
            .collect(),
        platform: Some(wire::PlatformSettings {
            unity_catalog: has(pc::SupportedFeature::UnityCatalog),
            warehouse_kinds: vec![],
            external_location: has(pc::SupportedFeature::ExternalLocation),
        }),
        self_test: Some(wire::SelfTestSettings {
            integration_type: integration_to_wire(c.integration_type) as i32,
            non_admin: c.non_admin(),
        }),
        ..Default::default()
    }
}

fn ids(id: &str, partner: &str, name: &str) -> Result<(String, String)> {
    let id = if id.is_empty() {
        TileId::from_name(name)
            .map_err(|e| Error::invalid("id", format!("cannot derive an id from the name: {e}")))?
    } else {
        TileId::parse(id).map_err(|e| Error::invalid("id", e.to_string()))?
    };
    let partner = if partner.is_empty() {
        id.clone()
    } else {
        TileId::parse(partner).map_err(|e| Error::invalid("partner_id", e.to_string()))?
    };
    Ok((id.into_string(), partner.into_string()))
}

/// Parses and validates a submitted document in either format.
pub fn from_document(json: &str, id: &str, partner: &str, workspace: &str) -> Result<NewRevision> {
    let parsed = pc::parse_any(json).map_err(rejected)?;
    let (config, format, self_test, warns) = match &parsed {
        ParsedConfig::Full(v) => (
            full_to_wire(&v.config),
            wire::ConfigFormat::PartnerConfig,
            false,
            &v.warnings,
        ),
        ParsedConfig::SelfTest(v) => (
            self_test_to_wire(&v.config),
            wire::ConfigFormat::SelfTest,
            true,
            &v.warnings,
        ),
    };
    if self_test {
        check_workspace("workspace_id", workspace, false).map_err(|_| {
            Error::invalid(
                "workspace_id",
                "a self-test tile is visible in one workspace: give it (--workspace ID, digits only)",
            )
        })?;
    } else if !workspace.is_empty() {
        return Err(Error::invalid(
            "workspace_id",
            "only a self-test tile is imported for a workspace; set a launch tile's test workspace with \
             `tilewave tile set-test-workspace TILE WORKSPACE_ID`",
        ));
    }
    let (id, partner_id) = ids(id, partner, &config.name)?;
    Ok(NewRevision {
        id,
        partner_id,
        config,
        raw: json.to_string(),
        format,
        self_test,
        workspace: if self_test {
            workspace.to_string()
        } else {
            String::new()
        },
        warnings: warnings(warns),
        note: String::new(),
        maintenance: None,
    })
}

/// Validates a typed configuration by writing it out as the document it
/// stands for and parsing that.
pub fn from_typed(
    id: &str,
    partner: &str,
    config: wire::PartnerConfig,
    self_test: bool,
    workspace: &str,
) -> Result<NewRevision> {
    if self_test || config.self_test.is_some() {
        return Err(Error::invalid(
            "config.self_test",
            "create self-test tiles from their document with ImportPartnerConfig",
        ));
    }
    let doc = typed_to_document(&config)?;
    let text = doc.to_string();
    let mut new = from_document(&text, id, partner, workspace)?;
    new.raw = String::new();
    // Platform settings are not part of the partner's document: keep them.
    new.config.platform = config.platform;
    Ok(new)
}

fn wire_name<T: tilewave_core::partner_config::WireEnum>(
    v: Option<T>,
    field: &str,
    raw: i32,
) -> Result<Value> {
    match v {
        Some(v) => Ok(Value::String(v.wire().to_string())),
        None => Err(Error::invalid(field, format!("{raw} is not a valid value"))),
    }
}

fn opt_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// The PartnerConfig document a typed configuration stands for.
fn typed_to_document(c: &wire::PartnerConfig) -> Result<Value> {
    let mut doc = Map::new();
    doc.insert("api_version".into(), json!(c.api_version));
    doc.insert("name".into(), json!(c.name));
    doc.insert("description_blurb".into(), json!(c.description_blurb));
    if c.category != 0 {
        doc.insert(
            "category".into(),
            wire_name(category_from_wire(c.category), "config.category", c.category)?,
        );
    }
    doc.insert("base_url".into(), json!(c.base_url));
    let mut endpoints = Map::new();
    if let Some(e) = &c.endpoints {
        opt_str(&mut endpoints, "connect_path", &e.connect_path);
        opt_str(&mut endpoints, "get_connectors_path", &e.get_connectors_path);
        opt_str(&mut endpoints, "test_connection_path", &e.test_connection_path);
        opt_str(&mut endpoints, "delete_account_path", &e.delete_account_path);
        opt_str(&mut endpoints, "expire_account_path", &e.expire_account_path);
        opt_str(
            &mut endpoints,
            "delete_connection_path",
            &e.delete_connection_path,
        );
    }
    doc.insert("endpoints".into(), Value::Object(endpoints));
    for (k, v) in [
        ("sign_up_page", &c.sign_up_page),
        ("privacy_policy", &c.privacy_policy),
        ("terms_of_service", &c.terms_of_service),
        ("logo_file", &c.logo_file),
        ("icon_file", &c.icon_file),
    ] {
        doc.insert(k.into(), json!(v));
    }
    let mut resources = Vec::new();
    for (i, r) in c.resources_to_provision.iter().enumerate() {
        let field = format!("config.resources_to_provision[{i}].resource_type");
        resources.push(json!({ "resource_type": wire_name(resource_from_wire(r.resource_type), &field, r.resource_type)? }));
    }
    doc.insert("resources_to_provision".into(), Value::Array(resources));
    if !c.data_permissions.is_empty() {
        let mut perms = Vec::new();
        for (i, p) in c.data_permissions.iter().enumerate() {
            let field = format!("config.data_permissions[{i}].permission");
            perms.push(
                json!({ "permission": wire_name(privilege_from_wire(p.permission), &field, p.permission)? }),
            );
        }
        doc.insert("data_permissions".into(), Value::Array(perms));
    }
    if !c.object_permissions.is_empty() {
        let mut perms = Vec::new();
        for (i, p) in c.object_permissions.iter().enumerate() {
            perms.push(json!({
                "name": wire_name(object_from_wire(p.name), &format!("config.object_permissions[{i}].name"), p.name)?,
                "level": wire_name(level_from_wire(p.level), &format!("config.object_permissions[{i}].level"), p.level)?,
            }));
        }
        doc.insert("object_permissions".into(), Value::Array(perms));
    }
    let mut clouds = Vec::new();
    for (i, cl) in c.supported_clouds.iter().enumerate() {
        clouds.push(wire_name(
            cloud_from_wire(*cl),
            &format!("config.supported_clouds[{i}]"),
            *cl,
        )?);
    }
    doc.insert("supported_clouds".into(), Value::Array(clouds));
    doc.insert("hostnames".into(), json!(c.hostnames));
    if c.new_user_action != 0 {
        doc.insert(
            "new_user_action".into(),
            wire_name(
                action_from_wire(c.new_user_action),
                "config.new_user_action",
                c.new_user_action,
            )?,
        );
    }
    for (k, v) in [
        ("require_manual_signup", c.require_manual_signup),
        ("supports_demo", c.supports_demo),
        ("is_published_app", c.is_published_app),
    ] {
        if let Some(v) = v {
            doc.insert(k.into(), json!(v));
        }
    }
    if c.trial_type != 0 {
        doc.insert(
            "trial_type".into(),
            wire_name(trial_from_wire(c.trial_type), "config.trial_type", c.trial_type)?,
        );
    }
    if !c.auth_options.is_empty() {
        let mut opts = Vec::new();
        for (i, a) in c.auth_options.iter().enumerate() {
            opts.push(wire_name(
                auth_from_wire(*a),
                &format!("config.auth_options[{i}]"),
                *a,
            )?);
        }
        doc.insert("auth_options".into(), Value::Array(opts));
    }
    if let Some(d) = &c.test_workspace_detail {
        let mut m = Map::new();
        opt_str(&mut m, "hostname", &d.hostname);
        if d.port != 0 {
            m.insert("port".into(), json!(d.port));
        }
        opt_str(&mut m, "jdbc_url", &d.jdbc_url);
        opt_str(&mut m, "databricks_jdbc_url", &d.databricks_jdbc_url);
        opt_str(&mut m, "http_path", &d.http_path);
        opt_str(&mut m, "cluster_id", &d.cluster_id);
        doc.insert("test_workspace_detail".into(), Value::Object(m));
    }
    Ok(Value::Object(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RIVERFLOW: &str =
        include_str!("../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");
    const QUARRY: &str =
        include_str!("../../../crates/core/tests/fixtures/partner-connect/self-test-quarry.json");

    #[test]
    fn a_document_and_its_typed_form_validate_to_the_same_config() {
        let from_doc = from_document(RIVERFLOW, "", "", "").unwrap();
        assert_eq!(from_doc.id, "riverflow");
        let c = &from_doc.config;
        assert_eq!(c.category, wire::PartnerCategory::Ingest as i32);
        assert_eq!(c.supported_clouds.len(), 3);
        assert_eq!(c.auth_options, vec![wire::AuthOption::OauthM2m as i32]);
        let typed = from_typed("", "", from_doc.config.clone(), false, "").unwrap();
        assert_eq!(typed.config, from_doc.config);
    }

    #[test]
    fn a_self_test_document_is_normalised_and_needs_its_workspace() {
        let e = from_document(QUARRY, "", "", "").unwrap_err();
        assert!(matches!(e, Error::Invalid { ref violations, .. } if violations[0].field == "workspace_id"));
        let new = from_document(QUARRY, "", "", "42").unwrap();
        assert!(new.self_test);
        assert_eq!(new.config.base_url, "https://quarry.example");
        let ep = new.config.endpoints.as_ref().unwrap();
        assert_eq!(ep.connect_path, "/databricks/connect");
        assert_eq!(ep.delete_connection_path, "/databricks/delete");
        assert_eq!(new.config.hostnames, ["quarry.example", "eu.quarry.example"]);
        assert!(new.config.platform.as_ref().unwrap().unity_catalog);
    }

    #[test]
    fn a_bad_enum_in_a_typed_config_names_its_field() {
        let mut c = from_document(RIVERFLOW, "", "", "").unwrap().config;
        c.supported_clouds.push(99);
        let e = from_typed("", "", c, false, "").unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref violations, .. } if violations[0].field == "config.supported_clouds[3]")
        );
    }
}
