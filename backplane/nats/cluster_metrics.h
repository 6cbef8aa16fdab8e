// The /metrics series of cluster mode (docs/operations.md, "Metrics"):
// NATS's connection and round trip, the links between instances, and this
// instance's view of the cluster.
#ifndef RELAY_BACKPLANE_NATS_CLUSTER_METRICS_H_
#define RELAY_BACKPLANE_NATS_CLUSTER_METRICS_H_

#include "backplane/nats/nats_backplane.h"
#include "backplane/nats/nats_connection.h"
#include "server/metrics/prometheus_text.h"

namespace relay::backplane::nats {

// Thread-safe reads only: any thread may render.
void WriteClusterMetrics(const NatsConnection& connection, const NatsBackplane& backplane,
                         metrics::PrometheusText* out);

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_CLUSTER_METRICS_H_
