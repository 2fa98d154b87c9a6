//! Prometheus metrics: one recorder per process, requests by route and outcome, and the
//! store's gauges refreshed at each scrape (so they are exact when read).

use std::sync::OnceLock;
use std::time::Instant;

use acm_core::AcmServer;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's recorder, installed on first use. `None` when another recorder was
/// installed first (an embedding application's own): acm's metrics then go there.
pub(crate) fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                upkeep(handle.clone());
                Some(handle)
            }
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed; /metrics is empty");
                None
            }
        })
        .as_ref()
}

/// How often the recorder folds the histogram samples recorded since into its summaries.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into the recorder's summaries every [`UPKEEP`], on a
/// thread of its own for the life of the process. The recorder keeps every sample until
/// then (`install_recorder` starts no upkeep of its own), so a server that nobody scrapes
/// would otherwise grow by each request's samples without end.
fn upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("acm-metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                handle.run_upkeep();
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "metrics upkeep not started; histograms are folded only when /metrics is read");
    }
}

/// Counts each request by route, method and status, and times it.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("acm_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("acm_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Sets the gauges that the store answers (pending items, outbox depth and oldest age) and
/// renders every metric.
pub(crate) async fn render(server: &AcmServer) -> String {
    let store = server.store();
    match store.pending_count().await {
        #[allow(clippy::cast_precision_loss)] // a gauge: exact up to 2^53
        Ok(count) => metrics::gauge!("acm_pending_items").set(count as f64),
        Err(error) => tracing::warn!(%error, "pending count unavailable"),
    }
    match store.outbox_status().await {
        Ok(status) => {
            #[allow(clippy::cast_precision_loss)]
            {
                metrics::gauge!("acm_outbox_depth").set(status.depth as f64);
                metrics::gauge!("acm_outbox_parked").set(status.parked as f64);
            }
            metrics::gauge!("acm_outbox_max_attempts").set(f64::from(status.max_attempts));
            let age = status.oldest_queued_at.map_or(0.0, |at| {
                let age = chrono::Utc::now().signed_duration_since(at);
                age.to_std().map_or(0.0, |d| d.as_secs_f64())
            });
            metrics::gauge!("acm_outbox_oldest_age_seconds").set(age);
        }
        Err(error) => tracing::warn!(%error, "outbox status unavailable"),
    }
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("acm_sessions").set(server.sessions() as f64);
    prometheus()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
