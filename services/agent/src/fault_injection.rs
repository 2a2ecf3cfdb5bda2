//! The test-only `FaultInjectionService` ([`FaultInjector`]): sets the
//! faults in force on an agent ([`crate::faults::Faults`]). Served only with
//! `--enable-fault-injection`.

use std::time::Duration;

use tilewave_proto::agent::v1::fault_injection_service_server::FaultInjectionService;
use tilewave_proto::agent::v1::*;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::Error;
use crate::faults::Faults;
use crate::service::Agent;

/// The FaultInjectionService.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    agent: Agent,
}

impl FaultInjector {
    /// Injects faults into `agent`.
    pub fn new(agent: Agent) -> Self {
        Self { agent }
    }

    fn faults(&self) -> &Faults {
        self.agent.faults()
    }
}

/// An injected latency: a non-negative protobuf Duration with nanos below
/// a second. Checked by hand: prost's conversion panics (negation
/// overflow) on the most negative seconds.
fn latency_of(d: &prost_types::Duration) -> Result<Duration, Error> {
    let secs = u64::try_from(d.seconds);
    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000);
    match (secs, nanos) {
        (Ok(secs), Some(nanos)) => Ok(Duration::new(secs, nanos)),
        (Err(_), _) => Err(Error::invalid("latency", "must be a non-negative duration")),
        (Ok(_), None) => Err(Error::invalid(
            "latency",
            format!("nanos must be between 0 and 999999999, not {}", d.nanos),
        )),
    }
}

#[tonic::async_trait]
impl FaultInjectionService for FaultInjector {
    #[instrument(skip(self, req))]
    async fn inject_latency(
        &self,
        req: Request<InjectLatencyRequest>,
    ) -> Result<Response<InjectLatencyResponse>, Status> {
        let r = req.into_inner();
        let latency = match r.latency {
            None => Duration::ZERO,
            Some(d) => latency_of(&d)?,
        };
        self.faults().set_latency(latency, r.methods)?;
        Ok(Response::new(InjectLatencyResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }

    #[instrument(skip(self, req))]
    async fn fail_next_calls(
        &self,
        req: Request<FailNextCallsRequest>,
    ) -> Result<Response<FailNextCallsResponse>, Status> {
        let r = req.into_inner();
        self.faults().fail_next(r.count, r.methods, r.code, r.message)?;
        Ok(Response::new(FailNextCallsResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }

    #[instrument(skip(self, req), fields(tile_id = %req.get_ref().tile_id))]
    async fn report_unhealthy(
        &self,
        req: Request<ReportUnhealthyRequest>,
    ) -> Result<Response<ReportUnhealthyResponse>, Status> {
        let r = req.into_inner();
        self.faults()
            .set_unhealthy(&r.tile_id, r.unhealthy, r.error_rate, r.message)?;
        Ok(Response::new(ReportUnhealthyResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }

    #[instrument(skip(self, _req))]
    async fn lose_catalog(
        &self,
        _req: Request<LoseCatalogRequest>,
    ) -> Result<Response<LoseCatalogResponse>, Status> {
        let lost = self.agent.lose_catalog().await?;
        Ok(Response::new(LoseCatalogResponse {
            entries_lost: i32::try_from(lost).unwrap_or(i32::MAX),
        }))
    }

    #[instrument(skip(self, req), fields(refuse = req.get_ref().refuse))]
    async fn refuse_to_start(
        &self,
        req: Request<RefuseToStartRequest>,
    ) -> Result<Response<RefuseToStartResponse>, Status> {
        self.faults().set_refuse(req.get_ref().refuse)?;
        Ok(Response::new(RefuseToStartResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }

    #[instrument(skip(self, _req))]
    async fn clear_faults(
        &self,
        _req: Request<ClearFaultsRequest>,
    ) -> Result<Response<ClearFaultsResponse>, Status> {
        self.faults().clear()?;
        Ok(Response::new(ClearFaultsResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }

    #[instrument(skip(self, _req))]
    async fn get_faults(
        &self,
        _req: Request<GetFaultsRequest>,
    ) -> Result<Response<GetFaultsResponse>, Status> {
        Ok(Response::new(GetFaultsResponse {
            faults: Some(self.faults().snapshot()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_out_of_range_are_refused_not_a_panic() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(latency_of(&d(2, 5)).ok(), Some(Duration::new(2, 5)));
        assert_eq!(latency_of(&d(0, 0)).ok(), Some(Duration::ZERO));
        // Found by the random-input test: prost's own conversion panics on these.
        for bad in [
            d(i64::MIN, i32::MIN),
            d(i64::MIN, 0),
            d(-1, 0),
            d(0, -1),
            d(1, 1_000_000_000),
            d(i64::MAX, i32::MAX),
        ] {
            let err = latency_of(&bad).expect_err("refused");
            assert!(err.to_string().contains("latency"), "{bad:?}: {err}");
        }
    }
}
