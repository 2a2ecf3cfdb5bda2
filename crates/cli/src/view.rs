//! The CLI's own serde views of API messages, for `-o json` and `-o yaml`
//! (prost types do not derive serde). Field names follow the proto; enums
//! print as words (`SIGNED_OFF` for states, `partner-sa`, `gcp`,
//! `bi-and-viz` for the rest); timestamps as RFC 3339 in UTC.
//!
//! [`ConfigView`] also reads back: it is the typed configuration format of
//! `tilewave tile create --config FILE`, the same shape `tile get -o json`
//! prints under `config`.

use serde::{Deserialize, Serialize};
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{
    AuditRecord, AuthOption, Cloud, DataPermission, DataPrivilege, IntegrationType, NewUserAction,
    ObjectPermission, ObjectType, PartnerCategory, PartnerConfig, PartnerEndpoints, PermissionLevel,
    PlatformSettings, ResourceToProvision, ResourceType, SelfTestSettings, TestWorkspaceDetail, TrialType,
    WarehouseKind,
};
use tilewave_proto::registry::v1::{ConfigIssue, MaintenanceInfo, RevisionSummary, SignOff, Tile, TileEvent};

use crate::names::{format_time, kebab, kebab_name, role_name, state_name, unkebab};

/// A tile as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileView {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub revision: i64,
    pub latest_revision: i64,
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state_reason: String,
    pub self_test: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub test_workspace_id: String,
    pub sign_offs: Vec<SignOffView>,
    pub missing_sign_offs: Vec<String>,
    pub ga_time: Option<String>,
    pub ga_revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw_requested_at: Option<String>,
    pub created_at: Option<String>,
    pub created_by: String,
    pub updated_at: Option<String>,
    pub updated_by: String,
    pub etag: i64,
    pub warnings: Vec<IssueView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigView>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_format: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub raw_config: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<ChecklistView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gtm: Vec<GtmItemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtm_override: Option<GtmOverrideView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ga_slot: Option<SlotView>,
}

/// A revision's validation checklist as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecklistView {
    pub revision: i64,
    pub cases: Vec<CaseView>,
    pub open_cases: Vec<String>,
}

/// One validation case as printed; `outcome` is PASS, FAIL, WAIVED or open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseView {
    pub case_id: String,
    pub title: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recorded_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub evidence_tile: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub evidence_revision: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A go-to-market item as printed; `status` is done or pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GtmItemView {
    pub item: String,
    pub status: String,
    pub owner: String,
    pub due: String,
    pub link: String,
    pub derived: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub updated_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// A GA date committed with go-to-market items pending, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GtmOverrideView {
    pub reason: String,
    pub by: String,
    pub at: Option<String>,
    pub pending: Vec<String>,
}

/// The launch-calendar slot a GA date holds a place in, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    pub at: Option<String>,
    pub capacity: i32,
}

impl From<&Tile> for TileView {
    fn from(t: &Tile) -> Self {
        Self {
            id: t.id.clone(),
            partner_id: t.partner_id.clone(),
            name: t.name.clone(),
            revision: t.revision,
            latest_revision: t.latest_revision,
            state: state_name(t.state),
            state_reason: t.state_reason.clone(),
            self_test: t.self_test,
            test_workspace_id: t.test_workspace_id.clone(),
            sign_offs: t.sign_offs.iter().map(SignOffView::from).collect(),
            missing_sign_offs: t.missing_sign_offs.iter().map(|r| role_name(*r)).collect(),
            ga_time: format_time(t.ga_time.as_ref()),
            ga_revision: t.ga_revision,
            maintenance: t.maintenance.as_ref().map(MaintenanceView::from),
            withdraw_requested_at: format_time(t.withdraw_requested_at.as_ref()),
            created_at: format_time(t.created_at.as_ref()),
            created_by: t.created_by.clone(),
            updated_at: format_time(t.updated_at.as_ref()),
            updated_by: t.updated_by.clone(),
            etag: t.etag,
            warnings: t.warnings.iter().map(IssueView::from).collect(),
            config: t.config.as_ref().map(ConfigView::from),
            config_format: match t.config_format {
                0 => String::new(),
                f => tilewave_proto::common::v1::ConfigFormat::try_from(f)
                    .map_or_else(|_| f.to_string(), |c| kebab_name(&c)),
            },
            raw_config: t.raw_config.clone(),
            validation: t.validation.as_ref().map(|v| ChecklistView {
                revision: v.revision,
                cases: v
                    .cases
                    .iter()
                    .map(|e| CaseView {
                        case_id: e.case_id.clone(),
                        title: e.title.clone(),
                        outcome: crate::tile::checklist::outcome_name(e.outcome).to_owned(),
                        note: e.note.clone(),
                        recorded_by: e.recorded_by.clone(),
                        recorded_at: format_time(e.recorded_at.as_ref()),
                        evidence_tile: e.evidence_tile.clone(),
                        evidence_revision: e.evidence_revision,
                    })
                    .collect(),
                open_cases: v.open_cases.clone(),
            }),
            gtm: t
                .gtm
                .iter()
                .map(|i| GtmItemView {
                    item: i.item.clone(),
                    status: if i.status == tilewave_proto::registry::v1::GtmStatus::Done as i32 {
                        "done".into()
                    } else {
                        "pending".into()
                    },
                    owner: i.owner.clone(),
                    due: i.due.clone(),
                    link: i.link.clone(),
                    derived: i.derived,
                    updated_by: i.updated_by.clone(),
                    updated_at: format_time(i.updated_at.as_ref()),
                })
                .collect(),
            gtm_override: t.gtm_override.as_ref().map(|o| GtmOverrideView {
                reason: o.reason.clone(),
                by: o.by.clone(),
                at: format_time(o.at.as_ref()),
                pending: o.pending.clone(),
            }),
            ga_slot: t.ga_slot.as_ref().map(|s| SlotView {
                at: format_time(s.at.as_ref()),
                capacity: s.capacity,
            }),
        }
    }
}

/// A sign-off as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOffView {
    pub role: String,
    pub revision: i64,
    pub actor: String,
    pub at: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl From<&SignOff> for SignOffView {
    fn from(s: &SignOff) -> Self {
        Self {
            role: role_name(s.role),
            revision: s.revision,
            actor: s.actor.clone(),
            at: format_time(s.at.as_ref()),
            note: s.note.clone(),
        }
    }
}

/// A configuration problem as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueView {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl From<&ConfigIssue> for IssueView {
    fn from(i: &ConfigIssue) -> Self {
        Self {
            path: i.path.clone(),
            code: i.code.clone(),
            message: i.message.clone(),
        }
    }
}

/// Maintenance information as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceView {
    pub affected_clouds: Vec<String>,
    pub affected_regions: Vec<String>,
    pub target_time: Option<String>,
    pub summary: String,
}

impl From<&MaintenanceInfo> for MaintenanceView {
    fn from(m: &MaintenanceInfo) -> Self {
        Self {
            affected_clouds: m
                .affected_clouds
                .iter()
                .map(|c| crate::names::cloud_name(*c))
                .collect(),
            affected_regions: m.affected_regions.clone(),
            target_time: format_time(m.target_time.as_ref()),
            summary: m.summary.clone(),
        }
    }
}

/// One revision in a tile's revision list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionView {
    pub revision: i64,
    pub created_at: Option<String>,
    pub created_by: String,
    pub note: String,
    pub signed_off: Vec<String>,
}

impl From<&RevisionSummary> for RevisionView {
    fn from(r: &RevisionSummary) -> Self {
        Self {
            revision: r.revision,
            created_at: format_time(r.created_at.as_ref()),
            created_by: r.created_by.clone(),
            note: r.note.clone(),
            signed_off: r.signed_off.iter().map(|x| role_name(*x)).collect(),
        }
    }
}

/// A tile with its revisions: what `tile get` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileDetailView {
    pub tile: Option<TileView>,
    pub revisions: Vec<RevisionView>,
}

/// One audit record as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditView {
    pub at: Option<String>,
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub object_revision: i64,
    pub summary: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub details: std::collections::BTreeMap<String, String>,
}

impl From<&AuditRecord> for AuditView {
    fn from(a: &AuditRecord) -> Self {
        Self {
            at: format_time(a.at.as_ref()),
            actor: a.actor.clone(),
            action: a.action.clone(),
            object_kind: a.object_kind.clone(),
            object_id: a.object_id.clone(),
            object_revision: a.object_revision,
            summary: a.summary.clone(),
            trace_id: a.trace_id.clone(),
            details: a.details.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// One WatchTiles event as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    #[serde(rename = "type")]
    pub kind: String,
    pub revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile: Option<TileView>,
}

impl From<&TileEvent> for EventView {
    fn from(e: &TileEvent) -> Self {
        Self {
            kind: tilewave_proto::registry::v1::TileEventType::try_from(e.r#type)
                .map_or_else(|_| format!("TYPE_{}", e.r#type), |t| t.short_name().to_owned()),
            revision: e.revision,
            tile: e.tile.as_ref().map(TileView::from),
        }
    }
}

/// A typed partner configuration, printed and read back. Enum values are
/// words: `ingest`, `sql-endpoint`, `all-privileges`, `can-manage`, `aws`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigView {
    pub api_version: String,
    pub name: String,
    pub description_blurb: String,
    pub category: String,
    pub base_url: String,
    pub endpoints: EndpointsView,
    pub sign_up_page: String,
    pub privacy_policy: String,
    pub terms_of_service: String,
    pub logo_file: String,
    pub icon_file: String,
    pub resources_to_provision: Vec<String>,
    pub data_permissions: Vec<String>,
    pub object_permissions: Vec<ObjectPermissionView>,
    pub supported_clouds: Vec<String>,
    pub hostnames: Vec<String>,
    pub new_user_action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_manual_signup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_published_app: Option<bool>,
    pub trial_type: String,
    pub auth_options: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_workspace_detail: Option<TestWorkspaceDetailView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_test: Option<SelfTestView>,
}

/// The partner's API paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsView {
    pub connect_path: String,
    pub get_connectors_path: String,
    pub test_connection_path: String,
    pub delete_account_path: String,
    pub expire_account_path: String,
    pub delete_connection_path: String,
}

/// One object permission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectPermissionView {
    pub name: String,
    pub level: String,
}

/// The partner's test workspace details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestWorkspaceDetailView {
    pub hostname: String,
    pub port: i32,
    pub jdbc_url: String,
    pub databricks_jdbc_url: String,
    pub http_path: String,
    pub cluster_id: String,
}

/// Platform-side settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformView {
    pub unity_catalog: bool,
    pub warehouse_kinds: Vec<String>,
    pub external_location: bool,
}

/// Self-test settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfTestView {
    pub integration_type: String,
    pub non_admin: bool,
}

/// Prints an enum value as a word; empty for UNSPECIFIED (0).
fn word(value: i32, prefix: &str, name: fn(i32) -> Option<&'static str>) -> String {
    if value == 0 {
        return String::new();
    }
    name(value).map_or_else(|| value.to_string(), |n| kebab(n, prefix))
}

/// Reads a word back into an enum value; empty is UNSPECIFIED (0). Unknown
/// words are collected in `errors` with their path.
fn unword(
    w: &str,
    prefix: &str,
    parse: fn(&str) -> Option<i32>,
    path: &str,
    errors: &mut Vec<String>,
) -> i32 {
    if w.trim().is_empty() {
        return 0;
    }
    parse(&unkebab(w, prefix)).unwrap_or_else(|| {
        errors.push(format!("{path}: unknown value {w:?}"));
        0
    })
}

/// Names of each enum, as the functions [`word`] and [`unword`] take.
macro_rules! enum_fns {
    ($name:ident, $parse:ident, $t:ty) => {
        fn $name(v: i32) -> Option<&'static str> {
            <$t>::try_from(v).ok().map(|e| e.as_str_name())
        }
        fn $parse(s: &str) -> Option<i32> {
            <$t>::from_str_name(s).map(|e| e as i32)
        }
    };
}
enum_fns!(category_name, category_parse, PartnerCategory);
enum_fns!(resource_name, resource_parse, ResourceType);
enum_fns!(privilege_name, privilege_parse, DataPrivilege);
enum_fns!(object_name, object_parse, ObjectType);
enum_fns!(level_name, level_parse, PermissionLevel);
enum_fns!(cloud_enum_name, cloud_parse, Cloud);
enum_fns!(new_user_name, new_user_parse, NewUserAction);
enum_fns!(trial_name, trial_parse, TrialType);
enum_fns!(auth_name, auth_parse, AuthOption);
enum_fns!(warehouse_name, warehouse_parse, WarehouseKind);
enum_fns!(integration_name, integration_parse, IntegrationType);

impl From<&PartnerConfig> for ConfigView {
    fn from(c: &PartnerConfig) -> Self {
        let e = c.endpoints.clone().unwrap_or_default();
        Self {
            api_version: c.api_version.clone(),
            name: c.name.clone(),
            description_blurb: c.description_blurb.clone(),
            category: word(c.category, "PARTNER_CATEGORY_", category_name),
            base_url: c.base_url.clone(),
            endpoints: EndpointsView {
                connect_path: e.connect_path,
                get_connectors_path: e.get_connectors_path,
                test_connection_path: e.test_connection_path,
                delete_account_path: e.delete_account_path,
                expire_account_path: e.expire_account_path,
                delete_connection_path: e.delete_connection_path,
            },
            sign_up_page: c.sign_up_page.clone(),
            privacy_policy: c.privacy_policy.clone(),
            terms_of_service: c.terms_of_service.clone(),
            logo_file: c.logo_file.clone(),
            icon_file: c.icon_file.clone(),
            resources_to_provision: c
                .resources_to_provision
                .iter()
                .map(|r| word(r.resource_type, "RESOURCE_TYPE_", resource_name))
                .collect(),
            data_permissions: c
                .data_permissions
                .iter()
                .map(|p| word(p.permission, "DATA_PRIVILEGE_", privilege_name))
                .collect(),
            object_permissions: c
                .object_permissions
                .iter()
                .map(|p| ObjectPermissionView {
                    name: word(p.name, "OBJECT_TYPE_", object_name),
                    level: word(p.level, "PERMISSION_LEVEL_", level_name),
                })
                .collect(),
            supported_clouds: c
                .supported_clouds
                .iter()
                .map(|x| word(*x, "CLOUD_", cloud_enum_name))
                .collect(),
            hostnames: c.hostnames.clone(),
            new_user_action: word(c.new_user_action, "NEW_USER_ACTION_", new_user_name),
            require_manual_signup: c.require_manual_signup,
            supports_demo: c.supports_demo,
            is_published_app: c.is_published_app,
            trial_type: word(c.trial_type, "TRIAL_TYPE_", trial_name),
            auth_options: c
                .auth_options
                .iter()
                .map(|a| word(*a, "AUTH_OPTION_", auth_name))
                .collect(),
            test_workspace_detail: c.test_workspace_detail.as_ref().map(|d| TestWorkspaceDetailView {
                hostname: d.hostname.clone(),
                port: d.port,
                jdbc_url: d.jdbc_url.clone(),
                databricks_jdbc_url: d.databricks_jdbc_url.clone(),
                http_path: d.http_path.clone(),
                cluster_id: d.cluster_id.clone(),
            }),
            platform: c.platform.as_ref().map(|p| PlatformView {
                unity_catalog: p.unity_catalog,
                warehouse_kinds: p
                    .warehouse_kinds
                    .iter()
                    .map(|w| word(*w, "WAREHOUSE_KIND_", warehouse_name))
                    .collect(),
                external_location: p.external_location,
            }),
            self_test: c.self_test.as_ref().map(|s| SelfTestView {
                integration_type: word(s.integration_type, "INTEGRATION_TYPE_", integration_name),
                non_admin: s.non_admin,
            }),
        }
    }
}

impl ConfigView {
    /// The API's typed configuration; every unknown enum word is reported,
    /// each with its path (`$.supported_clouds[1]`).
    pub fn to_proto(&self) -> Result<PartnerConfig, Vec<String>> {
        let mut errs = Vec::new();
        let e = &self.endpoints;
        let config = PartnerConfig {
            api_version: self.api_version.clone(),
            name: self.name.clone(),
            description_blurb: self.description_blurb.clone(),
            category: unword(
                &self.category,
                "PARTNER_CATEGORY_",
                category_parse,
                "$.category",
                &mut errs,
            ),
            base_url: self.base_url.clone(),
            endpoints: Some(PartnerEndpoints {
                connect_path: e.connect_path.clone(),
                get_connectors_path: e.get_connectors_path.clone(),
                test_connection_path: e.test_connection_path.clone(),
                delete_account_path: e.delete_account_path.clone(),
                expire_account_path: e.expire_account_path.clone(),
                delete_connection_path: e.delete_connection_path.clone(),
            }),
            sign_up_page: self.sign_up_page.clone(),
            privacy_policy: self.privacy_policy.clone(),
            terms_of_service: self.terms_of_service.clone(),
            logo_file: self.logo_file.clone(),
            icon_file: self.icon_file.clone(),
            resources_to_provision: self
                .resources_to_provision
                .iter()
                .enumerate()
                .map(|(i, r)| ResourceToProvision {
                    resource_type: unword(
                        r,
                        "RESOURCE_TYPE_",
                        resource_parse,
                        &format!("$.resources_to_provision[{i}]"),
                        &mut errs,
                    ),
                })
                .collect(),
            data_permissions: self
                .data_permissions
                .iter()
                .enumerate()
                .map(|(i, p)| DataPermission {
                    permission: unword(
                        p,
                        "DATA_PRIVILEGE_",
                        privilege_parse,
                        &format!("$.data_permissions[{i}]"),
                        &mut errs,
                    ),
                })
                .collect(),
            object_permissions: self
                .object_permissions
                .iter()
                .enumerate()
                .map(|(i, p)| ObjectPermission {
                    name: unword(
                        &p.name,
                        "OBJECT_TYPE_",
                        object_parse,
                        &format!("$.object_permissions[{i}].name"),
                        &mut errs,
                    ),
                    level: unword(
                        &p.level,
                        "PERMISSION_LEVEL_",
                        level_parse,
                        &format!("$.object_permissions[{i}].level"),
                        &mut errs,
                    ),
                })
                .collect(),
            supported_clouds: self
                .supported_clouds
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    unword(
                        c,
                        "CLOUD_",
                        cloud_parse,
                        &format!("$.supported_clouds[{i}]"),
                        &mut errs,
                    )
                })
                .collect(),
            hostnames: self.hostnames.clone(),
            new_user_action: unword(
                &self.new_user_action,
                "NEW_USER_ACTION_",
                new_user_parse,
                "$.new_user_action",
                &mut errs,
            ),
            require_manual_signup: self.require_manual_signup,
            supports_demo: self.supports_demo,
            is_published_app: self.is_published_app,
            trial_type: unword(
                &self.trial_type,
                "TRIAL_TYPE_",
                trial_parse,
                "$.trial_type",
                &mut errs,
            ),
            auth_options: self
                .auth_options
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    unword(
                        a,
                        "AUTH_OPTION_",
                        auth_parse,
                        &format!("$.auth_options[{i}]"),
                        &mut errs,
                    )
                })
                .collect(),
            test_workspace_detail: self.test_workspace_detail.as_ref().map(|d| TestWorkspaceDetail {
                hostname: d.hostname.clone(),
                port: d.port,
                jdbc_url: d.jdbc_url.clone(),
                databricks_jdbc_url: d.databricks_jdbc_url.clone(),
                http_path: d.http_path.clone(),
                cluster_id: d.cluster_id.clone(),
            }),
            platform: self.platform.as_ref().map(|p| PlatformSettings {
                unity_catalog: p.unity_catalog,
                warehouse_kinds: p
                    .warehouse_kinds
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        unword(
                            w,
                            "WAREHOUSE_KIND_",
                            warehouse_parse,
                            &format!("$.platform.warehouse_kinds[{i}]"),
                            &mut errs,
                        )
                    })
                    .collect(),
                external_location: p.external_location,
            }),
            self_test: self.self_test.as_ref().map(|s| SelfTestSettings {
                integration_type: unword(
                    &s.integration_type,
                    "INTEGRATION_TYPE_",
                    integration_parse,
                    "$.self_test.integration_type",
                    &mut errs,
                ),
                non_admin: s.non_admin,
            }),
        };
        if errs.is_empty() { Ok(config) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration using most fields, for round trips.
    pub(crate) fn sample_config() -> PartnerConfig {
        PartnerConfig {
            api_version: "1.0.0".into(),
            name: "Riverflow".into(),
            category: PartnerCategory::BiAndViz as i32,
            base_url: "https://riverflow.example".into(),
            endpoints: Some(PartnerEndpoints {
                connect_path: "/connect".into(),
                ..PartnerEndpoints::default()
            }),
            resources_to_provision: vec![ResourceToProvision {
                resource_type: ResourceType::SqlEndpoint as i32,
            }],
            data_permissions: vec![DataPermission {
                permission: DataPrivilege::AllPrivileges as i32,
            }],
            object_permissions: vec![ObjectPermission {
                name: ObjectType::MlflowExperiment as i32,
                level: PermissionLevel::CanManage as i32,
            }],
            supported_clouds: vec![Cloud::Aws as i32, Cloud::Gcp as i32],
            hostnames: vec!["riverflow.example".into()],
            new_user_action: NewUserAction::AutoAdd as i32,
            supports_demo: Some(true),
            auth_options: vec![AuthOption::OauthM2m as i32],
            platform: Some(PlatformSettings {
                unity_catalog: true,
                warehouse_kinds: vec![WarehouseKind::Serverless as i32],
                external_location: false,
            }),
            ..PartnerConfig::default()
        }
    }

    #[test]
    fn config_round_trips_through_the_view_and_json() {
        let c = sample_config();
        let view = ConfigView::from(&c);
        assert_eq!(view.category, "bi-and-viz");
        assert_eq!(view.data_permissions, vec!["all-privileges"]);
        assert_eq!(view.object_permissions[0].name, "mlflow-experiment");
        assert_eq!(view.supported_clouds, vec!["aws", "gcp"]);
        let json = serde_json::to_string(&view).unwrap();
        let back: ConfigView = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_proto().unwrap(), c);
    }

    #[test]
    fn unknown_words_are_all_reported_with_their_paths() {
        let view: ConfigView = serde_json::from_str(
            r#"{"name": "X", "category": "gardening", "supported_clouds": ["aws", "oracle"],
                "object_permissions": [{"name": "notebook", "level": "can-juggle"}]}"#,
        )
        .unwrap();
        let errs = view.to_proto().unwrap_err();
        assert_eq!(
            errs,
            vec![
                "$.category: unknown value \"gardening\"",
                "$.object_permissions[0].level: unknown value \"can-juggle\"",
                "$.supported_clouds[1]: unknown value \"oracle\"",
            ]
        );
    }

    #[test]
    fn tile_view_names_states_roles_and_times() {
        let t = Tile {
            id: "riverflow".into(),
            state: tilewave_proto::common::v1::TileState::SignedOff as i32,
            sign_offs: vec![SignOff {
                role: tilewave_proto::common::v1::SignOffRole::PartnerSolutionArchitect as i32,
                revision: 1,
                actor: "ada".into(),
                at: Some(prost_types::Timestamp {
                    seconds: 1_796_749_200,
                    nanos: 0,
                }),
                note: String::new(),
            }],
            ..Tile::default()
        };
        let v = TileView::from(&t);
        assert_eq!(v.state, "SIGNED_OFF");
        assert_eq!(v.sign_offs[0].role, "partner-sa");
        assert_eq!(v.sign_offs[0].at.as_deref(), Some("2026-12-08T17:00:00Z"));
        assert_eq!(v.ga_time, None);
    }
}
