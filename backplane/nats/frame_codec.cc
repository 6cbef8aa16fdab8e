#include "backplane/nats/frame_codec.h"

#include <limits>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace relay::backplane::nats {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Field numbers of frame.proto.
constexpr int kFrameFromInstance = 1;
constexpr int kFrameIncarnation = 2;
constexpr int kFrameBatch = 3;
constexpr int kFrameAck = 4;
constexpr int kFrameNak = 5;
constexpr int kBodyStream = 1;  // Batch, Ack, Nak
constexpr int kBodySeq = 2;
constexpr int kBatchItems = 3;
constexpr int kItemEnvelope = 1;
constexpr int kItemUnfollowMesh = 2;

constexpr std::size_t kMaxVarintBytes = 10;

void AppendVarint(std::uint64_t n, std::string* out) {
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
}

void AppendTag(int field, WireFormatLite::WireType type, std::string* out) {
  AppendVarint(WireFormatLite::MakeTag(field, type), out);
}

void AppendFixed64(std::uint64_t n, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

std::size_t VarintSize(std::uint64_t n) {
  std::size_t size = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++size;
  }
  return size;
}

std::string LengthDelimited(int field, absl::string_view bytes) {
  std::string out;
  out.reserve(1 + kMaxVarintBytes + bytes.size());
  AppendTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &out);
  AppendVarint(bytes.size(), &out);
  out.append(bytes.data(), bytes.size());
  return out;
}

// Reads a length-delimited field's bytes in place.
bool ReadView(CodedInputStream& in, const char* base, absl::string_view* out) {
  std::uint32_t length = 0;
  if (!in.ReadVarint32(&length)) return false;
  const int at = in.CurrentPosition();
  if (!in.Skip(static_cast<int>(length))) return false;
  *out = absl::string_view(base + at, length);
  return true;
}

// Reads a sub-message's length and limits `in` to it.
bool EnterMessage(CodedInputStream& in, CodedInputStream::Limit* limit) {
  std::uint32_t length = 0;
  if (!in.ReadVarint32(&length)) return false;
  // Past the end of what encloses it: truncated. (A limit past the end of
  // the input would be clamped to it, and the input's end reads as a clean
  // end of message.)
  if (static_cast<std::int64_t>(length) > in.BytesUntilLimit()) return false;
  *limit = in.PushLimit(static_cast<int>(length));
  return true;
}

// After a sub-message's fields: true when they ended cleanly.
bool LeaveMessage(CodedInputStream& in, CodedInputStream::Limit limit) {
  if (!in.ConsumedEntireMessage()) return false;
  in.PopLimit(limit);
  return true;
}

bool ParseItem(CodedInputStream& in, const char* base, FrameView* out) {
  CodedInputStream::Limit limit;
  if (!EnterMessage(in, &limit)) return false;
  bool has_kind = false;
  FrameView::Item item;
  while (std::uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if ((field == kItemEnvelope || field == kItemUnfollowMesh) && delimited) {
      if (!ReadView(in, base, &item.bytes)) return false;
      item.kind = field == kItemEnvelope ? FrameView::Item::Kind::kEnvelope
                                         : FrameView::Item::Kind::kUnfollowMesh;
      has_kind = true;  // a oneof: the last one set wins
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  if (!LeaveMessage(in, limit)) return false;
  if (has_kind) out->items.push_back(item);
  return true;
}

bool ParseBody(CodedInputStream& in, const char* base, FrameView::Body body, FrameView* out) {
  CodedInputStream::Limit limit;
  if (!EnterMessage(in, &limit)) return false;
  if (out->body != body) {
    // Another member of the oneof replaces what was there; the same one
    // merges into it.
    out->stream = 0;
    out->seq = 0;
    out->items.clear();
    out->body = body;
  }
  while (std::uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const WireFormatLite::WireType type = WireFormatLite::GetTagWireType(tag);
    if (field == kBodyStream && type == WireFormatLite::WIRETYPE_FIXED64) {
      if (!in.ReadLittleEndian64(&out->stream)) return false;
    } else if (field == kBodySeq && type == WireFormatLite::WIRETYPE_VARINT) {
      if (!in.ReadVarint64(&out->seq)) return false;
    } else if (field == kBatchItems && body == FrameView::Body::kBatch &&
               type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ParseItem(in, base, out)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return LeaveMessage(in, limit);
}

}  // namespace

std::string EnvelopeItem(const google::protobuf::MessageLite& envelope) {
  const std::size_t envelope_size = envelope.ByteSizeLong();
  std::string out;
  // The item record: Batch field 3 around Item field 1 around the envelope.
  const std::size_t inner = 1 + VarintSize(envelope_size) + envelope_size;
  out.reserve(1 + VarintSize(inner) + inner);
  AppendTag(kBatchItems, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &out);
  AppendVarint(inner, &out);
  AppendTag(kItemEnvelope, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &out);
  AppendVarint(envelope_size, &out);
  const std::size_t at = out.size();
  out.resize(at + envelope_size);
  // Sizes cached by ByteSizeLong above: serialized in one pass, in place.
  envelope.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(&out[at]));
  return out;
}

std::string UnfollowItem(absl::string_view mesh_id) {
  return LengthDelimited(kBatchItems, LengthDelimited(kItemUnfollowMesh, mesh_id));
}

std::string FrameHeader(absl::string_view from_instance, std::uint64_t incarnation) {
  std::string out = LengthDelimited(kFrameFromInstance, from_instance);
  AppendTag(kFrameIncarnation, WireFormatLite::WIRETYPE_FIXED64, &out);
  AppendFixed64(incarnation, &out);
  return out;
}

std::string BatchFrameStart(absl::string_view header, std::uint64_t stream, std::uint64_t seq,
                            std::size_t items_size) {
  const std::size_t body_size = 1 + 8 + 1 + VarintSize(seq) + items_size;
  std::string out;
  out.reserve(header.size() + 1 + VarintSize(body_size) + body_size);
  out.append(header.data(), header.size());
  AppendTag(kFrameBatch, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &out);
  AppendVarint(body_size, &out);
  AppendTag(kBodyStream, WireFormatLite::WIRETYPE_FIXED64, &out);
  AppendFixed64(stream, &out);
  AppendTag(kBodySeq, WireFormatLite::WIRETYPE_VARINT, &out);
  AppendVarint(seq, &out);
  return out;
}

std::string BatchFrame(absl::string_view header, std::uint64_t stream, std::uint64_t seq,
                       absl::string_view items, std::size_t* items_at) {
  std::string out = BatchFrameStart(header, stream, seq, items.size());
  if (items_at != nullptr) *items_at = out.size();
  out.append(items.data(), items.size());
  return out;
}

bool ParseFrame(absl::string_view bytes, FrameView* out) {
  *out = FrameView{};
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
  CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  while (std::uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const WireFormatLite::WireType type = WireFormatLite::GetTagWireType(tag);
    const bool delimited = type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    bool ok = true;
    if (field == kFrameFromInstance && delimited) {
      ok = ReadView(in, bytes.data(), &out->from_instance);
    } else if (field == kFrameIncarnation && type == WireFormatLite::WIRETYPE_FIXED64) {
      ok = in.ReadLittleEndian64(&out->incarnation);
    } else if (field == kFrameBatch && delimited) {
      ok = ParseBody(in, bytes.data(), FrameView::Body::kBatch, out);
    } else if (field == kFrameAck && delimited) {
      ok = ParseBody(in, bytes.data(), FrameView::Body::kAck, out);
    } else if (field == kFrameNak && delimited) {
      ok = ParseBody(in, bytes.data(), FrameView::Body::kNak, out);
    } else {
      ok = WireFormatLite::SkipField(&in, tag);
    }
    if (!ok) return false;
  }
  // ReadTag answers 0 at the end and on a malformed tag alike.
  return in.ConsumedEntireMessage();
}

}  // namespace relay::backplane::nats
