//! Checks of the API's shape against docs/design.md and the project's rules, read
//! from the compiled `FILE_DESCRIPTOR_SET`: every service and RPC the design
//! names exists, no response can carry a secret, list calls page, mutations
//! name an etag (or a fencing token), enums start at UNSPECIFIED, and every
//! service, RPC, message and enum is documented.
#![allow(
    clippy::expect_used,
    reason = "test helpers outside #[test] functions may panic"
)]

use std::collections::{BTreeSet, HashMap};

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet, ServiceDescriptorProto};

fn fds() -> FileDescriptorSet {
    FileDescriptorSet::decode(tilewave_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// Our own files (not google/protobuf/*).
fn ours(set: &FileDescriptorSet) -> impl Iterator<Item = &FileDescriptorProto> {
    set.file.iter().filter(|f| f.package().starts_with("tilewave."))
}

/// Every message of every file by fully qualified name (".pkg.Name"),
/// nested ones included.
fn messages(set: &FileDescriptorSet) -> HashMap<String, &DescriptorProto> {
    fn add<'a>(prefix: &str, m: &'a DescriptorProto, out: &mut HashMap<String, &'a DescriptorProto>) {
        let name = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            add(&name, nested, out);
        }
        out.insert(name, m);
    }
    let mut out = HashMap::new();
    for f in &set.file {
        for m in &f.message_type {
            add(&format!(".{}", f.package()), m, &mut out);
        }
    }
    out
}

fn service<'a>(set: &'a FileDescriptorSet, package: &str, name: &str) -> Option<&'a ServiceDescriptorProto> {
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| &f.service)
        .find(|s| s.name() == name)
}

/// Every service and RPC in the services table of docs/design.md ("Processes and their responsibilities")
/// (ScheduleGa, ListLaunches and the calendar RPCs included).
const DESIGN: &[(&str, &str, &[&str])] = &[
    (
        "tilewave.registry.v1",
        "RegistryService",
        &[
            "CreateTile",
            "ImportPartnerConfig",
            "UpdateTile",
            "GetTile",
            "ListTiles",
            "WatchTiles",
            "GetHistory",
            "RecordSignOff",
            "WithdrawSignOff",
            "SetTestWorkspace",
            "SetGaDate",
            "AdvanceLifecycle",
            "Withdraw",
        ],
    ),
    (
        "tilewave.rollout.v1",
        "RolloutService",
        &[
            "PlanRollout",
            "StartRollout",
            "GetRollout",
            "ListRollouts",
            "WatchRollout",
            "PauseRollout",
            "ResumeRollout",
            "AbortRollout",
            "RollbackRollout",
            "RetryRegion",
            "SkipRegion",
            "Approve",
            "WhereIsTile",
            "SetFreeze",
            "GetFreeze",
            "ScheduleGa",
            "ListLaunches",
            "SetLaunchCalendar",
            "GetLaunchCalendar",
            "EditLaunchCalendar",
        ],
    ),
    (
        "tilewave.clock.v1",
        "ClockService",
        &["GetTime", "Advance", "Set", "SetRate"],
    ),
    (
        "tilewave.credentials.v1",
        "CredentialsService",
        &[
            "SubmitCredential",
            "StartRotation",
            "GetRotation",
            "WatchRotation",
            "ListCredentials",
            "ConfirmOldRetired",
            "CancelRotation",
            "SetRotationSchedule",
            "ListRotations",
            "Rewrap",
        ],
    ),
    (
        "tilewave.escalation.v1",
        "EscalationService",
        &[
            "OpenIncident",
            "GetIncident",
            "ListIncidents",
            "WatchIncidents",
            "Acknowledge",
            "AddNote",
            "CompleteStep",
            "Mitigate",
            "Resolve",
            "Reopen",
            "SetPolicy",
            "GetPolicy",
            "SetSchedule",
            "GetSchedule",
            "WhoIsOnCall",
            "SetSop",
            "GetSop",
            "SetPerson",
            "GetPerson",
            "ListPeople",
            "SetPartnerContacts",
        ],
    ),
    (
        "tilewave.agent.v1",
        "AgentService",
        &[
            "ApplyTile",
            "RemoveTile",
            "ListTiles",
            "Health",
            "InstallCredential",
            "VerifyCredential",
        ],
    ),
    (
        "tilewave.agent.v1",
        "FaultInjectionService",
        &[
            "InjectLatency",
            "FailNextCalls",
            "ReportUnhealthy",
            "LoseCatalog",
            "RefuseToStart",
            "ClearFaults",
        ],
    ),
];

#[test]
fn every_service_and_rpc_in_the_design_exists() {
    let set = fds();
    let mut missing = Vec::new();
    for (package, name, rpcs) in DESIGN {
        let Some(svc) = service(&set, package, name) else {
            missing.push(format!("service {package}.{name}"));
            continue;
        };
        let have: BTreeSet<&str> = svc.method.iter().map(|m| m.name()).collect();
        for rpc in *rpcs {
            if !have.contains(rpc) {
                missing.push(format!("rpc {package}.{name}/{rpc}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing from the protos: {missing:#?}");
}

#[test]
fn watch_rpcs_stream_from_the_server_and_nothing_else_streams() {
    let set = fds();
    for f in ours(&set) {
        for s in &f.service {
            for m in &s.method {
                let watch = m.name().starts_with("Watch");
                assert_eq!(
                    m.server_streaming(),
                    watch,
                    "{}/{}: server streaming",
                    s.name(),
                    m.name()
                );
                assert!(
                    !m.client_streaming(),
                    "{}/{}: client streaming",
                    s.name(),
                    m.name()
                );
            }
        }
    }
}

/// Field names that would mean a secret in plain text (or its ciphertext).
const SECRET_FIELD_WORDS: &[&str] = &["plaintext", "password", "secret", "ciphertext", "private_key"];

/// Message types that hold a secret, even encrypted.
const SECRET_TYPES: &[&str] = &[
    ".tilewave.credentials.v1.EncryptedSecret",
    ".tilewave.credentials.v1.StoredCredential",
];

/// Every field reachable from `root` (through message-typed fields, any
/// depth) that is named like a secret or has a secret-holding type, as
/// "Message.field" paths.
fn secret_fields(all: &HashMap<String, &DescriptorProto>, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if SECRET_TYPES.contains(&name.as_str()) {
            found.push(format!("{name} (a secret-holding type)"));
            continue;
        }
        let Some(msg) = all.get(&name) else { continue };
        for field in &msg.field {
            let lower = field.name().to_ascii_lowercase();
            if SECRET_FIELD_WORDS.iter().any(|w| lower.contains(w)) {
                found.push(format!("{name}.{}", field.name()));
            }
            if field.r#type() == Type::Message {
                todo.push(field.type_name().to_string());
            }
        }
    }
    found
}

#[test]
fn no_response_of_any_service_can_carry_a_secret() {
    let set = fds();
    let all = messages(&set);
    let mut leaks = Vec::new();
    let mut checked = 0;
    for f in ours(&set) {
        for s in &f.service {
            for m in &s.method {
                checked += 1;
                for leak in secret_fields(&all, m.output_type()) {
                    leaks.push(format!("{}/{} -> {leak}", s.name(), m.name()));
                }
            }
        }
    }
    let designed: usize = DESIGN.iter().map(|(_, _, rpcs)| rpcs.len()).sum();
    assert!(
        checked >= designed,
        "only {checked} RPCs checked: is the descriptor set complete?"
    );
    assert!(leaks.is_empty(), "responses that can carry a secret: {leaks:#?}");
}

#[test]
fn every_credentials_read_response_shows_fingerprints_only() {
    let set = fds();
    let all = messages(&set);
    let svc = service(&set, "tilewave.credentials.v1", "CredentialsService").expect("credentials service");
    for m in &svc.method {
        assert_eq!(
            secret_fields(&all, m.output_type()),
            Vec::<String>::new(),
            "{}",
            m.name()
        );
    }
    // The credential a read shows is identified by a fingerprint.
    let credential = all[".tilewave.credentials.v1.Credential"];
    assert!(credential.field.iter().any(|f| f.name() == "fingerprint"));
}

#[test]
fn the_secret_check_catches_a_plaintext_field_however_deep() {
    // A made-up API in which a response reaches a secret two levels down,
    // and another that embeds the encrypted form: both must be caught.
    let field = |name: &str, ty: Type, type_name: &str| prost_types::FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(1),
        r#type: Some(ty as i32),
        type_name: (!type_name.is_empty()).then(|| type_name.into()),
        ..Default::default()
    };
    let msg = |name: &str, fields: Vec<prost_types::FieldDescriptorProto>| DescriptorProto {
        name: Some(name.into()),
        field: fields,
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("bad.proto".into()),
        package: Some("bad.v1".into()),
        message_type: vec![
            msg("GetResponse", vec![field("item", Type::Message, ".bad.v1.Item")]),
            msg("Item", vec![field("detail", Type::Message, ".bad.v1.Detail")]),
            msg("Detail", vec![field("secret_plaintext", Type::String, "")]),
            msg(
                "ListResponse",
                vec![field(
                    "stored",
                    Type::Message,
                    ".tilewave.credentials.v1.EncryptedSecret",
                )],
            ),
            msg("Clean", vec![field("fingerprint", Type::String, "")]),
        ],
        ..Default::default()
    };
    let set = FileDescriptorSet { file: vec![file] };
    let all = messages(&set);
    assert_eq!(
        secret_fields(&all, ".bad.v1.GetResponse"),
        vec![".bad.v1.Detail.secret_plaintext"]
    );
    assert_eq!(secret_fields(&all, ".bad.v1.ListResponse").len(), 1);
    assert!(secret_fields(&all, ".bad.v1.Clean").is_empty());
}

#[test]
fn plaintext_goes_in_only_through_the_two_documented_request_fields() {
    let set = fds();
    let mut holders = BTreeSet::new();
    for (name, msg) in messages(&set) {
        for f in &msg.field {
            if f.name().contains("plaintext") {
                holders.insert(format!("{name}.{}", f.name()));
            }
        }
    }
    let expected: BTreeSet<String> = [
        ".tilewave.credentials.v1.SubmitCredentialRequest.plaintext",
        ".tilewave.agent.v1.InstallCredentialRequest.plaintext",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(holders, expected);
}

#[test]
fn list_calls_page_with_the_common_page_request() {
    let set = fds();
    let all = messages(&set);
    let mut bad = Vec::new();
    for f in ours(&set) {
        for s in &f.service {
            for m in &s.method {
                let lists = m.name().starts_with("List") || ["GetHistory", "WhereIsTile"].contains(&m.name());
                if !lists {
                    continue;
                }
                let req = all[m.input_type()];
                let resp = all[m.output_type()];
                let paged = req
                    .field
                    .iter()
                    .any(|f| f.name() == "page" && f.type_name() == ".tilewave.common.v1.PageRequest");
                let token = resp
                    .field
                    .iter()
                    .any(|f| f.name() == "next_page_token" && f.r#type() == Type::String);
                if !paged || !token {
                    bad.push(format!("{}/{}", s.name(), m.name()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "list calls without PageRequest/next_page_token: {bad:?}"
    );
}

/// Mutating RPCs that need no `etag`, and why.
const NO_ETAG: &[(&str, &str)] = &[
    ("CreateTile", "creates"),
    ("StartRollout", "creates; idempotent by request_id"),
    ("ScheduleGa", "names tile_etag"),
    ("SubmitCredential", "creates; idempotent by request_id"),
    ("StartRotation", "creates; idempotent by request_id"),
    ("Rewrap", "every secret, each write guarded by its own etag"),
    ("OpenIncident", "creates; deduplicated by dedup_key"),
    ("Advance", "the clock only moves forward"),
    ("Set", "the clock only moves forward"),
    ("SetRate", "last writer wins by design"),
];

/// Reads, for which neither applies.
fn is_read(rpc: &str) -> bool {
    ["Get", "List", "Watch", "Plan", "Where", "Who"]
        .iter()
        .any(|p| rpc.starts_with(p))
        || ["Health", "VerifyCredential"].contains(&rpc)
}

#[test]
fn mutations_name_an_etag_or_a_fencing_token() {
    let set = fds();
    let all = messages(&set);
    let mut bad = Vec::new();
    for f in ours(&set) {
        for s in &f.service {
            if s.name() == "FaultInjectionService" {
                continue;
            }
            for m in &s.method {
                if is_read(m.name()) || NO_ETAG.iter().any(|(n, _)| *n == m.name()) {
                    continue;
                }
                // Agents are fenced instead: the owner's token orders writes.
                let wanted = if s.name() == "AgentService" {
                    "fencing_token"
                } else {
                    "etag"
                };
                let has = all[m.input_type()]
                    .field
                    .iter()
                    .any(|f| f.name() == wanted && f.r#type() == Type::Int64);
                if !has {
                    bad.push(format!("{}/{} lacks int64 {wanted}", s.name(), m.name()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn enums_start_at_unspecified_and_fields_are_snake_case() {
    let set = fds();
    let mut bad = Vec::new();
    for f in ours(&set) {
        let mut enums: Vec<_> = f.enum_type.iter().collect();
        let mut todo: Vec<&DescriptorProto> = f.message_type.iter().collect();
        while let Some(m) = todo.pop() {
            enums.extend(&m.enum_type);
            todo.extend(&m.nested_type);
            for field in &m.field {
                let name = field.name();
                let snake = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !name.starts_with('_');
                if !snake {
                    bad.push(format!("{}.{name}: not snake_case", m.name()));
                }
            }
        }
        for e in enums {
            let first = &e.value[0];
            if first.number() != 0 || !first.name().ends_with("_UNSPECIFIED") {
                bad.push(format!("enum {}: zero value {}", e.name(), first.name()));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn every_service_rpc_message_and_enum_is_documented() {
    let set = fds();
    let mut undocumented = Vec::new();
    for f in ours(&set) {
        let info = f
            .source_code_info
            .as_ref()
            .expect("descriptor set keeps source info (comments)");
        let documented: BTreeSet<&[i32]> = info
            .location
            .iter()
            .filter(|l| !l.leading_comments().trim().is_empty())
            .map(|l| l.path.as_slice())
            .collect();
        let mut need = |path: Vec<i32>, what: String| {
            if !documented.contains(path.as_slice()) {
                undocumented.push(format!("{}: {what}", f.name()));
            }
        };
        // Paths per descriptor.proto: 4 = message_type, 5 = enum_type,
        // 6 = service, and within a service 2 = method.
        for (i, m) in f.message_type.iter().enumerate() {
            need(vec![4, i as i32], format!("message {}", m.name()));
        }
        for (i, e) in f.enum_type.iter().enumerate() {
            need(vec![5, i as i32], format!("enum {}", e.name()));
        }
        for (i, s) in f.service.iter().enumerate() {
            need(vec![6, i as i32], format!("service {}", s.name()));
            for (j, m) in s.method.iter().enumerate() {
                need(
                    vec![6, i as i32, 2, j as i32],
                    format!("rpc {}/{}", s.name(), m.name()),
                );
            }
        }
    }
    assert!(undocumented.is_empty(), "{undocumented:#?}");
}
