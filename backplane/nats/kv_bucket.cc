#include "backplane/nats/kv_bucket.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/limits.h"

namespace relay::backplane::nats {
namespace {

// JetStream's "wrong last sequence": the key moved on since it was read.
constexpr int kWrongLastSequence = 10071;

// nats.c's last error text for this thread, for messages.
std::string LastErrorText(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (last != nullptr && *last != '\0') absl::StrAppend(&text, " (", last, ")");
  return text;
}

// Everything but a conflict or a missing key means NATS could not answer
// now: the caller refuses what it was asked (cluster_unavailable,
// auth_unavailable) rather than guessing.
absl::Status KvError(absl::string_view what, natsStatus s, jsErrCode code) {
  if (code == kWrongLastSequence) return absl::AbortedError(absl::StrCat(what, ": conflict"));
  if (s == NATS_NOT_FOUND) return absl::NotFoundError(absl::StrCat(what, ": not found"));
  return absl::UnavailableError(absl::StrCat(what, ": ", LastErrorText(s)));
}

absl::Time FromUnixNanos(std::int64_t nanos) { return absl::FromUnixNanos(nanos); }

bool IsDeleteMarker(natsMsg* msg) {
  const char* op = nullptr;
  if (natsMsgHeader_Get(msg, "KV-Operation", &op) != NATS_OK || op == nullptr) return false;
  return absl::string_view(op) == "DEL" || absl::string_view(op) == "PURGE";
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvBucket>> KvBucket::Open(natsConnection* nc,
                                                         const KvBucketConfig& config,
                                                         bool* config_differs) {
  if (config_differs != nullptr) *config_differs = false;
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = limits::kNatsKvWaitMs;
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, &js_options); s != NATS_OK) {
    return absl::UnavailableError(absl::StrCat("JetStream: ", LastErrorText(s)));
  }
  kvConfig kv_config;
  kvConfig_Init(&kv_config);
  kv_config.Bucket = config.name.c_str();
  kv_config.History = 1;
  kv_config.TTL = absl::ToInt64Nanoseconds(config.max_age);
  kv_config.MaxBytes = config.max_bytes;
  kv_config.MaxValueSize = config.max_value_bytes;
  kv_config.StorageType = js_FileStorage;
  kv_config.Replicas = config.replicas;
  kvStore* kv = nullptr;
  natsStatus s = js_CreateKeyValue(&kv, js, &kv_config);
  if (s != NATS_OK) {
    const std::string text = LastErrorText(s);
    if (absl::StrContains(text, "replicas")) {
      jsCtx_Destroy(js);
      return absl::InvalidArgumentError(
          absl::StrCat("NATS refused KV bucket ", config.name, " with ", config.replicas,
                       " replicas (NATS_KV_REPLICAS; a single server takes 1): ", text));
    }
    if (!absl::StrContains(text, "different")) {
      jsCtx_Destroy(js);
      return absl::UnavailableError(absl::StrCat("KV bucket ", config.name, ": ", text));
    }
    // Made by an instance with other settings: share it as it is.
    if (natsStatus bind = js_KeyValue(&kv, js, config.name.c_str()); bind != NATS_OK) {
      jsCtx_Destroy(js);
      return absl::UnavailableError(
          absl::StrCat("KV bucket ", config.name, ": ", LastErrorText(bind)));
    }
    if (config_differs != nullptr) *config_differs = true;
  }
  return std::unique_ptr<KvBucket>(new KvBucket(config.name, js, kv));
}

KvBucket::~KvBucket() {
  kvStore_Destroy(kv_);
  jsCtx_Destroy(js_);
}

std::string KvBucket::Subject(absl::string_view key) const {
  return absl::StrCat("$KV.", name_, ".", key);
}

absl::StatusOr<KvEntry> KvBucket::Get(absl::string_view key) const {
  natsMsg* msg = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string stream = absl::StrCat("KV_", name_);
  natsStatus s = js_GetLastMsg(&msg, js_, stream.c_str(), Subject(key).c_str(), nullptr, &code);
  if (s != NATS_OK) return KvError(absl::StrCat("get ", name_, " ", key), s, code);
  KvEntry entry;
  entry.key = std::string(key);
  entry.value.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  entry.revision = natsMsg_GetSequence(msg);
  entry.deleted = IsDeleteMarker(msg);
  entry.written_at = FromUnixNanos(natsMsg_GetTime(msg));
  natsMsg_Destroy(msg);
  return entry;
}

absl::StatusOr<std::uint64_t> KvBucket::Put(absl::string_view key, absl::string_view value,
                                            std::uint64_t expected_revision) const {
  natsMsg* msg = nullptr;
  const std::string subject = Subject(key);
  if (natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, value.data(),
                                    static_cast<int>(value.size()));
      s != NATS_OK) {
    return KvError("message", s, static_cast<jsErrCode>(0));
  }
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = limits::kNatsKvWaitMs;
  if (expected_revision == 0) {
    options.ExpectNoMessage = true;
  } else {
    options.ExpectLastSubjectSeq = expected_revision;
  }
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&ack, js_, msg, &options, &code);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) return KvError(absl::StrCat("put ", name_, " ", key), s, code);
  const std::uint64_t revision = ack->Sequence;
  jsPubAck_Destroy(ack);
  return revision;
}

absl::StatusOr<std::uint64_t> KvBucket::Create(absl::string_view key,
                                               absl::string_view value) const {
  absl::StatusOr<std::uint64_t> created = Put(key, value, 0);
  if (!absl::IsAborted(created.status())) return created;
  // Written before: free again only if its latest entry is a delete marker.
  absl::StatusOr<KvEntry> latest = Get(key);
  if (!latest.ok()) return latest.status();
  if (!latest->deleted)
    return absl::AbortedError(absl::StrCat("create ", name_, " ", key, ": exists"));
  return Put(key, value, latest->revision);
}

absl::Status KvBucket::Delete(absl::string_view key, std::uint64_t expected_revision) const {
  natsMsg* msg = nullptr;
  const std::string subject = Subject(key);
  if (natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, nullptr, 0); s != NATS_OK) {
    return KvError("message", s, static_cast<jsErrCode>(0));
  }
  natsMsgHeader_Set(msg, "KV-Operation", "DEL");
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = limits::kNatsKvWaitMs;
  options.ExpectLastSubjectSeq = expected_revision;
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&ack, js_, msg, &options, &code);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) return KvError(absl::StrCat("delete ", name_, " ", key), s, code);
  jsPubAck_Destroy(ack);
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> KvBucket::MaxAge() const {
  const std::string stream = absl::StrCat("KV_", name_);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) return KvError(absl::StrCat("stream info ", name_), s, code);
  const absl::Duration max_age = absl::Nanoseconds(info->Config->MaxAge);
  jsStreamInfo_Destroy(info);
  return max_age;
}

absl::StatusOr<absl::Duration> KvBucket::WidenMaxAge(absl::Duration max_age) const {
  const std::string stream = absl::StrCat("KV_", name_);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) return KvError(absl::StrCat("stream info ", name_), s, code);
  const absl::Duration current = absl::Nanoseconds(info->Config->MaxAge);
  if (current == absl::ZeroDuration() || current >= max_age) {
    jsStreamInfo_Destroy(info);
    return current;
  }
  // The stream's own config with only MaxAge changed: the rest is the KV
  // layout nats.c chose when it created the bucket.
  info->Config->MaxAge = absl::ToInt64Nanoseconds(max_age);
  jsStreamInfo* updated = nullptr;
  s = js_UpdateStream(&updated, js_, info->Config, nullptr, &code);
  jsStreamInfo_Destroy(info);
  if (s != NATS_OK) return KvError(absl::StrCat("widen max age of ", name_), s, code);
  const absl::Duration after = absl::Nanoseconds(updated->Config->MaxAge);
  jsStreamInfo_Destroy(updated);
  return after;
}

absl::Status KvBucket::Purge(absl::string_view key_filter) const {
  // A stream purge with a subject filter: kvStore_Purge takes one key and
  // leaves a purge marker, this takes a wildcard and leaves nothing.
  const std::string stream = absl::StrCat("KV_", name_);
  const std::string subject = Subject(key_filter);
  jsOptions options;
  jsOptions_Init(&options);
  options.Wait = limits::kNatsKvWaitMs;
  options.Stream.Purge.Subject = subject.c_str();
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_PurgeStream(js_, stream.c_str(), &options, &code);
  if (s != NATS_OK) return KvError(absl::StrCat("purge ", name_, " ", key_filter), s, code);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KvBucket::Watch>> KvBucket::WatchAll() const {
  kvWatcher* watcher = nullptr;
  if (natsStatus s = kvStore_WatchAll(&watcher, kv_, nullptr); s != NATS_OK) {
    return KvError(absl::StrCat("watch ", name_), s, static_cast<jsErrCode>(0));
  }
  return std::unique_ptr<Watch>(new Watch(watcher));
}

absl::StatusOr<std::vector<KvEntry>> KvBucket::Entries(absl::string_view key_filter) const {
  const std::string filter(key_filter);
  kvWatchOptions options;
  kvWatchOptions_Init(&options);
  options.IgnoreDeletes = true;
  kvWatcher* watcher = nullptr;
  if (natsStatus s = kvStore_Watch(&watcher, kv_, filter.c_str(), &options); s != NATS_OK) {
    return KvError(absl::StrCat("watch ", name_, " ", filter), s, static_cast<jsErrCode>(0));
  }
  Watch watch(watcher);
  std::vector<KvEntry> entries;
  for (;;) {
    absl::StatusOr<std::optional<KvEntry>> next =
        watch.Next(absl::Milliseconds(limits::kNatsKvWaitMs));
    if (!next.ok()) {
      return absl::UnavailableError(
          absl::StrCat("reading ", name_, " ", filter, ": ", next.status().message()));
    }
    if (!next->has_value()) return entries;  // the initial values are all in
    if (!(*next)->deleted) entries.push_back(**std::move(next));
  }
}

KvBucket::Watch::~Watch() {
  kvWatcher_Stop(watcher_);
  kvWatcher_Destroy(watcher_);
}

absl::StatusOr<std::optional<KvEntry>> KvBucket::Watch::Next(absl::Duration timeout) {
  kvEntry* e = nullptr;
  natsStatus s = kvWatcher_Next(&e, watcher_, absl::ToInt64Milliseconds(timeout));
  if (s == NATS_TIMEOUT) return absl::DeadlineExceededError("no change");
  if (s != NATS_OK) return KvError("watch", s, static_cast<jsErrCode>(0));
  if (e == nullptr) return std::optional<KvEntry>();  // the initial values are all in
  KvEntry entry;
  entry.key = kvEntry_Key(e);
  entry.value.assign(static_cast<const char*>(kvEntry_Value(e)),
                     static_cast<std::size_t>(kvEntry_ValueLen(e)));
  entry.revision = kvEntry_Revision(e);
  entry.deleted = kvEntry_Operation(e) != kvOp_Put;
  entry.written_at = FromUnixNanos(kvEntry_Created(e));
  kvEntry_Destroy(e);
  return std::optional<KvEntry>(std::move(entry));
}

}  // namespace relay::backplane::nats
