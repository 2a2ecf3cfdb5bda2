//! Errors quote a bounded piece of their input: GetRollout with a 1 MB id
//! (or tile id) is refused with a short message, not answered with a header
//! no client accepts (which the client would report as RESOURCE_EXHAUSTED).

use tilewave_proto::rollout::v1::GetRolloutRequest;
use tonic::Code;

use crate::*;

/// The longest message a refusal of huge input may carry (the servers' last
/// resort, `tilewave_service::bounded`, cuts at 1 KiB).
const SHORT: usize = 1024;

#[tokio::test]
async fn a_megabyte_id_gets_a_short_error_not_resource_exhausted() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.rollout(0).await?;
    let huge = "r".repeat(1 << 20);
    // (request, what bounds the message: the quote of the id, or the
    // servers' last resort cutting a message that quoted it whole)
    for (req, bound) in [
        (
            GetRolloutRequest {
                id: huge.clone(),
                tile_id: String::new(),
            },
            "(1048576 bytes)",
        ),
        (
            GetRolloutRequest {
                id: String::new(),
                tile_id: huge.clone(),
            },
            "(message cut at",
        ),
    ] {
        let e = c.get_rollout(req).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::NotFound),
            "{:?}: {}",
            e.code(),
            e.message().chars().take(200).collect::<String>()
        );
        assert!(e.message().len() <= SHORT, "{} bytes", e.message().len());
        assert!(e.message().contains(bound), "{}", e.message());
    }
    Ok(())
}
