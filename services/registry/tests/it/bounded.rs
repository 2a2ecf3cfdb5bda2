//! Errors quote a bounded piece of their input: a 1 MB id is refused with a
//! short message, not answered with a header no client accepts (which the
//! client would report as RESOURCE_EXHAUSTED).

use tilewave_proto::registry::v1::{
    GetHistoryRequest, GetTileRequest, ImportPartnerConfigRequest, RecordSignOffRequest, WithdrawRequest,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::*;

/// The longest message a refusal of huge input may carry.
const SHORT: usize = 300;

#[tokio::test]
async fn a_megabyte_id_gets_a_short_error_not_resource_exhausted() -> Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    for huge in ["a".repeat(1 << 20), "é".repeat(1 << 19), "A".repeat(1 << 20)] {
        let e = c
            .get_tile(GetTileRequest {
                id: huge.clone(),
                revision: 0,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::NotFound),
            "{:?}: {}",
            e.code(),
            e.message().chars().take(200).collect::<String>()
        );
        assert!(e.message().len() < SHORT, "{} bytes", e.message().len());
        assert!(e.message().contains("…"), "{}", e.message());

        let e = c
            .get_history(GetHistoryRequest {
                id: huge.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(e.message().len() < SHORT, "{} bytes", e.message().len());

        let e = c
            .record_sign_off(RecordSignOffRequest {
                id: huge,
                role: SignOffRole::Legal as i32,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(e.message().len() < SHORT, "{} bytes", e.message().len());
    }
    Ok(())
}

#[tokio::test]
async fn a_megabyte_value_in_a_config_gets_short_violations() -> Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    let huge = format!("https://{} x", "h".repeat(1 << 20));
    let doc = RIVERFLOW.replacen("https://", &huge, 1);
    let before = stack.dump().await?;
    let e = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: doc,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(e.message().len() < SHORT, "{} bytes", e.message().len());
    let bad = e.get_details_bad_request().expect("field violations");
    assert!(!bad.field_violations.is_empty());
    for v in &bad.field_violations {
        assert!(
            v.description.len() < SHORT,
            "{}: {} bytes",
            v.field,
            v.description.len()
        );
    }
    assert_eq!(stack.dump().await?, before, "nothing stored");
    Ok(())
}

/// The limits at the edge (`tilewave_service::limits`, `transport`): a
/// message over 4 MiB is refused by the transport, a document over 256 KiB
/// and a reason over 4096 characters by the handler, naming the field; none
/// of them changes anything.
#[tokio::test]
async fn oversized_messages_documents_and_reasons_are_refused() -> Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    let tile = import(&mut c, RIVERFLOW, "").await?;
    let before = stack.dump().await?;

    // Over the message limit: refused before any handler runs.
    let e = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: " ".repeat(tilewave_service::limits::MAX_MESSAGE_BYTES + 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{:?}: {}",
        e.code(),
        e.message()
    );

    // Under it, but over the document limit.
    let doc = format!(
        "{RIVERFLOW}{}",
        " ".repeat(tilewave_service::limits::MAX_DOCUMENT_BYTES)
    );
    let e = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: doc,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(e.message().starts_with("config_json: "), "{}", e.message());

    let e = c
        .withdraw(WithdrawRequest {
            id: tile.id.clone(),
            etag: tile.etag,
            reason: "r".repeat(tilewave_service::limits::MAX_TEXT_CHARS + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    let bad = e.get_details_bad_request().expect("field violations");
    assert_eq!(bad.field_violations[0].field, "reason");

    assert_eq!(stack.dump().await?, before, "nothing stored");
    Ok(())
}
