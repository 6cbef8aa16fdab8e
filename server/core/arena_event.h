// ArenaMessage: one protobuf message for the hot path with a single heap
// allocation; ArenaEvent, the ServerEvent of a relayed message, and
// ArenaEnvelope, a BackplaneEnvelope received from another instance.
//
// A message built the ordinary way costs an allocation per sub-message and
// per string, plus the shared_ptr's. Here the shared_ptr's control block, a
// protobuf Arena and the arena's first block are one allocation; the
// message, its sub-messages and its string objects live in that block (a
// payload set with std::move keeps the buffer it came with; a parsed one is
// copied in), and larger messages continue in blocks the arena allocates
// itself. The message dies with the last reference, like any shared_ptr:
// an aliasing shared_ptr to a part of it (a received delivery's event)
// keeps the whole alive.
#ifndef RELAY_SERVER_CORE_ARENA_EVENT_H_
#define RELAY_SERVER_CORE_ARENA_EVENT_H_

#include <cstddef>
#include <memory>
#include <utility>

#include "google/protobuf/arena.h"
#include "relay/v1/relay.pb.h"
#include "server/core/peer_sink.h"

namespace relay::core {

template <typename Message, std::size_t kFirstBlockBytes>
class ArenaMessage {
 public:
  ArenaMessage()
      : storage_(std::make_shared<Storage>()),
        message_(google::protobuf::Arena::CreateMessage<Message>(&storage_->arena)) {}

  Message* operator->() { return message_; }
  Message& operator*() { return *message_; }

  // The finished message. The builder is empty after.
  // (C++17 has no moving aliasing constructor: one reference count round trip.)
  std::shared_ptr<Message> Share() && {
    std::shared_ptr<Message> shared(storage_, message_);
    storage_.reset();
    return shared;
  }

 private:
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
  Message* message_;
};

// Room for a relayed message's event, sub-message and string objects.
using ArenaEvent = ArenaMessage<relay::v1::ServerEvent, 512>;
// Room for a delivery envelope around such an event, its payload included
// when it is short.
using ArenaEnvelope = ArenaMessage<relay::v1::BackplaneEnvelope, 1024>;

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_ARENA_EVENT_H_
