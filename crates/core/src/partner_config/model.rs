//! The typed Partner Connect config model: the allowed values of every
//! enumerated field (docs/domain.md's table) and the structs a validated config
//! becomes.

use std::fmt;

use serde::{Serialize, Serializer};

use super::walk::{WireEnum, define_wire_enum};
use crate::regions::Cloud;

define_wire_enum! {
    /// The catalog section a tile is listed in.
    Category, "category" {
        /// Ingestion.
        Ingest = "INGEST",
        /// Data preparation and transformation.
        DataPrepAndTransform = "DATA_PREP_AND_TRANSFORM",
        /// Security and governance.
        SecurityAndGovernance = "SECURITY_AND_GOVERNANCE",
        /// BI and visualisation.
        BiAndViz = "BI_AND_VIZ",
        /// Machine learning.
        Ml = "ML",
        /// Data quality.
        DataQuality = "DATA_QUALITY",
        /// Reverse ETL.
        ReverseEtl = "REVERSE_ETL",
        /// Semantic layer.
        SemanticLayer = "SEMANTIC_LAYER",
        /// Data governance.
        DataGovernance = "DATA_GOVERNANCE",
    }
}

define_wire_enum! {
    /// A Databricks resource provisioned for the partner on connect.
    ResourceType, "resource type" {
        /// A personal access token.
        Pat = "PAT",
        /// A SQL warehouse.
        SqlEndpoint = "SqlEndpoint",
        /// A destination location (catalog/schema) to write to.
        DestLocation = "DestLocation",
        /// An interactive cluster.
        InteractiveCluster = "InteractiveCluster",
    }
}

define_wire_enum! {
    /// A data (Unity Catalog / table ACL) privilege granted to the partner.
    DataPermission, "data permission" {
        /// SELECT.
        Select = "SELECT",
        /// CREATE.
        Create = "CREATE",
        /// MODIFY.
        Modify = "MODIFY",
        /// USAGE.
        Usage = "USAGE",
        /// READ_METADATA.
        ReadMetadata = "READ_METADATA",
        /// CREATE_NAMED_FUNCTION.
        CreateNamedFunction = "CREATE_NAMED_FUNCTION",
        /// MODIFY_CLASSPATH.
        ModifyClasspath = "MODIFY_CLASSPATH",
        /// ALL PRIVILEGES (spelled with a space).
        AllPrivileges = "ALL PRIVILEGES",
        /// USE_CATALOG.
        UseCatalog = "USE_CATALOG",
        /// USE_SCHEMA.
        UseSchema = "USE_SCHEMA",
        /// CREATE_SCHEMA.
        CreateSchema = "CREATE_SCHEMA",
        /// CREATE_TABLE.
        CreateTable = "CREATE_TABLE",
    }
}

define_wire_enum! {
    /// A workspace object type the partner gets a permission on.
    ObjectPermissionName, "object permission name" {
        /// Tokens.
        Token = "Token",
        /// Passwords.
        Password = "Password",
        /// Clusters.
        Cluster = "Cluster",
        /// Instance pools.
        Pool = "Pool",
        /// Jobs.
        Job = "Job",
        /// Delta Live Tables pipelines.
        DltPipeline = "DLT_Pipeline",
        /// Notebooks.
        Notebook = "Notebook",
        /// Workspace directories.
        Directory = "Directory",
        /// MLflow experiments.
        MlflowExperiment = "MLflow_Experiment",
        /// MLflow registered models.
        MlflowRegisteredModel = "MLflow_Registered_Model",
        /// SQL warehouses.
        SqlEndpoint = "SQL_Endpoint",
        /// Repos.
        Repo = "Repo",
    }
}

define_wire_enum! {
    /// The level of an object permission.
    PermissionLevel, "permission level" {
        /// CAN_MANAGE.
        CanManage = "CAN_MANAGE",
        /// CAN_RESTART.
        CanRestart = "CAN_RESTART",
        /// CAN_ATTACH_TO.
        CanAttachTo = "CAN_ATTACH_TO",
        /// IS_OWNER.
        IsOwner = "IS_OWNER",
        /// CAN_MANAGE_RUN.
        CanManageRun = "CAN_MANAGE_RUN",
        /// CAN_VIEW.
        CanView = "CAN_VIEW",
        /// CAN_READ.
        CanRead = "CAN_READ",
        /// CAN_RUN.
        CanRun = "CAN_RUN",
        /// CAN_EDIT.
        CanEdit = "CAN_EDIT",
        /// CAN_USE.
        CanUse = "CAN_USE",
        /// CAN_MANAGE_STAGING_VERSIONS.
        CanManageStagingVersions = "CAN_MANAGE_STAGING_VERSIONS",
        /// CAN_MANAGE_PRODUCTION_VERSIONS.
        CanManageProductionVersions = "CAN_MANAGE_PRODUCTION_VERSIONS",
        /// CAN_EDIT_METADATA.
        CanEditMetadata = "CAN_EDIT_METADATA",
        /// CAN_VIEW_METADATA.
        CanViewMetadata = "CAN_VIEW_METADATA",
    }
}

define_wire_enum! {
    /// What the partner does when the connecting user has no account.
    NewUserAction, "new_user_action" {
        /// Create the account automatically.
        AutoAdd = "auto_add",
        /// Invite the user.
        Invite = "invite",
        /// Answer "account not found".
        NotFound = "not_found",
        /// Answer with an error.
        Error = "error",
    }
}

define_wire_enum! {
    /// Whom a trial is granted to.
    TrialType, "trial_type" {
        /// The user.
        User = "user",
        /// The account.
        Account = "account",
    }
}

define_wire_enum! {
    /// How the partner authenticates to Databricks.
    AuthOption, "auth option" {
        /// A personal access token of the provisioned service principal.
        AuthPat = "AUTH_PAT",
        /// An OAuth machine-to-machine secret of the service principal.
        AuthOauthM2m = "AUTH_OAUTH_M2M",
        /// OAuth user-to-machine.
        AuthOauthU2m = "AUTH_OAUTH_U2M",
    }
}

define_wire_enum! {
    /// A capability of a self-test tile.
    SupportedFeature, "supported feature" {
        /// Unity Catalog (a catalog selector is shown).
        UnityCatalog = "UNITY_CATALOG",
        /// Usable by non-admin users.
        NonAdmin = "NON_ADMIN",
        /// External locations.
        ExternalLocation = "EXTERNAL_LOCATION",
    }
}

define_wire_enum! {
    /// What a self-test tile's integration touches.
    IntegrationType, "integration type" {
        /// No Databricks resources.
        NoIntegration = "NO_INTEGRATION",
        /// Cluster compute.
        ClusterCompute = "CLUSTER_COMPUTE",
        /// Reads through a SQL warehouse.
        WarehouseRead = "WAREHOUSE_READ",
        /// Reads and writes through a SQL warehouse.
        WarehouseReadWrite = "WAREHOUSE_READ_WRITE",
        /// Writes through a SQL warehouse.
        WarehouseWrite = "WAREHOUSE_WRITE",
        /// Workspace management.
        WorkspaceManagement = "WORKSPACE_MANAGEMENT",
    }
}

impl WireEnum for Cloud {
    const WHAT: &'static str = "cloud";
    fn all() -> &'static [Self] {
        &Cloud::ALL
    }
    fn wire(self) -> &'static str {
        self.as_str()
    }
}

/// `major.minor.patch` of the Partner Connect API the partner implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The partner API's paths, relative to `base_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    /// `POST {base_url}{connect_path}`: the call behind the tile.
    pub connect_path: String,
    /// Lists connectors (ingestion partners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get_connectors_path: Option<String>,
    /// Tests a connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_connection_path: Option<String>,
    /// Deletes an account (test only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_account_path: Option<String>,
    /// Expires an account (test only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_account_path: Option<String>,
    /// Deletes a connection; the API spec requires it, the config model
    /// does not, so its absence is a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_connection_path: Option<String>,
}

/// A resource provisioned on connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResourceToProvision {
    /// Its type.
    pub resource_type: ResourceType,
}

/// A data privilege granted on connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DataPermissionGrant {
    /// The privilege.
    pub permission: DataPermission,
}

/// An object permission granted on connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ObjectPermission {
    /// The object type.
    pub name: ObjectPermissionName,
    /// The level.
    pub level: PermissionLevel,
}

/// Connection details of the partner's test workspace (optional, all fields
/// optional: they only help certification runs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TestWorkspaceDetail {
    /// Workspace host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// JDBC URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jdbc_url: Option<String>,
    /// Databricks JDBC URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databricks_jdbc_url: Option<String>,
    /// HTTP path of the warehouse or cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// Cluster id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

fn clouds<S: Serializer>(clouds: &[Cloud], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(clouds.iter().map(|c| c.as_str()))
}

/// A validated full PartnerConfig. Serialises back to the same JSON format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerConfig {
    /// The Partner Connect API version implemented.
    pub api_version: ApiVersion,
    /// The tile's display name (trimmed).
    pub name: String,
    /// The catalog blurb.
    pub description_blurb: String,
    /// The catalog section.
    pub category: Category,
    /// The partner API's base URL.
    pub base_url: String,
    /// The partner API's paths.
    pub endpoints: Endpoints,
    /// Where users sign up.
    pub sign_up_page: String,
    /// The privacy policy.
    pub privacy_policy: String,
    /// The terms of service.
    pub terms_of_service: String,
    /// The logo image file name (.png/.svg).
    pub logo_file: String,
    /// The icon image file name (.png/.svg).
    pub icon_file: String,
    /// Resources provisioned on connect.
    pub resources_to_provision: Vec<ResourceToProvision>,
    /// Data privileges granted on connect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_permissions: Vec<DataPermissionGrant>,
    /// Object permissions granted on connect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub object_permissions: Vec<ObjectPermission>,
    /// The clouds the tile is offered on (never empty).
    #[serde(serialize_with = "clouds")]
    pub supported_clouds: Vec<Cloud>,
    /// The redirect-URL allow-list (bare host names, never empty).
    pub hostnames: Vec<String>,
    /// What the partner does for unknown users.
    pub new_user_action: NewUserAction,
    /// The user must sign up by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_manual_signup: Option<bool>,
    /// A demo is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_demo: Option<bool>,
    /// Listed as a published app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_published_app: Option<bool>,
    /// Whom trials go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_type: Option<TrialType>,
    /// Authentication options as given; see [`PartnerConfig::effective_auth_options`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_options: Option<Vec<AuthOption>>,
    /// Test workspace details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_workspace_detail: Option<TestWorkspaceDetail>,
}

impl PartnerConfig {
    /// The auth options in force: AUTH_PAT when none are given.
    pub fn effective_auth_options(&self) -> Vec<AuthOption> {
        effective(self.auth_options.as_deref())
    }
}

/// A validated self-test tile config (the `{"partner": {...}}` format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTestConfig {
    /// Display name (trimmed).
    pub name: String,
    /// Catalog section.
    pub category: Category,
    /// The full connect URL.
    pub connect_url: String,
    /// Where users sign up.
    pub sign_up_url: String,
    /// The delete-connection URL, if any.
    pub delete_url: Option<String>,
    /// Terms of service.
    pub terms_of_service_url: String,
    /// Privacy policy.
    pub privacy_policy_url: String,
    /// The redirect allow-list, split from the comma-separated `hostname`.
    pub hostnames: Vec<String>,
    /// Capabilities.
    pub supported_features: Vec<SupportedFeature>,
    /// What the integration touches.
    pub integration_type: IntegrationType,
    /// Auth options, normalised (with NON_ADMIN, M2M became AUTH_PAT).
    pub auth_options: Option<Vec<AuthOption>>,
}

impl SelfTestConfig {
    /// The auth options in force: AUTH_PAT when none are given.
    pub fn effective_auth_options(&self) -> Vec<AuthOption> {
        effective(self.auth_options.as_deref())
    }

    /// True when the tile supports non-admin users.
    pub fn non_admin(&self) -> bool {
        self.supported_features.contains(&SupportedFeature::NonAdmin)
    }
}

fn effective(given: Option<&[AuthOption]>) -> Vec<AuthOption> {
    match given {
        Some(opts) if !opts.is_empty() => opts.to_vec(),
        Some(_) | None => vec![AuthOption::AuthPat],
    }
}
