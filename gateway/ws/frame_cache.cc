#include "gateway/ws/frame_cache.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/codec/server_encoder.h"

namespace relay::gateway {
namespace {

namespace frame = websocketpp::frame;

// An empty text message whose payload the caller writes in place
// (set_payload() would copy), then Prepare()s.
WsMessagePtr NewTextMessage() {
  return std::make_shared<WsMessage>(WsPlainConfig::con_msg_manager_type::ptr(),
                                     frame::opcode::text, 0);
}

void Prepare(WsMessage& msg) {
  const std::string& payload = msg.get_payload();
  const frame::basic_header header(frame::opcode::text, payload.size(), /*fin=*/true,
                                   /*mask=*/false);
  const frame::extended_header extended(payload.size());
  msg.set_header(frame::prepare_header(header, extended));
  msg.set_prepared(true);
}

}  // namespace

WsMessagePtr FrameCache::Frame(const core::ServerEventPtr& event) {
  if (event == last_event_ && last_frame_) return last_frame_;
  WsMessagePtr msg = NewTextMessage();
  AppendServerEvent(*event, &msg->get_raw_payload());
  Prepare(*msg);
  last_event_ = event;
  last_frame_ = std::move(msg);
  return last_frame_;
}

WsMessagePtr FrameCache::SequencedFrame(const core::ServerEventPtr& event, std::uint64_t seq) {
  // Each recipient's seq differs: the event is encoded once (into a buffer
  // that keeps its capacity, or the plain frame other recipients of a
  // fan-out share) and copied with each one's seq.
  const std::string* encoded = nullptr;
  if (event == last_event_ && last_frame_) {
    encoded = &last_frame_->get_payload();
  } else {
    if (event != body_event_) {
      body_.clear();
      AppendServerEvent(*event, &body_);
      body_event_ = event;
    }
    encoded = &body_;
  }
  const std::string& body = *encoded;
  WsMessagePtr msg = NewTextMessage();
  std::string& payload = msg->get_raw_payload();
  payload.reserve(body.size() + 28);
  payload.append(body, 0, body.size() - 1);  // all but the closing brace
  absl::StrAppend(&payload, ",\"seq\":", seq, "}");
  Prepare(*msg);
  return msg;
}

}  // namespace relay::gateway
