// ArenaEvent: builds one ServerEvent for the hot path (relayed messages)
// with a single heap allocation.
//
// A ServerEvent built the ordinary way costs an allocation per sub-message
// and per string, plus the shared_ptr's. Here the shared_ptr's control block,
// a protobuf Arena and the arena's first block are one allocation; the
// event, its sub-messages and its string objects live in that block, and a
// payload set with std::move keeps the buffer it came with. The event dies
// with the last recipient's reference, like any ServerEventPtr.
#ifndef RELAY_SERVER_CORE_ARENA_EVENT_H_
#define RELAY_SERVER_CORE_ARENA_EVENT_H_

#include <cstddef>
#include <memory>
#include <utility>

#include "google/protobuf/arena.h"
#include "relay/v1/relay.pb.h"
#include "server/core/peer_sink.h"

namespace relay::core {

class ArenaEvent {
 public:
  ArenaEvent()
      : storage_(std::make_shared<Storage>()),
        event_(google::protobuf::Arena::CreateMessage<relay::v1::ServerEvent>(&storage_->arena)) {}

  relay::v1::ServerEvent* operator->() { return event_; }
  relay::v1::ServerEvent& operator*() { return *event_; }

  // The finished event, for Deliver / Fanout. The builder is empty after.
  // (C++17 has no moving aliasing constructor: one reference count round trip.)
  ServerEventPtr Share() && {
    ServerEventPtr shared(storage_, event_);
    storage_.reset();
    return shared;
  }

 private:
  // Room for a relayed message's event, sub-message and string objects
  // (larger events continue in blocks the arena allocates itself).
  static constexpr std::size_t kFirstBlockBytes = 512;

  struct Storage {
    Storage() : arena(Options(first_block)) {}
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kFirstBlockBytes;
      return options;
    }
    alignas(16) char first_block[kFirstBlockBytes];
    google::protobuf::Arena arena;  // after first_block: destroyed before it
  };

  std::shared_ptr<Storage> storage_;
  relay::v1::ServerEvent* event_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_ARENA_EVENT_H_
