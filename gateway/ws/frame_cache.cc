#include "gateway/ws/frame_cache.h"

#include <memory>
#include <string>

#include "gateway/codec/server_encoder.h"

namespace relay::gateway {

WsMessagePtr FrameCache::Frame(const core::ServerEventPtr& event) {
  if (event == last_event_ && last_frame_) return last_frame_;
  namespace frame = websocketpp::frame;
  auto msg = std::make_shared<WsMessage>(WsPlainConfig::con_msg_manager_type::ptr(),
                                         frame::opcode::text, 0);
  // Encoded in place: set_payload() would copy.
  std::string& payload = msg->get_raw_payload();
  AppendServerEvent(*event, &payload);
  const frame::basic_header header(frame::opcode::text, payload.size(), /*fin=*/true,
                                   /*mask=*/false);
  const frame::extended_header extended(payload.size());
  msg->set_header(frame::prepare_header(header, extended));
  msg->set_prepared(true);
  last_event_ = event;
  last_frame_ = std::move(msg);
  return last_frame_;
}

}  // namespace relay::gateway
