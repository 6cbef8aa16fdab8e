// ToGrpcStatus: the one place where an absl::Status from the core becomes the
// grpc::Status an Admin rpc returns. Every canonical code maps to the gRPC code
// of the same name, so clients can act on codes (relayctl turns NOT_FOUND into
// exit 1 and UNAVAILABLE into exit 3).
#ifndef RELAY_SERVER_ADMIN_GRPC_STATUS_H_
#define RELAY_SERVER_ADMIN_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace relay::admin {

// Same code, same message. Payloads are dropped: no Admin client reads them.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace relay::admin

#endif  // RELAY_SERVER_ADMIN_GRPC_STATUS_H_
