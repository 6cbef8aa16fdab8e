// The wire form of relay.nats.v1.Frame (proto/frame.proto) on the hot path,
// without building Frame, Batch or Item messages.
//
// Every envelope that crosses instances is one Item of one Batch. Built as
// messages, each costs an Item, a string and two copies when sent (into the
// item, then into the frame) and again when received (the batch's items
// parsed into strings before the envelope is parsed from them). Here an item
// is serialized once, into its own wire record; a frame is the
// concatenation of a fixed header and those records; a received frame is
// read in place, its items viewed, not copied. The bytes are exactly what
// the generated code writes and reads (tests/backplane/nats/frame_codec_test
// checks both directions), so instances built before this agree with it.
#ifndef RELAY_BACKPLANE_NATS_FRAME_CODEC_H_
#define RELAY_BACKPLANE_NATS_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace relay::backplane::nats {

// An Item's wire record (field 3 of Batch, tag and length included).
std::string EnvelopeItem(const google::protobuf::MessageLite& envelope);
std::string UnfollowItem(absl::string_view mesh_id);

// Frame fields 1 and 2 (from_instance, incarnation): the same for every
// frame one instance sends.
std::string FrameHeader(absl::string_view from_instance, std::uint64_t incarnation);

// A Frame whose body is the Batch (stream, seq, items) up to its items:
// `items_size` bytes of item records are to be appended to it (room is
// reserved), which makes it whole.
std::string BatchFrameStart(absl::string_view header, std::uint64_t stream, std::uint64_t seq,
                            std::size_t items_size);
// The same, whole: `items` is the concatenation of item records.
// `*items_at` (optional) is where they begin in the result.
std::string BatchFrame(absl::string_view header, std::uint64_t stream, std::uint64_t seq,
                       absl::string_view items, std::size_t* items_at = nullptr);

// A Frame as received: views into the bytes it was parsed from, valid while
// they are.
struct FrameView {
  enum class Body { kNone, kBatch, kAck, kNak };
  struct Item {
    enum class Kind { kEnvelope, kUnfollowMesh };
    Kind kind = Kind::kEnvelope;
    absl::string_view bytes;  // the serialized envelope, or the mesh id
  };
  absl::string_view from_instance;
  std::uint64_t incarnation = 0;
  Body body = Body::kNone;
  // Of the body (Batch, Ack and Nak all carry them as fields 1 and 2).
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  std::vector<Item> items;  // kBatch; items with no kind are left out
};

// False when `bytes` is not a well-formed Frame. Protocol Buffers' rules
// hold: unknown fields are skipped, a later scalar wins, a body of another
// kind replaces the one before, two batches merge. Unlike the generated
// parser it does not check that strings are UTF-8: only relays of this
// cluster publish to an inbox, and they never send other strings.
bool ParseFrame(absl::string_view bytes, FrameView* out);

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_FRAME_CODEC_H_
