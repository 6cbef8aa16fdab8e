#include "gateway/json/json_object.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "gateway/json/swar.h"
#include "server/limits.h"

namespace relay::gateway::json {
namespace {

void AppendUtf8(std::uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ReadHex4(absl::string_view s, std::size_t at, std::uint32_t* value) {
  if (at + 4 > s.size()) return false;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    int h = HexValue(s[at + i]);
    if (h < 0) return false;
    v = (v << 4) | static_cast<std::uint32_t>(h);
  }
  *value = v;
  return true;
}

// Length of the valid UTF-8 sequence starting at s[i] (a non-ASCII lead
// byte), or 0 when invalid: overlongs, surrogates and > U+10FFFF rejected.
std::size_t Utf8SequenceLength(absl::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = b(i);
  const auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (lead >= 0xC2 && lead <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (lead == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (lead == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (lead == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
    if (lead == 0xF4 && b(i + 1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

// A set of member names for an object too large to compare linearly:
// open addressing over a power-of-two array kept at most half full. Reset()
// empties it in O(1) (a new generation marks every slot free), so a frame
// of many large objects fills one table again and again. Names are hashed
// with absl::Hash, seeded per process, so a stranger cannot choose names
// that all land in one slot. The views must outlive their generation.
class NameTable {
 public:
  void Reset() {
    ++generation_;
    size_ = 0;
  }

  // Adds `name`; false when the current generation already has it.
  bool Insert(absl::string_view name) {
    if (2 * (size_ + 1) > slots_.size()) Grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = absl::Hash<absl::string_view>{}(name)&mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.generation != generation_) {
        slot = Slot{name, generation_};
        ++size_;
        return true;
      }
      if (slot.name == name) return false;
    }
  }

 private:
  struct Slot {
    absl::string_view name;
    std::uint32_t generation = 0;  // free unless it is the table's
  };

  void Grow() {
    constexpr std::size_t kFirstSize = 64;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? kFirstSize : 2 * old.size(), Slot{});
    size_ = 0;
    for (const Slot& slot : old) {
      if (slot.generation == generation_) Insert(slot.name);
    }
  }

  std::vector<Slot> slots_;
  std::uint32_t generation_ = 0;
  std::size_t size_ = 0;
};

// The NameTables of one parse: one per large object open at the same time
// (nested in one another), each reused by the next large object at its
// level. Acquired and released in stack order.
class NameTablePool {
 public:
  NameTable* Acquire() {
    if (open_ == tables_.size()) tables_.push_back(std::make_unique<NameTable>());
    NameTable* table = tables_[open_++].get();
    table->Reset();
    return table;
  }
  void Release() { --open_; }

 private:
  std::vector<std::unique_ptr<NameTable>> tables_;
  std::size_t open_ = 0;
};

// The decoded names of one object's members so far, to refuse a duplicate.
// The first few are compared linearly, which costs no allocation for the
// frames clients really send; past them a NameTable takes over, so a large
// object (at most max_members_per_object names) stays linear in its size.
// The views must outlive the set.
class NameSet {
 public:
  explicit NameSet(NameTablePool* pool) : pool_(pool) {}
  ~NameSet() {
    if (table_ != nullptr) pool_->Release();
  }
  NameSet(const NameSet&) = delete;
  NameSet& operator=(const NameSet&) = delete;

  // Adds `name`; false when the object already had it.
  bool Insert(absl::string_view name) {
    if (table_ == nullptr) {
      for (std::size_t i = 0; i < few_count_; ++i) {
        // Lengths first: names of one object mostly differ in length.
        if (few_size_[i] == name.size() &&
            (name.empty() || std::memcmp(few_data_[i], name.data(), name.size()) == 0)) {
          return false;
        }
      }
      if (few_count_ < kFew) {
        few_data_[few_count_] = name.data();
        few_size_[few_count_] = name.size();
        ++few_count_;
        return true;
      }
      table_ = pool_->Acquire();
      for (std::size_t i = 0; i < kFew; ++i) table_->Insert({few_data_[i], few_size_[i]});
    }
    return table_->Insert(name);
  }

 private:
  static constexpr std::size_t kFew = 16;
  NameTablePool* const pool_;
  NameTable* table_ = nullptr;
  std::size_t few_count_ = 0;
  // Left uninitialized: only the first few_count_ are read.
  const char* few_data_[kFew];
  std::size_t few_size_[kFew];
};

class Parser {
 public:
  Parser(absl::string_view text, std::size_t max_depth, std::size_t max_members, ParseError* error)
      : s_(text), max_depth_(max_depth), max_members_(max_members), error_(error) {}

  bool ParseTop(Object* out) {
    SkipWs();
    if (pos_ >= s_.size()) return Fail("empty document");
    if (s_[pos_] != '{') {
      // Still tell "valid JSON but not an object" apart from garbage.
      Kind kind;
      if (!ParseValue(1, &kind, nullptr)) return false;
      SkipWs();
      if (pos_ != s_.size()) return Fail("unexpected data after the JSON value");
      error_->kind = ParseErrorKind::kNotObject;
      error_->message = "a message must be a JSON object";
      return false;
    }
    if (!ParseObjectMembers(out)) return false;
    SkipWs();
    if (pos_ != s_.size()) return Fail("unexpected data after the JSON object");
    return true;
  }

 private:
  bool Fail(absl::string_view what) {
    error_->kind = ParseErrorKind::kSyntax;
    error_->message = absl::StrCat("invalid JSON at byte ", pos_, ": ", what);
    return false;
  }
  bool TooDeep() {
    error_->kind = ParseErrorKind::kTooDeep;
    error_->message = absl::StrCat("JSON nested deeper than ", max_depth_, " levels");
    return false;
  }
  bool TooManyMembers() {
    error_->kind = ParseErrorKind::kTooManyMembers;
    error_->message =
        absl::StrCat("a JSON object has more than ", max_members_, " members (at byte ", pos_, ")");
    return false;
  }
  bool Duplicate(std::size_t at, absl::string_view name) {
    // The name is echoed only when short: error messages stay small.
    error_->kind = ParseErrorKind::kDuplicateName;
    error_->message = absl::StrCat("invalid JSON at byte ", at, ": duplicate member name");
    if (name.size() <= limits::kMaxEchoedBytes) {
      absl::StrAppend(&error_->message, " \"", name, "\"");
    }
    return false;
  }

  // A member name at pos_ ('"'), added to `names` (false on a duplicate).
  // `*name` is its decoded form, valid for the whole parse: the raw contents
  // when it has no escape (then they are the decoded form), else a copy in
  // decoded_names_.
  bool ParseName(NameSet* names, absl::string_view* name) {
    const std::size_t start = pos_;
    bool escaped = false;
    if (!ScanString(&escaped)) return false;
    *name = absl::string_view(s_.data() + start + 1, pos_ - start - 2);  // between the quotes
    if (escaped) {
      // No escape decodes longer than it is written, so the names still
      // ahead fit in what is left of the text: reserved once, the buffer
      // never moves and the views into it stay valid.
      if (decoded_names_.empty()) decoded_names_.reserve(s_.size() - start);
      const std::size_t at = decoded_names_.size();
      DecodeStringContents(*name, &decoded_names_);
      *name = absl::string_view(decoded_names_).substr(at);
    }
    if (!names->Insert(*name)) return Duplicate(start, *name);
    return true;
  }

  void SkipWs() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool Consume(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // The top-level object, recording members. pos_ is at '{'.
  bool ParseObjectMembers(Object* out) {
    ++pos_;
    SkipWs();
    if (Consume('}')) return true;
    NameSet names(&name_tables_);
    while (true) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
      if (out->members.size() == max_members_) return TooManyMembers();
      // Filled in place (a Member is costly to move); on failure the
      // caller discards the whole object.
      Member& member = out->members.emplace_back();
      const std::size_t key_start = pos_;
      absl::string_view name;
      if (!ParseName(&names, &name)) return false;
      member.key.assign(name.data(), name.size());
      member.raw_key = s_.substr(key_start, pos_ - key_start);
      SkipWs();
      if (!Consume(':')) return Fail("expected ':'");
      SkipWs();
      const std::size_t value_start = pos_;
      if (!ParseValue(2, &member.kind, &member)) return false;
      member.raw_value = s_.substr(value_start, pos_ - value_start);
      SkipWs();
      if (Consume(',')) continue;
      if (Consume('}')) return true;
      return Fail("expected ',' or '}'");
    }
  }

  // Any value at nesting level `depth`. When `member` is set, decodes a
  // string value, or the strings of an array of strings, into it.
  bool ParseValue(std::size_t depth, Kind* kind, Member* member) {
    if (pos_ >= s_.size()) return Fail("unexpected end of input");
    switch (s_[pos_]) {
      case '{':
        *kind = Kind::kObject;
        return ParseNested(depth, '}', /*object=*/true, nullptr);
      case '[':
        *kind = Kind::kArray;
        return ParseNested(depth, ']', /*object=*/false, member);
      case '"':
        *kind = Kind::kString;
        return ParseString(member != nullptr ? &member->string_value : nullptr);
      case 't':
        *kind = Kind::kBool;
        return Literal("true");
      case 'f':
        *kind = Kind::kBool;
        return Literal("false");
      case 'n':
        *kind = Kind::kNull;
        return Literal("null");
      default:
        *kind = Kind::kNumber;
        return ParseNumber();
    }
  }

  bool ParseNested(std::size_t depth, char close, bool object, Member* strings_into) {
    if (depth > max_depth_) return TooDeep();
    ++pos_;
    SkipWs();
    if (strings_into != nullptr) strings_into->all_strings = true;
    if (Consume(close)) return true;
    NameSet names(&name_tables_);  // of an object's members; unused for an array
    std::size_t count = 0;
    while (true) {
      SkipWs();
      if (object) {
        if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
        if (count++ == max_members_) return TooManyMembers();
        absl::string_view name;
        if (!ParseName(&names, &name)) return false;
        SkipWs();
        if (!Consume(':')) return Fail("expected ':'");
        SkipWs();
      }
      Kind kind;
      // The relay reads short arrays of strings (capabilities); decoding and
      // keeping every element of a long one would cost a copy per element,
      // so past max_members_ elements it is no longer read as strings.
      if (strings_into != nullptr && strings_into->strings.size() >= max_members_) {
        strings_into->all_strings = false;
        strings_into->strings.clear();
        strings_into = nullptr;
      }
      if (strings_into != nullptr && pos_ < s_.size() && s_[pos_] == '"') {
        std::string element;
        if (!ParseString(&element)) return false;
        strings_into->strings.push_back(std::move(element));
      } else {
        if (!ParseValue(depth + 1, &kind, nullptr)) return false;
        if (strings_into != nullptr) {
          strings_into->all_strings = false;
          strings_into->strings.clear();
          strings_into = nullptr;
        }
      }
      SkipWs();
      if (Consume(',')) continue;
      if (Consume(close)) return true;
      return Fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }

  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool Digits() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool ParseNumber() {
    Consume('-');
    if (pos_ >= s_.size()) return Fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      Digits();
    } else {
      return Fail("unexpected character");
    }
    if (Consume('.') && !Digits()) return Fail("invalid number: digits expected after '.'");
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Consume('+')) Consume('-');
      if (!Digits()) return Fail("invalid number: digits expected in the exponent");
    }
    return true;
  }

  // A string literal at pos_ ('"'). Decodes into `out` when set.
  bool ParseString(std::string* out) {
    const std::size_t start = pos_ + 1;
    bool escaped = false;
    if (!ScanString(&escaped)) return false;
    if (out != nullptr) {
      const absl::string_view contents = s_.substr(start, pos_ - 1 - start);
      if (escaped) {
        out->clear();
        DecodeStringContents(contents, out);
      } else {
        out->assign(contents.data(), contents.size());
      }
    }
    return true;
  }

  // Validates the string literal at pos_ ('"') and moves past its closing
  // quote. `*escaped` tells whether it holds a backslash. Inlined into its
  // two callers: each string of every frame passes here (bench/instructions).
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ScanString(bool* escaped) {
    ++pos_;
    while (true) {
      // Plain ASCII runs, eight bytes at a time, up to the first byte that
      // needs a look (swar.h).
      while (swar::kEnabled && pos_ + 8 <= s_.size()) {
        const std::uint64_t word = swar::Load(s_.data() + pos_);
        if (const std::uint64_t bits = swar::QuoteBackslashOrControl(word) | swar::NonAscii(word);
            bits != 0) {
          pos_ += swar::FirstFlaggedByte(bits);
          break;
        }
        pos_ += 8;
      }
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return Fail("control character in string");
      if (c == '\\') {
        *escaped = true;
        if (pos_ + 1 >= s_.size()) return Fail("unterminated string");
        const char e = s_[pos_ + 1];
        if (e == 'u') {
          std::uint32_t unused;
          if (!ReadHex4(s_, pos_ + 2, &unused)) return Fail("invalid \\u escape");
          pos_ += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
          pos_ += 2;
        } else {
          return Fail("invalid escape");
        }
      } else if (c >= 0x80) {
        const std::size_t n = Utf8SequenceLength(s_, pos_);
        if (n == 0) return Fail("invalid UTF-8");
        pos_ += n;
      } else {
        ++pos_;
      }
    }
    ++pos_;  // closing quote
    return true;
  }

  absl::string_view s_;
  std::size_t pos_ = 0;
  const std::size_t max_depth_;
  const std::size_t max_members_;
  ParseError* error_;
  // Decoded copies of the member names that hold an escape (ParseName).
  std::string decoded_names_;
  NameTablePool name_tables_;
};

}  // namespace

const Member* Object::Find(absl::string_view key) const {
  for (const Member& m : members) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

bool ParseObject(absl::string_view text, std::size_t max_depth, std::size_t max_members_per_object,
                 Object* out, ParseError* error) {
  out->members.clear();
  Parser parser(text, max_depth, max_members_per_object, error);
  return parser.ParseTop(out);
}

bool IsValidUtf8(absl::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool DecodeStringContents(absl::string_view s, std::string* out) {
  out->reserve(out->size() + s.size());
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c != '\\') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return false;
    const char e = s[i + 1];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        i += 2;
        continue;
      case 'b':
        out->push_back('\b');
        i += 2;
        continue;
      case 'f':
        out->push_back('\f');
        i += 2;
        continue;
      case 'n':
        out->push_back('\n');
        i += 2;
        continue;
      case 'r':
        out->push_back('\r');
        i += 2;
        continue;
      case 't':
        out->push_back('\t');
        i += 2;
        continue;
      case 'u':
        break;
      default:
        return false;
    }
    std::uint32_t cp;
    if (!ReadHex4(s, i + 2, &cp)) return false;
    i += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      std::uint32_t low;
      if (i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u' && ReadHex4(s, i + 2, &low) &&
          low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        i += 6;
      } else {
        cp = 0xFFFD;  // lone high surrogate
      }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      cp = 0xFFFD;  // lone low surrogate
    }
    AppendUtf8(cp, out);
  }
  return true;
}

}  // namespace relay::gateway::json
