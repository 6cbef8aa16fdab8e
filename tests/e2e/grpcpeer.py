"""A gRPC peer of the relay (RelayCore.Attach) on Python's grpcio (Debian python3-grpcio), a client
library this project did not write. The relay.v1 messages come from proto/relay/v1/relay.proto,
compiled for Python at test time by the system protoc (the one the C++ build uses).

Health checks and reflection use grpcio with hand-encoded protobuf: their few fields are spelled
out below, so no generated code of ours is involved."""

import atexit
import importlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

import grpc

from relayclient import REPO

_GEN_DIR = tempfile.mkdtemp(prefix="relay-pb2-")
atexit.register(shutil.rmtree, _GEN_DIR, True)
subprocess.run(["protoc", "--proto_path=" + os.path.join(REPO, "proto"), "--python_out=" + _GEN_DIR,
                os.path.join(REPO, "proto", "relay", "v1", "relay.proto")], check=True)
sys.path.insert(0, _GEN_DIR)
pb = importlib.import_module("relay.v1.relay_pb2")
sys.path.remove(_GEN_DIR)

ATTACH = "/relay.v1.RelayCore/Attach"
DEFAULT_TIMEOUT = 10.0


class GrpcPeer:
    """One Attach stream. send() queues a ClientEvent; recv() returns the next ServerEvent, or
    raises StreamEnded(code, details) once the relay ended the stream."""

    def __init__(self, relay):
        self.channel = grpc.insecure_channel("%s:%d" % (relay.grpc_host, relay.grpc_port))
        self._out = queue.Queue()
        self._in = queue.Queue()
        attach = self.channel.stream_stream(ATTACH, request_serializer=pb.ClientEvent.SerializeToString,
                                            response_deserializer=pb.ServerEvent.FromString)
        self.call = attach(self._requests())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.node_id = None

    def _requests(self):
        while True:
            event = self._out.get()
            if event is None:
                return
            yield event

    def _read(self):
        try:
            for event in self.call:
                self._in.put(event)
        except grpc.RpcError:
            pass
        self._in.put(StreamEnded(self.call.code(), self.call.details()))

    def send(self, **fields):
        """send(broadcast=pb.Broadcast(payload=b'1')) etc."""
        self._out.put(pb.ClientEvent(**fields))

    def recv(self, timeout=DEFAULT_TIMEOUT):
        try:
            item = self._in.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("grpc peer %s: nothing received within %.1f s" % (self.node_id, timeout)) from None
        if isinstance(item, StreamEnded):
            self._in.put(item)  # stays ended
            raise item
        return item

    def expect(self, kind, timeout=DEFAULT_TIMEOUT):
        """The next event, which must be of `kind` (the ServerEvent oneof name)."""
        event = self.recv(timeout)
        assert event.WhichOneof("event") == kind, "grpc peer %s: expected %s, got %s" % (self.node_id, kind, event)
        return getattr(event, kind)

    def expect_error(self, code, timeout=DEFAULT_TIMEOUT):
        error = self.expect("error", timeout)
        assert error.code == code, "expected error %s, got %s" % (code, error)
        assert error.message, error
        return error

    def register(self, mesh, node_id, capabilities=(), **extra):
        self.node_id = node_id
        self.send(register=pb.Register(mesh_id=mesh, node_id=node_id, capabilities=list(capabilities), **extra))
        joined = self.expect("joined")
        peers = self.expect("peers")
        return joined, peers

    def ended(self, timeout=DEFAULT_TIMEOUT):
        """Waits for the end of the stream; returns (code, details). Events before it are dropped."""
        while True:
            try:
                self.recv(timeout)
            except StreamEnded as end:
                return end.code, end.details

    def close(self):
        """Half-closes (the WebSocket close of a gRPC peer)."""
        self._out.put(None)

    def cancel(self):
        self.call.cancel()

    def shut(self):
        self.close()
        self.channel.close()


class StreamEnded(Exception):
    def __init__(self, code, details):
        super().__init__("stream ended: %s %s" % (code, details))
        self.code = code
        self.details = details


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


SERVING, NOT_SERVING = 1, 2


def health_status(relay, service="", timeout=5.0):
    """grpc.health.v1.Health/Check for `service`: 1 SERVING, 2 NOT_SERVING (raises grpc.RpcError
    e.g. NOT_FOUND for an unknown service)."""
    name = service.encode()
    request = (b"\x0a" + _varint(len(name)) + name) if name else b""  # HealthCheckRequest.service = 1
    with grpc.insecure_channel("%s:%d" % (relay.grpc_host, relay.grpc_port)) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        response = check(request, timeout=timeout)
    # HealthCheckResponse.status = 1 (enum): b"\x08" <status>; absent means UNKNOWN (0)
    return response[1] if response[:1] == b"\x08" else 0


def reflected_services(relay, timeout=5.0):
    """The raw ListServiceResponse of grpc.reflection.v1alpha (service names appear as strings)."""
    request = b"\x3a\x00"  # ServerReflectionRequest.list_services = 7, ""
    with grpc.insecure_channel("%s:%d" % (relay.grpc_host, relay.grpc_port)) as channel:
        info = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                     request_serializer=lambda b: b, response_deserializer=lambda b: b)
        responses = info(iter([request]), timeout=timeout)
        return b"".join(responses)


def admin_meshes(relay, timeout=5.0):
    """Admin/ListMeshes over the relay's (private) gRPC port: [(mesh_id, peer_count), ...]. The
    per-mesh list lives only there: the public GET /stats names no mesh."""
    with grpc.insecure_channel("%s:%d" % (relay.grpc_host, relay.grpc_port)) as channel:
        list_meshes = channel.unary_unary("/relay.v1.Admin/ListMeshes",
                                          request_serializer=pb.ListMeshesRequest.SerializeToString,
                                          response_deserializer=pb.ListMeshesResponse.FromString)
        response = list_meshes(pb.ListMeshesRequest(), timeout=timeout)
    return [(m.mesh_id, m.peer_count) for m in response.meshes]
