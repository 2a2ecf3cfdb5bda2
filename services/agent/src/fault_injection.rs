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
            Some(d) => Duration::try_from(d)
                .map_err(|_| Error::invalid("latency", "must be a non-negative duration"))?,
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
