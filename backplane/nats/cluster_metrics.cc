#include "backplane/nats/cluster_metrics.h"

namespace relay::backplane::nats {

using metrics::MetricType;

void WriteClusterMetrics(const NatsConnection& connection, const NatsBackplane& backplane,
                         metrics::PrometheusText* out) {
  out->Family("relay_nats_connected", MetricType::kGauge,
              "1 while the connection to NATS is up (cluster mode).");
  out->Sample({}, connection.connected() ? 1 : 0);
  out->Family("relay_nats_reconnects_total", MetricType::kCounter,
              "Times the connection to NATS came back after being lost.");
  out->Sample({}, connection.reconnects());
  out->Family("relay_nats_rtt_seconds", MetricType::kGauge,
              "Round trip to the NATS server, measured every 5 s (NaN before the first).");
  out->Sample({}, backplane.nats_rtt_seconds());
  const ClusterReadiness readiness = backplane.Readiness();
  out->Family("relay_cluster_ready", MetricType::kGauge,
              "1 while this instance is part of its cluster (what /ready and gRPC health say).");
  out->Sample({}, readiness.ready ? 1 : 0);
  out->Family("relay_cluster_instances", MetricType::kGauge,
              "Live relay instances of the cluster, this one included, as its lease watch sees.");
  out->Sample({}, backplane.LiveInstances().size());
  const InstanceLinks::Counters links = backplane.link_counters();
  out->Family("relay_backplane_frames_sent_total", MetricType::kCounter,
              "Frames sent to other instances (each batches one or more envelopes).");
  out->Sample({}, links.frames_sent);
  out->Family("relay_backplane_retransmits_total", MetricType::kCounter,
              "Frames sent again because NATS lost them or their acknowledgement.");
  out->Sample({}, links.retransmits);
  out->Family("relay_backplane_gaps_total", MetricType::kCounter,
              "Gaps this instance found in what another sent it, and asked to be filled.");
  out->Sample({}, links.gaps);
  out->Family("relay_backplane_resets_total", MetricType::kCounter,
              "Links to an instance restarted after frames were dropped: rosters resynchronised.");
  out->Sample({}, links.resets);
}

}  // namespace relay::backplane::nats
