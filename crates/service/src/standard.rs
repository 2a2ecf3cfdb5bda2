//! The services every tilewave server adds beside its own: gRPC health
//! checking and server reflection (over tilewave's protos).

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// The health service with `services` (their full gRPC names, e.g.
/// `tilewave.registry.v1.RegistryService`) and the whole server (`""`)
/// reported as `status`, its reporter (to change a status later), and
/// server reflection.
pub async fn health_and_reflection(
    services: &[&str],
    status: ServingStatus,
) -> Result<
    (
        HealthReporter,
        HealthServer<impl Health>,
        ServerReflectionServer<impl ServerReflection>,
    ),
    tonic_reflection::server::Error,
> {
    let (reporter, health) = tonic_health::server::health_reporter();
    report(&reporter, services, status).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tilewave_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok((reporter, health, reflection))
}

/// Reports `services` and the whole server (`""`) as `status` (an agent
/// turns SERVING once registered).
pub async fn report(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    for service in services.iter().copied().chain([""]) {
        reporter.set_service_status(service, status).await;
    }
}
