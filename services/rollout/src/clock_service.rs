//! The ClockService: reads and moves the virtual clock stored at `clock`.
//! With the system clock in use, only GetTime answers; every change is
//! FAILED_PRECONDITION. The clock never moves backwards.

use std::sync::Arc;

use tilewave_proto::clock::v1::clock_service_server::ClockService;
use tilewave_proto::clock::v1::*;
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Clock, Store, VirtualClock};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::Error;
use crate::spec::duration_of;

/// The ClockService implementation.
#[derive(Debug, Clone)]
pub struct Clocks {
    store: Store,
    clock: Arc<dyn Clock>,
    virtual_clock: Option<Arc<VirtualClock>>,
}

impl Clocks {
    /// Serves `clock`; `virtual_clock` when it is the virtual one.
    pub fn new(store: Store, clock: Arc<dyn Clock>, virtual_clock: Option<Arc<VirtualClock>>) -> Self {
        Self {
            store,
            clock,
            virtual_clock,
        }
    }

    async fn reading(&self) -> Result<ClockReading, Status> {
        let etag = match &self.virtual_clock {
            Some(_) => self
                .store
                .get::<tilewave_proto::common::v1::VirtualClock>(&self.store.keys().clock())
                .await
                .map_err(Error::from)?
                .map_or(0, |v| v.etag),
            None => 0,
        };
        Ok(ClockReading {
            now: Some(to_proto_timestamp(self.clock.now())),
            virtual_clock: self.virtual_clock.is_some(),
            rate: self
                .virtual_clock
                .as_ref()
                .and_then(|v| v.state())
                .map_or(1.0, |s| s.rate),
            etag,
        })
    }

    fn virtual_clock(&self) -> Result<&VirtualClock, Status> {
        self.virtual_clock
            .as_deref()
            .ok_or_else(|| Error::from(tilewave_store::Error::ClockNotVirtual).into())
    }
}

/// The latest moment the virtual clock may be moved to:
/// 2200-01-01T00:00:00Z. Audit records are keyed by nanoseconds since 1970
/// in an i64 (up to 2262-04-11): past that no change could be recorded, so
/// every write would fail. The margin leaves a clock running at
/// [`MAX_RATE`] half an hour of real time.
pub const LATEST: jiff::Timestamp = jiff::Timestamp::constant(7_258_118_400, 0);

/// The fastest the virtual clock may run: a million virtual seconds per
/// real second (a year in about half a minute).
pub const MAX_RATE: f64 = 1_000_000.0;

/// A refusal of a move of the clock to `to` past [`LATEST`], about `field`.
fn past_latest(field: &str, to: impl std::fmt::Display) -> Status {
    Error::invalid(
        field,
        format!(
            "would move the clock to {to}, past {LATEST}, the latest it may show (the audit log cannot record later moments)"
        ),
    )
    .into()
}

/// A store error of a move of the clock requested in `field`.
fn store_err(field: &str, e: tilewave_store::Error) -> Status {
    match e {
        tilewave_store::Error::ClockBackwards { current, requested } => Error::invalid(
            field,
            format!("the clock only moves forward: it is {current}, {requested} is in the past"),
        )
        .into(),
        other => Error::from(other).into(),
    }
}

#[tonic::async_trait]
impl ClockService for Clocks {
    #[instrument(skip_all)]
    async fn get_time(&self, _req: Request<GetTimeRequest>) -> Result<Response<GetTimeResponse>, Status> {
        Ok(Response::new(GetTimeResponse {
            clock: Some(self.reading().await?),
        }))
    }

    #[instrument(skip_all)]
    async fn advance(&self, req: Request<AdvanceRequest>) -> Result<Response<AdvanceResponse>, Status> {
        let actor = Actor::from_request(&req);
        let vc = self.virtual_clock()?;
        let by = req
            .into_inner()
            .by
            .ok_or_else(|| Error::invalid("by", "required"))
            .and_then(|d| duration_of("by", &d))?;
        if by.is_negative() || by.is_zero() {
            return Err(Error::invalid(
                "by",
                format!("must be positive, got {by:#}: the clock only moves forward"),
            )
            .into());
        }
        match self.clock.now().checked_add(by) {
            Ok(to) if to <= LATEST => {}
            Ok(to) => return Err(past_latest("by", to)),
            Err(_) => return Err(past_latest("by", format!("now + {by:#}"))),
        }
        vc.advance(by, &actor).await.map_err(|e| store_err("by", e))?;
        Ok(Response::new(AdvanceResponse {
            clock: Some(self.reading().await?),
        }))
    }

    #[instrument(skip_all)]
    async fn set(&self, req: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        let actor = Actor::from_request(&req);
        let vc = self.virtual_clock()?;
        let to = req
            .into_inner()
            .to
            .ok_or_else(|| Error::invalid("to", "required"))?;
        let to = tilewave_store::clock::from_proto_timestamp(&to)
            .map_err(|e| Error::invalid("to", e.to_string()))?;
        if to > LATEST {
            return Err(past_latest("to", to));
        }
        vc.set(to, &actor).await.map_err(|e| store_err("to", e))?;
        Ok(Response::new(SetResponse {
            clock: Some(self.reading().await?),
        }))
    }

    #[instrument(skip_all)]
    async fn set_rate(&self, req: Request<SetRateRequest>) -> Result<Response<SetRateResponse>, Status> {
        let actor = Actor::from_request(&req);
        let vc = self.virtual_clock()?;
        let rate = req.into_inner().rate;
        if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
            return Err(
                Error::invalid("rate", format!("must be between 0 and {MAX_RATE}, got {rate}")).into(),
            );
        }
        vc.set_rate(rate, &actor)
            .await
            .map_err(|e| store_err("rate", e))?;
        Ok(Response::new(SetRateResponse {
            clock: Some(self.reading().await?),
        }))
    }
}
