// One JetStream KV bucket, with the operations cluster mode needs and the
// errors it must tell apart (docs/adr/0009-cluster-on-nats.md, section 6):
// a write refused because the key moved on is ABORTED, anything else that
// failed is UNAVAILABLE. nats.c's kvStore_Update reports a conflict only as
// text, so writes go through js_PublishMsg with the expected revision,
// whose jsErrCode says which it was; nats.c 3.4 has no revision-checked
// delete at all, so Delete publishes the delete marker the same way.
//
// Every call blocks on a NATS round trip: call from the adapter's worker
// threads, never the core thread. Thread-safe (nats.c's jsCtx and kvStore
// are).
#ifndef RELAY_BACKPLANE_NATS_KV_BUCKET_H_
#define RELAY_BACKPLANE_NATS_KV_BUCKET_H_

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace relay::backplane::nats {

struct KvBucketConfig {
  std::string name;  // BucketName(...)
  int replicas = 1;
  absl::Duration max_age = absl::ZeroDuration();  // zero: entries never age out
  std::int64_t max_bytes = -1;                    // -1: unbounded
  std::int32_t max_value_bytes = -1;              // -1: up to max_payload
};

struct KvEntry {
  std::string key;
  std::string value;
  std::uint64_t revision = 0;
  // A delete or purge marker: the key is absent, and `revision` is what a
  // write must expect to recreate it.
  bool deleted = false;
  absl::Time written_at;  // by the server's clock
};

class KvBucket {
 public:
  // Creates the bucket, or binds to it when it exists with this config.
  // An existing bucket with another config is bound as it is, and
  // `config_differs` (if given) set: which settings differ is the caller's
  // to log. InvalidArgument when NATS refuses the config itself (say,
  // replicas over a single server), Unavailable when it cannot be asked.
  static absl::StatusOr<std::unique_ptr<KvBucket>> Open(natsConnection* nc,
                                                        const KvBucketConfig& config,
                                                        bool* config_differs = nullptr);
  KvBucket(const KvBucket&) = delete;
  KvBucket& operator=(const KvBucket&) = delete;
  ~KvBucket();

  const std::string& name() const { return name_; }

  // The max age NATS holds for the bucket (zero: entries never age out).
  absl::StatusOr<absl::Duration> MaxAge() const;
  // Raises the bucket's max age to `max_age` when it is shorter (zero, never
  // aging out, is the longest) and answers the max age in force after.
  // Read then update, not atomic: two instances widening at once may leave
  // the shorter of their two values (each logs what it found).
  absl::StatusOr<absl::Duration> WidenMaxAge(absl::Duration max_age) const;

  // The latest entry, a delete marker included; NotFound when the key was
  // never written (or purged away).
  absl::StatusOr<KvEntry> Get(absl::string_view key) const;
  // Writes `value` if the key's latest revision is `expected_revision` (0:
  // it has none). The new revision; Aborted on a conflict.
  absl::StatusOr<std::uint64_t> Put(absl::string_view key, absl::string_view value,
                                    std::uint64_t expected_revision) const;
  // Writes `value` if the key is absent (never written, or deleted). The
  // new revision; Aborted when a live entry is there.
  absl::StatusOr<std::uint64_t> Create(absl::string_view key, absl::string_view value) const;
  // Deletes the key if its latest revision is `expected_revision`; Aborted
  // on a conflict.
  absl::Status Delete(absl::string_view key, std::uint64_t expected_revision) const;

  // Removes every entry, revisions and all, of each key matching
  // `key_filter` (a key, or one with NATS wildcards: "mesh.*"). Not
  // conditional. Afterwards Get answers NotFound and Put(.., 0) succeeds.
  absl::Status Purge(absl::string_view key_filter) const;

  // Every key's latest entry, then each change as it happens.
  class Watch {
   public:
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    // The next change, waiting up to `timeout`: DeadlineExceeded when none
    // came. nullopt marks the end of the initial values (once).
    absl::StatusOr<std::optional<KvEntry>> Next(absl::Duration timeout);

   private:
    friend class KvBucket;
    explicit Watch(kvWatcher* watcher) : watcher_(watcher) {}
    kvWatcher* watcher_;
  };
  absl::StatusOr<std::unique_ptr<Watch>> WatchAll() const;

  // The latest entry of every key matching `key_filter` (a key, or one with
  // NATS wildcards: "mesh.*", ">" for all) that is not deleted, read once.
  // Unavailable when NATS does not answer within kNatsKvWaitMs per entry.
  absl::StatusOr<std::vector<KvEntry>> Entries(absl::string_view key_filter) const;

 private:
  KvBucket(std::string name, jsCtx* js, kvStore* kv) : name_(std::move(name)), js_(js), kv_(kv) {}
  std::string Subject(absl::string_view key) const;

  const std::string name_;
  jsCtx* const js_;
  kvStore* const kv_;
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_KV_BUCKET_H_
