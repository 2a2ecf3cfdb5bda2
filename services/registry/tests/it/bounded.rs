//! Errors quote a bounded piece of their input: a 1 MB id is refused with a
//! short message, not answered with a header no client accepts (which the
//! client would report as RESOURCE_EXHAUSTED).

use tilewave_proto::registry::v1::{
    GetHistoryRequest, GetTileRequest, ImportPartnerConfigRequest, RecordSignOffRequest,
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
